package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/pkg/bus"
)

// The reply side of a job: storing its result (or its dead-letter copy),
// then acking or terminating its message, without ever losing it.
//
//   - A JetStream write that fails (storage full, a leader election, a
//     timeout) is retried within the job for Config.StoreRetry; if it still
//     fails the message is handed back with a growing delay (Nak with delay),
//     never acked or terminated. The consumer redelivers without limit (see
//     bus.ConsumerConfig.MaxDeliver), so a handed-back job is delivered again
//     once the server can store its answer.
//   - A write that can never succeed (a result over Config.MaxResultBytes, a
//     message over the server's max payload, an encoding error) is not
//     retried: the job gets one small error result instead (too_large, or
//     internal), and is acked.
//   - A result larger than one NATS message is stored whole in the tenant's
//     Object Store bucket and the result message is its summary (see
//     bus.Client.DecodeResult).
//   - A redelivered job whose result is already stored (its ack was lost)
//     is acked without running again.

// permanentError is a reply-side failure that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent reports whether a failed write of a job's answer can never
// succeed.
func permanent(err error) bool {
	return errors.As(err, new(*permanentError)) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject)
}

// storeRetry builds the retry policy of the reply side's writes: transient
// failures only, with backoff, for at most d.
func storeRetry(d time.Duration, log *slog.Logger) retrypolicy.RetryPolicy[any] {
	return retrypolicy.NewBuilder[any]().
		HandleIf(func(_ any, err error) bool { return err != nil && !permanent(err) }).
		WithMaxRetries(-1).
		WithMaxDuration(d).
		WithBackoff(50*time.Millisecond, 2*time.Second).
		WithJitterFactor(0.2).
		ReturnLastFailure().
		OnRetry(func(e failsafe.ExecutionEvent[any]) {
			log.Debug("store retry", slog.Int("attempt", e.Attempts()), slog.Any("error", e.LastError()))
		}).
		Build()
}

// store runs one JetStream write of the job's answer under the retry
// policy, each try bounded by 10s, and tells the worker's health how each
// try went. The worker's shutdown ends the retries.
func (j *job) store(write func(ctx context.Context) error) error {
	w := j.w
	return failsafe.With[any](w.storePolicy).WithContext(w.jobCtx).Run(func() error {
		ctx, cancel := context.WithTimeout(w.jobCtx, 10*time.Second)
		defer cancel()
		started := time.Now()
		err := write(ctx)
		w.health.record(err, started)
		return err
	})
}

// retryLater hands the job back for a later delivery because what had to be
// stored (its result or its dead-letter copy) could not be: the delay grows
// with the delivery count, up to 5 minutes.
func (j *job) retryLater(what string, err error) {
	d := min(j.w.cfg.HandBackDelay<<min(max(j.attempt-1, 0), 16), 5*time.Minute)
	j.w.log.Error(what+" could not be stored; job handed back for a later delivery",
		slog.String("job", j.id), slog.Int("delivery", j.attempt), slog.Duration("delay", d), slog.Any("error", err))
	if err := j.msg.NakWithDelay(d); err != nil {
		j.w.log.Warn("nak failed; the job is redelivered after AckWait", slog.String("job", j.id), slog.Any("error", err))
	}
}

// ack acks the message and waits for the server to confirm, retrying, so
// that a finished job leaves the work queue. If it still fails the message
// is redelivered later and answered from its stored result.
func (j *job) ack() {
	if err := j.store(func(ctx context.Context) error { return j.msg.DoubleAck(ctx) }); err != nil {
		j.w.log.Warn("ack failed (the result is stored; a redelivery is acked without running)", slog.String("job", j.id), slog.Any("error", err))
	}
}

// storedResult returns the job's result when one is already stored: a
// redelivery of a job whose ack was lost. Only jobs with the default reply
// prefix store their result.
func (j *job) storedResult() *bus.Result {
	// A replayed dead letter's stored result is the dead letter's own until
	// the replay stores its new one: run it again rather than take that.
	if j.attempt < 2 || j.replay != "" {
		return nil
	}
	return j.lookupResult()
}

// lookupResult returns the job's stored result, if any (nil also when it
// cannot tell).
func (j *job) lookupResult() *bus.Result {
	if !j.subj.InResults(j.reply) {
		return nil
	}
	c, err := bus.NewClient(j.w.nc, bus.WithSubjects(j.subj), bus.WithEncoding(j.enc))
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.StoredResult(ctx, j.reply)
	if err != nil {
		j.w.log.Debug("stored result lookup failed", slog.String("job", j.id), slog.Any("error", err))
		return nil
	}
	return r
}

// resultMsg encodes res as the job's result message. A result larger than
// one message is stored whole in the tenant's bucket first and the message
// is its summary; one over MaxResultBytes is a permanentError.
func (j *job) resultMsg(ctx context.Context, res *bus.Result) (*nats.Msg, error) {
	data, err := j.enc.Marshal(res)
	if err != nil {
		return nil, &permanentError{fmt.Errorf("encode result: %w", err)}
	}
	m := nats.NewMsg(bus.ResultSubject(j.reply))
	// A replayed dead letter's result is a new run's: it must not be
	// deduplicated against the dead letter's error result.
	m.Header.Set(bus.HeaderMsgID, j.resultMsgID())
	m.Header.Set(bus.HeaderContentType, j.enc.ContentType())
	if j.digest != "" {
		m.Header.Set(bus.HeaderDigest, j.digest)
	}
	j.injectTrace(m.Header)
	m.Data = data
	if mp := j.w.nc.MaxPayload(); mp <= 0 || int64(len(data)+resultHeadroom) <= mp {
		return m, nil
	}
	if len(data) > j.w.cfg.MaxResultBytes {
		return nil, &permanentError{&tooLargeError{size: len(data), limit: j.w.cfg.MaxResultBytes}}
	}
	name := bus.ResultObjectName(j.id, j.attempt)
	if err := bus.PutResultObject(ctx, j.w.js, j.subj, name, j.enc.ContentType(), data); err != nil {
		return nil, err
	}
	if m.Data, err = j.enc.Marshal(summary(res)); err != nil {
		return nil, &permanentError{fmt.Errorf("encode result summary: %w", err)}
	}
	m.Header.Set(bus.HeaderObject, name)
	return m, nil
}

// resultHeadroom is left for the result message's headers when deciding
// whether it fits in one message.
const resultHeadroom = 8 << 10

// tooLargeError is a result over Config.MaxResultBytes.
type tooLargeError struct{ size, limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the result is %d bytes, more than the worker's limit of %d", e.size, e.limit)
}

// summary is what the message of a result stored as an object carries:
// everything but the large fields (text, json, tool calls, metadata,
// attempts, error details), so that a client that does not read the object
// still knows how the job ended.
func summary(r *bus.Result) *bus.Result {
	s := &bus.Result{
		ID: r.ID, Status: r.Status, FinishReason: r.FinishReason, Usage: r.Usage, CostUSD: r.CostUSD,
		Group: r.Group, Deployment: r.Deployment, Model: r.Model, Timings: r.Timings,
	}
	if r.Error != nil {
		s.Error = &bus.Error{Code: r.Error.Code, Message: truncate(r.Error.Message, 1024), Retryable: r.Error.Retryable}
	}
	return s
}

// substitute is the small error result that replaces one that can never be
// published (see permanent).
func (j *job) substitute(res *bus.Result, err error) *bus.Result {
	code, msg := bus.CodeInternal, "the result could not be published: "+err.Error()
	if tl, ok := errors.AsType[*tooLargeError](err); ok || errors.Is(err, nats.ErrMaxPayload) {
		code = bus.CodeTooLarge
		msg = "the result is too large to store"
		if ok {
			msg = tl.Error()
		}
	}
	s := summary(res)
	s.Status = bus.StatusError
	s.Error = &bus.Error{Code: code, Message: msg}
	return s
}

// health is whether the worker's JetStream writes succeed: the last one
// decides, so it recovers by itself with the next write that works (a job
// handed back for storage is delivered again, and tries). A failure of a
// write that started before the last success ended does not count: it
// tells of the store before that success (a try that timed out after 10s
// while the server restarted), and once the work queue is empty no write
// might come to clear it.
type health struct {
	mu    sync.Mutex
	err   error
	since time.Time
	okAt  time.Time // when the last successful write ended
}

func (h *health) record(err error, started time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.err, h.okAt = nil, time.Now()
	case errors.Is(err, context.Canceled), permanent(err):
		// Shutting down, or the job's own fault: says nothing of the store.
	case started.Before(h.okAt):
		// Older news than the last success.
	case h.err == nil:
		h.err, h.since = err, time.Now()
	default:
		h.err = err
	}
}

// StoreHealth returns nil while the worker's JetStream writes (results,
// dead letters, acks) succeed, and an error naming the last failure and
// since when they have been failing otherwise. /readyz reports it.
func (w *Worker) StoreHealth() error {
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	if w.health.err == nil {
		return nil
	}
	return fmt.Errorf("JetStream writes failing since %s: %w", w.health.since.UTC().Format(time.RFC3339), w.health.err)
}

// recoverPanic ends a job whose goroutine panicked: it logs the panic with
// its stack and answers the job internal (not retryable: it would panic
// again), so that one bad job never takes the worker and the jobs of every
// group down with it.
func (j *job) recoverPanic(v any) {
	w := j.w
	w.log.Error("job panicked; answered internal", slog.String("job", j.id), slog.String("group", j.group),
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("answering a panicked job panicked too; handed back", slog.String("job", j.id), slog.Any("panic", v))
			j.retryLater("the answer of a panicked job", fmt.Errorf("panic: %v", v))
		}
	}()
	if j.answered {
		return
	}
	if j.id == "" {
		// Panicked before the job was identified: nothing to answer with;
		// the delivery count ends it in the DLQ.
		j.retryLater("a job that panicked before its id was read", fmt.Errorf("panic: %v", v))
		return
	}
	j.finish(j.errorResult(bus.CodeInternal, fmt.Sprintf("the worker failed on this job (panic: %v); see its log", v), false), nil)
}
