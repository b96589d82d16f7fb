package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WatchOption configures Watch.
type WatchOption func(*watchOptions)

type watchOptions struct {
	attempt int
}

// FromAttempt makes Watch's fromSeq apply to the events of delivery attempt
// n; events of other attempts are all passed (a later attempt starts over at
// seq 1 with a restart event). Default: the first attempt that Watch sees.
func FromAttempt(n int) WatchOption { return func(o *watchOptions) { o.attempt = n } }

// Watcher reads one job's events and result; see Client.Watch.
type Watcher struct {
	JobID string
	Reply string
	// Durable is set when the results stream stores events, so that Watch
	// replays them; when not, only events published after Watch are seen.
	Durable bool
	// Stored is the number of the job's messages (events and result) that
	// the results stream held when Watch started. Zero means that the job
	// has not started yet, that its messages expired, or that no job has
	// this id: Next then waits for it.
	Stored uint64

	fromSeq  uint64
	attempt  int
	subjects replySubjects
	it       jetstream.MessagesContext // durable: ordered consumer
	sub      *nats.Subscription        // not durable: live events and result
	stored   *Result                   // not durable: a result stored before Watch
	done     bool
	c        *Client
}

// Watch returns a watcher of job jobID (whose reply prefix is the default
// one): it replays the job's events stored in the results stream, from the
// first one (or from event seq fromSeq of the first attempt, see
// FromAttempt), and follows them live until the result, which it returns
// last. A watcher that is closed and started again with the seq after the
// last event it saw loses no chunk and sees none twice.
//
// Stored events need durable streaming on the worker
// (SWITCHYARD_DURABLE_EVENTS, StreamsConfig.DurableEvents). Without it, Watch
// still returns the result, and the events published after it started.
func (c *Client) Watch(ctx context.Context, jobID string, fromSeq uint64, opts ...WatchOption) (*Watcher, error) {
	if !ValidJobID(jobID) {
		return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("invalid job id %q", jobID)}
	}
	var o watchOptions
	for _, fn := range opts {
		fn(&o)
	}
	w := &Watcher{JobID: jobID, Reply: c.subj.Reply(jobID), fromSeq: fromSeq, attempt: o.attempt, c: c}
	w.subjects = newReplySubjects(w.Reply)
	s, err := c.js.Stream(ctx, StreamResults)
	if err != nil {
		return nil, fmt.Errorf("bus: results stream: %w", err)
	}
	w.Durable = slices.Contains(s.CachedInfo().Config.Subjects, c.subj.StoredEvents())
	if w.Durable {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(w.Reply+".>"))
		if err != nil {
			return nil, fmt.Errorf("bus: watch %s: %w", jobID, err)
		}
		for _, n := range info.State.Subjects {
			w.Stored += n
		}
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{EventsSubject(w.Reply), ResultSubject(w.Reply)},
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("bus: watch %s: %w", jobID, err)
		}
		w.it, err = cons.Messages()
		if err != nil {
			return nil, fmt.Errorf("bus: watch %s: %w", jobID, err)
		}
		return w, nil
	}
	// Subscribe first, then look for a stored result, so that a result
	// published in between is not missed.
	w.sub, err = c.nc.SubscribeSync(w.Reply + ".>")
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s.>: %w", w.Reply, err)
	}
	_ = w.sub.SetPendingLimits(1<<20, 256<<20)
	w.stored, err = c.StoredResult(ctx, w.Reply)
	if err != nil {
		_ = w.sub.Unsubscribe()
		return nil, err
	}
	if w.stored != nil {
		w.Stored = 1
	}
	return w, nil
}

// Next returns the job's next event, or its result (with a nil event) once
// it arrives; after the result it returns io.EOF. It honours ctx.
func (w *Watcher) Next(ctx context.Context) (*Event, *Result, error) {
	for {
		if w.done {
			return nil, nil, io.EOF
		}
		if w.stored != nil {
			r := w.stored
			w.finish()
			return nil, r, nil
		}
		var (
			subject string
			header  nats.Header
			data    []byte
		)
		if w.it != nil {
			m, err := w.it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return nil, nil, err
			}
			subject, header, data = m.Subject(), m.Headers(), m.Data()
		} else {
			m, err := w.sub.NextMsgWithContext(ctx)
			if err != nil {
				return nil, nil, err
			}
			subject, header, data = m.Subject, m.Header, m.Data
		}
		e, r, err := w.subjects.decode(ctx, w.c, subject, header, data)
		switch {
		case err != nil:
			return nil, nil, err
		case r != nil:
			w.finish()
			return nil, r, nil
		case e != nil:
			if w.attempt == 0 {
				w.attempt = e.Attempt
			}
			if e.Attempt == w.attempt && e.Seq < w.fromSeq {
				continue
			}
			return e, nil, nil
		}
	}
}

func (w *Watcher) finish() {
	w.done = true
	_ = w.Close()
}

// Close stops the watcher. It is safe to call twice.
func (w *Watcher) Close() error {
	if w.it != nil {
		w.it.Stop()
		return nil
	}
	if w.sub != nil {
		err := w.sub.Unsubscribe()
		if errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return err
	}
	return nil
}
