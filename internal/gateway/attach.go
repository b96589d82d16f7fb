package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// source yields a job's events, then its result (with a nil event); *bus.Job
// and *bus.Watcher are sources.
type source interface {
	Next(ctx context.Context) (*bus.Event, *bus.Result, error)
	Close() error
}

// resultOnly is the source of a finished job whose events are not stored.
type resultOnly struct {
	r    *bus.Result
	done bool
}

func (s *resultOnly) Next(context.Context) (*bus.Event, *bus.Result, error) {
	if s.done {
		return nil, nil, io.EOF
	}
	s.done = true
	return nil, s.r, nil
}

func (s *resultOnly) Close() error { return nil }

// attachment is a job being answered.
type attachment struct {
	src   source
	jobID string
	// keyed: the caller named the job (Idempotency-Key); it outlives the
	// request, so a disconnect does not cancel it.
	keyed bool
	// replay: src starts at the job's first event (a new job, or stored
	// events), so that Last-Event-ID can be honoured.
	replay bool
	// existed: the job was published before this request.
	existed bool
}

func (a *attachment) close() { _ = a.src.Close() }

// jobKey returns the job id a request names with Idempotency-Key or
// X-Request-Id, "" when it names none. A key that is not a valid job id is
// hashed into one, so any key works.
func jobKey(r *http.Request) string {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		k = r.Header.Get("X-Request-Id")
	}
	if k == "" || bus.ValidJobID(k) {
		return k
	}
	return hashKey(k)
}

// hashKey turns any key into a job id.
func hashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return "key-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
}

// attach publishes req as a new job, or re-attaches to the job it names: a
// stored result is answered from the store (with its events when they are
// durable), a job still running is followed from its stored events (or,
// without durable events, from now on).
func (g *Gateway) attach(ctx context.Context, c *bus.Client, group, id string, req *bus.Request) (*attachment, *apiError) {
	req.ID = id
	a := &attachment{keyed: id != ""}
	if a.keyed {
		r, e := storedOf(ctx, c, req)
		if e != nil {
			return nil, e
		}
		if r != nil {
			a.jobID, a.existed = id, true
			return g.rewatch(ctx, c, a, r)
		}
	}
	job, err := c.Publish(ctx, group, req)
	if err != nil {
		return nil, busError(err)
	}
	a.jobID = job.ID
	if !job.Duplicate {
		a.src, a.replay = job, true
		return a, nil
	}
	_ = job.Close()
	a.existed = true
	// The job was published before. Its result may have reached the first
	// requester live a moment before the stream stored it, so the check
	// above missed it: look again for a while before following the job, or
	// a reused key with other parameters would be answered the first
	// request's result.
	for wait := 10 * time.Millisecond; a.keyed && wait <= 160*time.Millisecond; wait *= 2 {
		r, e := storedOf(ctx, c, req)
		if e != nil {
			return nil, e
		}
		if r != nil {
			return g.rewatch(ctx, c, a, r)
		}
		select {
		case <-ctx.Done():
			return nil, busError(ctx.Err())
		case <-time.After(wait):
		}
	}
	return g.rewatch(ctx, c, a, nil)
}

// storedOf is req's stored result (nil when none is stored yet), or the
// idempotency error when the result stored under its id is of other
// parameters. Streamed or whole is how the answer is sent, not what is
// asked: a whole retry of a streamed request matches.
func storedOf(ctx context.Context, c *bus.Client, req *bus.Request) (*bus.Result, *apiError) {
	r, err := c.StoredResultOf(ctx, req)
	if errors.Is(err, bus.ErrIDTaken) {
		other := *req
		flipped := req.Stream == nil || !*req.Stream
		other.Stream = &flipped
		if r, err = c.StoredResultOf(ctx, &other); errors.Is(err, bus.ErrIDTaken) {
			return nil, idempotencyMismatch()
		}
	}
	if err != nil {
		return nil, busError(err)
	}
	return r, nil
}

// rewatch follows a job published before: from its stored events when they
// are durable, else from now on (or from its stored result r).
func (g *Gateway) rewatch(ctx context.Context, c *bus.Client, a *attachment, r *bus.Result) (*attachment, *apiError) {
	w, err := c.Watch(ctx, a.jobID, 0)
	if err != nil {
		return nil, busError(err)
	}
	if w.Durable {
		a.src, a.replay = w, true
		return a, nil
	}
	if r != nil {
		_ = w.Close()
		a.src = &resultOnly{r: r}
		return a, nil
	}
	a.src = w
	return a, nil
}

// idempotencyMismatch answers a request whose Idempotency-Key (or
// X-Request-Id) was first used with other parameters: 422, as the IETF's
// Idempotency-Key draft says (Stripe answers the same case with an
// idempotency_error), never the other request's answer.
func idempotencyMismatch() *apiError {
	e := invalidParam("", "idempotency_key_reused", "Keys for idempotent requests can only be used with the same parameters they were first used with; use another Idempotency-Key.")
	e.status = http.StatusUnprocessableEntity
	return e
}

// busError turns a client error into an answer; a failure to reach the
// fleet is retryable.
func busError(err error) *apiError {
	var be *bus.Error
	if errors.As(err, &be) {
		return &apiError{Error: be}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e := newError(bus.CodeTimeout, "the request ended before the fleet answered: %v", err)
		e.Retryable = true
		return e
	}
	e := newError(bus.CodeProviderUnavailable, "the job queue is unavailable: %v", err)
	e.Retryable = true
	return e
}

// cancelAbandoned cancels a job whose only client left before its result.
func (g *Gateway) cancelAbandoned(c *bus.Client, a *attachment) {
	if a.keyed || a.existed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Cancel(ctx, a.jobID); err != nil {
		g.log.Warn("cancel of an abandoned job failed", "job", a.jobID, "error", err)
		return
	}
	g.met.abandoned.Inc()
}
