package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// resolveObject replaces the request decoded from a small message that
// references a large body (header Llm-Object) with the body read from the
// Object Store bucket of the job's tenant. The object must be named after
// the job: a job never reads (nor, once done, deletes) a body stored for
// another job. The small message's id and reply still name the job if the
// object cannot be read.
func (j *job) resolveObject(h nats.Header) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := bus.RequestBody(ctx, j.w.js, j.subj, j.id, h, j.msg.Data())
	if err != nil {
		if errors.Is(err, bus.ErrObjectName) || errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return err // bad input: the reference points at nothing
		}
		return &transientError{err}
	}
	var req bus.Request
	if err := j.enc.Unmarshal(body, &req); err != nil {
		return err
	}
	j.req = req
	return nil
}

// transientError is a failure to read a job's input that may pass (NATS
// unreachable, a leader election): the job is handed back, not rejected.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// dropObject deletes the large body of a finished job, if it had one.
func (j *job) dropObject() {
	h := j.msg.Headers()
	if h.Get(bus.HeaderObject) == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.DeleteRequestObject(ctx, j.w.js, j.subj, j.id, h); err != nil {
		j.w.log.Warn("large request object not deleted (its TTL will)", slog.String("job", j.id), slog.Any("error", err))
	}
}
