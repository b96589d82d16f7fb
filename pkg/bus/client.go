package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
)

// Client publishes jobs and reads their events and results. It is safe for
// concurrent use.
type Client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj Subjects
	enc  Encoding

	noObjects bool
	objMu     sync.Mutex
	objs      jetstream.ObjectStore // created on first use
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithSubjects sets the subject prefix (default "llm").
func WithSubjects(s Subjects) ClientOption { return func(c *Client) { c.subj = s } }

// WithEncoding sets the encoding of requests (default msgpack). Results come
// back in the same encoding.
func WithEncoding(e Encoding) ClientOption { return func(c *Client) { c.enc = e } }

// NewClient returns a client on an open connection. The client does not own
// the connection.
func NewClient(nc *nats.Conn, opts ...ClientOption) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, js: js}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Subjects returns the client's subject names.
func (c *Client) Subjects() Subjects { return c.subj }

// ErrTooLarge is returned when a request does not fit in one NATS message
// (and the client was made WithoutObjectStore).
var ErrTooLarge = &Error{Code: CodeTooLarge, Message: "request larger than the server's max payload"}

// Job is a published job whose events and result can be read.
type Job struct {
	ID    string
	Reply string
	// Duplicate is set when the request stream already had a job with this
	// id; its result may already be stored.
	Duplicate bool

	c   *Client
	sub *nats.Subscription
	q   *msgQueue
	// The reply subjects, built once: Next compares every message's
	// subject with them, and concatenating per message cost more than
	// decoding the event.
	resultSubj, eventsSubj string
}

// Publish publishes req to group and returns the job, subscribed to its
// reply subjects before publication so that no event is missed. The caller
// must read it to the end with Next or call Close. req.ID is set to a new
// UUIDv7 when empty. A request larger than the server's max payload is put
// in the Object Store (bucket LLM_OBJECTS) and referenced from the job with
// the Llm-Object header, unless the client was made WithoutObjectStore.
func (c *Client) Publish(ctx context.Context, group string, req *Request) (*Job, error) {
	if !ValidGroup(group) {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid group name %q", group)}
	}
	if req.ID == "" {
		req.ID = uuid.Must(uuid.NewV7()).String()
	}
	if !ValidJobID(req.ID) {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid job id %q", req.ID)}
	}
	reply := req.Reply
	if reply == "" {
		reply = c.subj.Reply(req.ID)
	}
	if !ValidReply(reply) {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid reply prefix %q", reply)}
	}
	body, err := c.enc.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("bus: encode request: %w", err)
	}
	msg := nats.NewMsg(c.subj.Request(group))
	msg.Header.Set(HeaderMsgID, req.ID)
	msg.Header.Set(HeaderContentType, c.enc.ContentType())
	// Continue the caller's trace, if ctx carries one (W3C traceparent).
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(msg.Header))
	msg.Data = body
	if mp := c.nc.MaxPayload(); mp > 0 && int64(len(body)+payloadHeadroom) > mp {
		if c.noObjects {
			return nil, ErrTooLarge
		}
		if err := c.objectMsg(ctx, msg, req, body); err != nil {
			return nil, err
		}
	}
	q := newMsgQueue()
	sub, err := c.nc.Subscribe(reply+".>", q.push)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s.>: %w", reply, err)
	}
	sub.SetClosedHandler(q.close)
	// Generous pending limits: a fast stream must not be dropped as a slow
	// consumer while the caller renders it.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		_ = sub.Unsubscribe()
		if errors.Is(err, nats.ErrMaxPayload) {
			return nil, ErrTooLarge
		}
		return nil, fmt.Errorf("bus: publish job %s: %w", req.ID, err)
	}
	return &Job{ID: req.ID, Reply: reply, Duplicate: ack.Duplicate, c: c, sub: sub, q: q,
		resultSubj: ResultSubject(reply), eventsSubj: EventsSubject(reply)}, nil
}

// Next returns the job's next event, or its result (with a nil event) once
// it arrives; after the result it returns an error. It honours ctx.
func (j *Job) Next(ctx context.Context) (*Event, *Result, error) {
	for {
		m, err := j.q.pop(ctx)
		if err != nil {
			return nil, nil, err
		}
		enc := Detect(m.Header, m.Data)
		switch m.Subject {
		case j.resultSubj:
			var r Result
			if err := enc.Unmarshal(m.Data, &r); err != nil {
				return nil, nil, fmt.Errorf("bus: decode result: %w", err)
			}
			_ = j.Close()
			return nil, &r, nil
		case j.eventsSubj:
			var e Event
			if err := enc.Unmarshal(m.Data, &e); err != nil {
				return nil, nil, fmt.Errorf("bus: decode event: %w", err)
			}
			return &e, nil, nil
		}
	}
}

// Close stops reading the job's reply subjects. It is safe to call twice.
func (j *Job) Close() error {
	err := j.sub.Unsubscribe()
	if errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed) {
		return nil
	}
	return err
}

// StoredResult reads a job's result from the results stream, for jobs whose
// reply prefix is the default one. It returns (nil, nil) when no result is
// stored yet.
func (c *Client) StoredResult(ctx context.Context, reply string) (*Result, error) {
	s, err := c.js.Stream(ctx, StreamResults)
	if err != nil {
		return nil, err
	}
	m, err := s.GetLastMsgForSubject(ctx, ResultSubject(reply))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Result
	if err := Detect(m.Header, m.Data).Unmarshal(m.Data, &r); err != nil {
		return nil, fmt.Errorf("bus: decode stored result: %w", err)
	}
	return &r, nil
}

// SubmitOption configures Submit.
type SubmitOption func(*submitOptions)

type submitOptions struct {
	onEvent func(*Event)
}

// OnEvent calls fn for every event of the job, in order, from Submit's
// goroutine.
func OnEvent(fn func(*Event)) SubmitOption { return func(o *submitOptions) { o.onEvent = fn } }

// Submit publishes req to group and waits for its result, passing events to
// the OnEvent handler. A job that failed returns its result and the result's
// *Error, so errors.Is(err, &Error{Code: CodeCancelled}) works; transport
// failures and ctx's end return a nil result. Leaving Submit early does not
// cancel the job: use Cancel for that.
func (c *Client) Submit(ctx context.Context, group string, req *Request, opts ...SubmitOption) (*Result, error) {
	var o submitOptions
	for _, fn := range opts {
		fn(&o)
	}
	job, err := c.Publish(ctx, group, req)
	if err != nil {
		return nil, err
	}
	defer job.Close()
	if job.Duplicate && c.subj.InResults(job.Reply) {
		// The job was published before: it may be finished already.
		if r, err := c.StoredResult(ctx, job.Reply); err == nil && r != nil {
			return r, resultErr(r)
		}
	}
	for {
		ev, res, err := job.Next(ctx)
		if err != nil {
			return nil, err
		}
		if res != nil {
			return res, resultErr(res)
		}
		if o.onEvent != nil {
			o.onEvent(ev)
		}
	}
}

func resultErr(r *Result) error {
	if r.Status == StatusOK {
		return nil
	}
	if r.Error != nil {
		return r.Error
	}
	return &Error{Code: CodeInternal, Message: "result without status ok and without error"}
}

// Cancel asks the fleet to cancel a job: a running job stops within one
// chunk, a queued one is answered cancelled when it is picked up.
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	if !ValidJobID(jobID) {
		return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid job id %q", jobID)}
	}
	kv, err := c.js.KeyValue(ctx, BucketCancel)
	if err != nil {
		return fmt.Errorf("bus: cancel bucket: %w", err)
	}
	if _, err := kv.Put(ctx, jobID, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("bus: cancel marker: %w", err)
	}
	if err := c.nc.Publish(c.subj.Cancel(jobID), nil); err != nil {
		return err
	}
	return c.nc.FlushWithContext(ctx)
}

// Served reports whether some worker has set up group's consumer. A job for
// a group that is not served is answered unknown_group by the fleet after a
// grace period; a CLI can say so at once instead.
func (c *Client) Served(ctx context.Context, group string) (bool, error) {
	_, err := c.js.Consumer(ctx, StreamRequests, ConsumerName(group))
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
