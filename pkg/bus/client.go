package bus

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
)

// Client publishes jobs and reads their events and results. It is safe for
// concurrent use.
type Client struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   Subjects
	tenant *string // WithTenant, applied after WithSubjects
	enc    Encoding

	dropped atomic.Uint64 // messages on a job's reply subjects that were not its own

	noObjects bool
	objMu     sync.Mutex
	objs      jetstream.ObjectStore // created on first use
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithSubjects sets the subject prefix (default "llm") and, when s.Tenant
// is set, the tenant (see WithTenant).
func WithSubjects(s Subjects) ClientOption { return func(c *Client) { c.subj = s } }

// WithTenant makes the client publish, cancel and read jobs in tenant's
// namespace (llm.t.<tenant>.…, see Subjects). It is the tenant the
// connection's NATS user is allowed to act as: the server refuses the
// subjects of any other. The empty name is the anonymous tenant (the v1
// subjects), the default. NewClient fails for an invalid name.
func WithTenant(tenant string) ClientOption { return func(c *Client) { c.tenant = &tenant } }

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
	if c.tenant != nil {
		c.subj.Tenant = *c.tenant
	}
	if c.subj.Tenant != "" && !ValidTenant(c.subj.Tenant) {
		return nil, fmt.Errorf("bus: invalid tenant name %q: [a-z0-9][a-z0-9_-]{0,31}, exactly", c.subj.Tenant)
	}
	return c, nil
}

// Subjects returns the client's subject names, in its tenant's namespace.
func (c *Client) Subjects() Subjects { return c.subj }

// Tenant returns the client's tenant ("" for the anonymous tenant).
func (c *Client) Tenant() string { return c.subj.Tenant }

// Dropped counts the messages this client's jobs received on their reply
// subjects that were not theirs (an event or result naming another job id)
// and dropped. Anything but zero means someone publishes into the client's
// reply subjects.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// ErrIDTaken is returned by Submit when the request stream already had a job
// with the request's id that is not this request (another request, with
// the same id, was published first): waiting would return that job's result,
// not this one's. Use another id.
var ErrIDTaken = errors.New("bus: job id already taken by a different request")

// HeaderDigest carries a digest of the request body (hex SHA-256, first 16
// bytes), set by the Go client and copied by the worker onto the result, so
// that a client whose publish was a duplicate can tell its own earlier job
// from someone else's with the same id.
const HeaderDigest = "Llm-Digest"

func digest(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

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

	c      *Client
	sub    *nats.Subscription
	q      *msgQueue
	digest string
	// lastDigest is the Llm-Digest header of the last result Next returned.
	lastDigest string
	subjects   replySubjects
	dropped    uint64
}

// Publish publishes req to group and returns the job, subscribed to its
// reply subjects before publication so that no event is missed. The caller
// must read it to the end with Next or call Close. req.ID is set to a new
// UUIDv7 when empty. A request larger than the server's max payload is put
// in the tenant's Object Store bucket (LLM_OBJECTS, or LLM_OBJECTS_<tenant>)
// and referenced from the job with the Llm-Object header, unless the client
// was made WithoutObjectStore. req.Tenant, when set, must be the client's
// tenant (the worker answers invalid_request otherwise). req.Priority
// chooses the subject: the class's (Subjects.RequestFor), the bare one for
// "" and default.
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
	if ok, why := c.subj.ReplyAllowed(reply, req.ID); !ok {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("reply prefix %q: %s", reply, why)}
	}
	if req.Tenant != "" && req.Tenant != c.subj.Tenant {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("request names tenant %q but the client is tenant %q: the tenant is who publishes (WithTenant)", req.Tenant, c.subj.Tenant)}
	}
	if req.Priority != "" && !ValidPriority(req.Priority) {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("priority %q is not one of interactive, default, batch", req.Priority)}
	}
	body, err := c.enc.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("bus: encode request: %w", err)
	}
	dig := digest(body)
	msg := nats.NewMsg(c.subj.RequestFor(group, req.Priority))
	msg.Header.Set(HeaderMsgID, req.ID)
	msg.Header.Set(HeaderContentType, c.enc.ContentType())
	msg.Header.Set(HeaderDigest, dig)
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
		if errors.Is(err, jetstream.ErrNoStreamResponse) && c.subj.Tenant != "" {
			return nil, fmt.Errorf("bus: publish job %s: no stream %s answered (is tenant %q in the workers' model file?): %w", req.ID, c.subj.RequestStream(), c.subj.Tenant, err)
		}
		return nil, fmt.Errorf("bus: publish job %s: %w", req.ID, err)
	}
	return &Job{ID: req.ID, Reply: reply, Duplicate: ack.Duplicate, c: c, sub: sub, q: q, digest: dig,
		subjects: newReplySubjects(reply)}, nil
}

// Dropped counts the messages this job received on its reply subjects
// that named another job and were dropped (see Client.Dropped).
func (j *Job) Dropped() uint64 { return j.dropped }

func (j *Job) drop() {
	j.dropped++
	j.c.dropped.Add(1)
}

// Next returns the job's next event, or its result (with a nil event) once
// it arrives; after the result it returns an error. It honours ctx. An
// event or result that names another job id is dropped and counted (see
// Dropped), never returned.
func (j *Job) Next(ctx context.Context) (*Event, *Result, error) {
	for {
		m, err := j.q.pop(ctx)
		if err != nil {
			return nil, nil, err
		}
		e, r, err := j.subjects.decode(ctx, j.c, m.Subject, m.Header, m.Data)
		switch {
		case errors.Is(err, ErrResultObject):
			j.drop()
		case err != nil:
			return nil, nil, err
		case r != nil && r.ID == j.ID:
			j.lastDigest = m.Header.Get(HeaderDigest)
			_ = j.Close()
			return nil, r, nil
		case e != nil && e.ID == j.ID:
			return e, nil, nil
		case e != nil || r != nil:
			j.drop()
		}
	}
}

// replySubjects are a reply prefix's result and events subjects, built
// once: a reader compares every message's subject with them, and
// concatenating per message cost more than decoding the event.
type replySubjects struct{ result, events string }

func newReplySubjects(reply string) replySubjects {
	return replySubjects{result: ResultSubject(reply), events: EventsSubject(reply)}
}

// decode decodes a message on the reply subjects: the job's result (the
// whole result, see Client.DecodeResult) or one of its events (neither for
// another subject). Job and Watcher read their messages through it.
func (rs replySubjects) decode(ctx context.Context, c *Client, subject string, h nats.Header, data []byte) (*Event, *Result, error) {
	switch subject {
	case rs.result:
		r, err := c.DecodeResult(ctx, h, data)
		return nil, r, err
	case rs.events:
		var e Event
		if err := Detect(h, data).Unmarshal(data, &e); err != nil {
			return nil, nil, fmt.Errorf("bus: decode event: %w", err)
		}
		return &e, nil, nil
	}
	return nil, nil, nil
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
// reply prefix is the default one of the client's tenant. It returns (nil,
// nil) when no result is stored yet, and never a result that names another
// job.
func (c *Client) StoredResult(ctx context.Context, reply string) (*Result, error) {
	r, _, err := c.storedResult(ctx, reply)
	return r, err
}

func (c *Client) storedResult(ctx context.Context, reply string) (*Result, nats.Header, error) {
	m, err := c.lastStored(ctx, ResultSubject(reply))
	if err != nil || m == nil {
		return nil, nil, err
	}
	r, err := c.DecodeResult(ctx, m.Header, m.Data)
	if errors.Is(err, ErrResultObject) {
		c.dropped.Add(1)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bus: stored result: %w", err)
	}
	if id, ok := strings.CutPrefix(reply, c.subj.Reply("")); ok && r.ID != id {
		c.dropped.Add(1)
		return nil, nil, nil
	}
	return r, m.Header, nil
}

// StoredResultOf returns the stored result of req's job (req.ID, the
// default reply prefix), as StoredResult does, or ErrIDTaken when the result
// stored under that id is of a different request (its Llm-Digest is not the
// digest of req as Publish would encode it): a retry that names the id of
// another request is told so instead of being answered the other's result.
func (c *Client) StoredResultOf(ctx context.Context, req *Request) (*Result, error) {
	body, err := c.enc.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("bus: encode request: %w", err)
	}
	r, h, err := c.storedResult(ctx, c.subj.Reply(req.ID))
	if err != nil || r == nil {
		return nil, err
	}
	if d := h.Get(HeaderDigest); d != "" && d != digest(body) {
		return nil, fmt.Errorf("%w: %s", ErrIDTaken, req.ID)
	}
	return r, nil
}

// Started reports whether one of the tenant's jobs (with the default reply
// prefix) was taken up by a worker: an event of it is stored in the results
// stream. It needs durable events (SWITCHYARD_DURABLE_EVENTS,
// StreamsConfig.DurableEvents); without them no event is stored and it
// reports false. It reads one message with a direct get, as StoredResult
// does.
func (c *Client) Started(ctx context.Context, jobID string) (bool, error) {
	if !ValidJobID(jobID) {
		return false, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid job id %q", jobID)}
	}
	m, err := c.lastStored(ctx, EventsSubject(c.subj.Reply(jobID)))
	return m != nil, err
}

// lastStored reads the last message of subject in the results stream with a
// direct get by subject ($JS.API.DIRECT.GET.LLM_RESULTS.<subject>): the
// subject is part of the API subject, so a tenant's permissions can allow
// it for the tenant's own subjects only, and no stream info is needed. A
// results stream without direct get (provisioned by an older worker) is
// read with the stream message API instead. It returns nil when there is
// none.
func (c *Client) lastStored(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	prefix := cmp.Or(c.js.Options().APIPrefix, jetstream.DefaultAPIPrefix)
	if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	resp, err := c.nc.RequestWithContext(ctx, prefix+"DIRECT.GET."+StreamResults+"."+subject, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		s, err := c.js.Stream(ctx, StreamResults)
		if err != nil {
			return nil, err
		}
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		return m, err
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Data) == 0 {
		switch st := resp.Header.Get("Status"); st {
		case "404":
			return nil, nil
		case "":
		default:
			return nil, fmt.Errorf("bus: direct get %s: %s %s", subject, st, resp.Header.Get("Description"))
		}
	}
	if resp.Header.Get(jetstream.StreamHeader) == "" {
		return nil, fmt.Errorf("bus: direct get %s: not a stored message", subject)
	}
	return &jetstream.RawStreamMsg{Subject: resp.Header.Get(jetstream.SubjectHeader), Header: resp.Header, Data: resp.Data}, nil
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
//
// Re-submitting a request (same id, same content) within the request
// stream's dedupe window returns the first run's result. A request whose id
// was taken by a different request fails with ErrIDTaken, never returning
// the other request's result.
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
	// A duplicate publish means the job was published before: its result
	// may be stored already, or be stored in a moment (the stream can store
	// it just after the first requester saw it live, and this subscription
	// came too late for the live one), or the job is still running. So
	// while waiting for a live result, look for the stored one too, at
	// growing intervals.
	stored := job.Duplicate && c.subj.InResults(job.Reply)
	poll := 50 * time.Millisecond
	for {
		if stored {
			if r, h, err := c.storedResult(ctx, job.Reply); err == nil && r != nil {
				if h.Get(HeaderDigest) != job.digest {
					return nil, fmt.Errorf("%w: %s", ErrIDTaken, job.ID)
				}
				return r, resultErr(r)
			}
		}
		nctx, cancel := ctx, context.CancelFunc(func() {})
		if stored {
			nctx, cancel = context.WithTimeout(ctx, poll)
			poll = min(2*poll, 2*time.Second)
		}
		ev, res, err := job.Next(nctx)
		cancel()
		if err != nil {
			if stored && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				continue // look for the stored result again
			}
			return nil, err
		}
		if res != nil {
			if job.Duplicate && job.lastDigest != job.digest {
				return nil, fmt.Errorf("%w: %s", ErrIDTaken, job.ID)
			}
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

// Cancel asks the fleet to cancel one of the tenant's jobs: a running job
// stops within one chunk, a queued one is answered cancelled when it is
// picked up (a marker in the tenant's cancel bucket, kept for its TTL). A ctx
// without a deadline gets one of 10 seconds.
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	_, err := c.cancel(ctx, jobID, 0)
	return err
}

// CancelConfirmed cancels like Cancel, then waits up to wait for the worker
// running the job to confirm that it stops it. running is false when no
// worker confirmed within wait: the job is queued (the marker answers it
// cancelled when a worker picks it up), already finished, or unknown.
func (c *Client) CancelConfirmed(ctx context.Context, jobID string, wait time.Duration) (running bool, err error) {
	return c.cancel(ctx, jobID, wait)
}

func (c *Client) cancel(ctx context.Context, jobID string, wait time.Duration) (bool, error) {
	if !ValidJobID(jobID) {
		return false, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid job id %q", jobID)}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second+wait)
		defer cancel()
	}
	var markErr error
	if kv, err := c.js.KeyValue(ctx, c.subj.CancelBucket()); err != nil {
		markErr = fmt.Errorf("bus: cancel bucket %s: %w", c.subj.CancelBucket(), err)
	} else if _, err := kv.Put(ctx, jobID, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		markErr = fmt.Errorf("bus: cancel marker: %w", err)
	}
	// A running job is stopped by the core message even if the marker
	// could not be stored (a tenant's bucket is capped). The worker running
	// it answers the message's reply subject, when it has one.
	m := nats.NewMsg(c.subj.Cancel(jobID))
	var sub *nats.Subscription
	if wait > 0 {
		m.Reply = c.nc.NewRespInbox()
		var err error
		if sub, err = c.nc.SubscribeSync(m.Reply); err != nil {
			return false, errors.Join(markErr, err)
		}
		defer sub.Unsubscribe() //nolint:errcheck // nothing to do about it
	}
	if err := c.nc.PublishMsg(m); err != nil {
		return false, errors.Join(markErr, err)
	}
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return false, errors.Join(markErr, err)
	}
	if sub == nil {
		return false, markErr
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := sub.NextMsgWithContext(wctx)
	return err == nil, markErr
}

// Served reports whether some worker has set up group's consumer on the
// tenant's request stream. A job for a group that is not served is answered
// unknown_group by the fleet after a grace period; a CLI can say so at once
// instead.
func (c *Client) Served(ctx context.Context, group string) (bool, error) {
	_, err := c.js.Consumer(ctx, c.subj.RequestStream(), ConsumerName(group))
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
