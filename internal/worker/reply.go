package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// The reply side of a job: every publish (events, result, dead-letter
// copy) and every ack, nak and term of its message is in this file, so
// that how a job is answered, and that it is never lost, is read in one
// place.
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
//   - A result that was sent but not stored (its PubAck failed; the client
//     may have seen it live) is kept in the unstored memo (unstored.go), and
//     a redelivery of the job to this worker publishes the same message
//     again instead of running the job (republish).

// permanentError is a reply-side failure that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent reports whether a failed write of a job's answer can never
// succeed. An ack of a message this client acked already fails in nats.go
// before anything is sent: trying again cannot help, and it says nothing
// of the store.
func permanent(err error) bool {
	return errors.As(err, new(*permanentError)) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, jetstream.ErrMsgAlreadyAckd)
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

// handBack returns an unfinished job for redelivery at once.
func (j *job) handBack() {
	j.w.log.Info("job handed back", slog.String("job", j.id))
	if err := j.msg.Nak(); err != nil {
		j.w.log.Warn("nak failed; the job will be redelivered after AckWait", slog.String("job", j.id), slog.Any("error", err))
	}
}

// pickedUp is the chaos_broken_ack build's ack on pick-up (see
// ackOnPickUp); a no-op in every other build.
func (j *job) pickedUp() {
	if ackOnPickUp {
		_ = j.msg.Ack()
	}
}

// touch tells the server the job is still running (keepAlive), so that a
// long generation is not redelivered.
func (j *job) touch() {
	if err := j.msg.InProgress(); err != nil {
		j.w.log.Debug("in-progress failed", slog.String("job", j.id), slog.Any("error", err))
	}
}

// handBackSoon returns a job whose input cannot be read yet (see
// transientError) for a delivery in a little while.
func (j *job) handBackSoon() { _ = j.msg.NakWithDelay(2 * time.Second) }

// handBackUnstarted returns a message fetched while the worker stops, after
// this worker's pull request has expired, so that another worker gets it.
func (w *Worker) handBackUnstarted(msg jetstream.Msg) {
	_ = msg.NakWithDelay(w.cfg.FetchWait + 500*time.Millisecond)
}

// confirmCancel answers a cancel request (bus.Client.CancelConfirmed) that
// reached a running job; only the worker running it answers.
func confirmCancel(m *nats.Msg, id string) {
	if m.Reply != "" {
		_ = m.Respond([]byte(id))
	}
}

// storedResult returns the job's result when one is already stored: a
// redelivery of a job whose ack was lost. Only jobs with the default reply
// prefix store their result.
//
// The lookup is bounded by the job's deadline (see lookupBound) and ends
// with the worker's jobs. When it cannot tell (the results stream has no
// leader, the connection is stalled) the job runs again, as when nothing is
// stored. Past the deadline that run is the deadline_exceeded answer, at
// once and without a provider call; its store waits for the stream as any
// answer's does, and if a result was stored after all the stream keeps that
// one (the same Nats-Msg-Id). Handing the job back instead would spend a
// delivery per failed lookup, and the last delivery ends in the DLQ.
func (j *job) storedResult() *bus.Result {
	// A replayed dead letter's stored result is the dead letter's own until
	// the replay stores its new one: run it again rather than take that.
	if j.attempt < 2 || j.replay != "" {
		return nil
	}
	d := j.lookupBound(j.w.cfg.Now())
	ctx, cancel := context.WithTimeout(j.w.jobCtx, d)
	defer cancel()
	r, err := j.lookupResult(ctx)
	if err != nil {
		j.w.log.Warn("cannot tell whether the redelivered job has a stored result; running it again",
			slog.String("job", j.id), slog.Int("delivery", j.attempt), slog.Duration("waited", d), slog.Any("error", err))
		return nil
	}
	return r
}

// A stored result is one direct get away: milliseconds on a healthy
// stream. lookupMax bounds the wait of a job without a deadline (and of
// the janitor); lookupFloor is the least a lookup gets, even past the
// deadline, so that a healthy stream always answers it (a lookup that
// cannot answer runs the job again: a second, different answer that a live
// client may see).
const (
	lookupMax   = 5 * time.Second
	lookupFloor = 500 * time.Millisecond
)

// lookupBound is how long the job's stored-result lookup may wait at now:
// until its deadline, within [lookupFloor, lookupMax]. The deadline is
// read from the request (the job's own field is set only when it runs).
func (j *job) lookupBound(now time.Time) time.Duration {
	d := lookupMax
	if dl, err := deadlineOf(&j.req, j.published); err == nil && !dl.IsZero() {
		d = min(d, dl.Sub(now))
	}
	return max(d, lookupFloor)
}

// lookupResult returns the job's stored result: nil when none is stored
// (or the job's reply prefix is outside the results stream), an error when
// it cannot tell before ctx ends.
func (j *job) lookupResult(ctx context.Context) (*bus.Result, error) {
	if !j.subj.InResults(j.reply) {
		return nil, nil
	}
	c, err := j.w.resultReader(j.subj)
	if err != nil {
		return nil, err
	}
	return c.StoredResult(ctx, j.reply)
}

// resultReader returns the worker's client for reading stored results in
// the namespace subj, made once per namespace. Reading a result does not
// depend on the client's encoding (a result says its own).
func (w *Worker) resultReader(subj bus.Subjects) (*bus.Client, error) {
	if c, ok := w.readers.Load(subj); ok {
		return c.(*bus.Client), nil
	}
	c, err := bus.NewClient(w.nc, bus.WithSubjects(subj))
	if err != nil {
		return nil, err
	}
	v, _ := w.readers.LoadOrStore(subj, c)
	return v.(*bus.Client), nil
}

// reject answers bad input (when someone can be told), copies undecodable
// or exhausted messages to the DLQ, and terminates the message so that it is
// never redelivered. What cannot be stored yet hands the job back instead
// (see retryLater): without its DLQ copy, terminating would lose it.
func (j *job) reject(r *rejection) {
	w := j.w
	code, msg := r.code, r.msg
	w.log.Warn("job rejected", slog.String("job", j.id), slog.String("group", j.group), slog.String("code", string(code)), slog.String("reason", msg))
	if r.dlq {
		if err := j.deadLetter(code, msg); err != nil {
			j.retryLater("dead-letter copy", err)
			return
		}
	}
	res := j.errorResult(code, msg, false)
	if j.answer {
		var err error
		if res, err = j.publish(res); err != nil {
			j.retryLater("error result", err)
			return
		}
	}
	j.answered = true
	j.report(res, nil)
	if err := j.msg.TermWithReason(string(code)); err != nil {
		w.log.Warn("term failed", slog.String("job", j.id), slog.Any("error", err))
	}
}

// deadLetter copies the message, its headers and the reason to the group's
// DLQ subject, waiting for the stream's ack (retried, see store). The copy's
// Nats-Msg-Id names the stored message, so that a redelivery that copies it
// again within the DLQ stream's dedupe window adds no second entry. A copy
// over the server's max payload (a raw request within a few KB of it) keeps
// the body's head only, marked Llm-Dlq-Truncated.
func (j *job) deadLetter(code bus.ErrorCode, reason string) error {
	m := nats.NewMsg(j.w.cfg.Subjects.DLQ(dlqGroup(j.group)))
	subject, h, data := j.message()
	for k, v := range h {
		if k == bus.HeaderMsgID {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(bus.HeaderMsgID, fmt.Sprintf("dlq.%s.%d", j.stream, j.seq))
	m.Header.Set(bus.HeaderDLQCode, string(code))
	m.Header.Set(bus.HeaderDLQReason, truncate(reason, 1024))
	m.Header.Set(bus.HeaderDLQSubject, subject)
	m.Header.Set(bus.HeaderDLQJob, j.id)
	m.Header.Set(bus.HeaderTenant, j.subj.Tenant)
	m.Header.Set(bus.HeaderDLQDeliveries, fmt.Sprint(j.attempt))
	m.Data = data
	if mp := j.w.nc.MaxPayload(); mp > 0 && int64(len(m.Data)+resultHeadroom) > mp {
		m.Header.Set(bus.HeaderDLQTruncated, fmt.Sprint(len(m.Data)))
		m.Data = m.Data[:max(0, int(mp)-resultHeadroom)]
	}
	return j.store(func(ctx context.Context) error {
		_, err := j.w.js.PublishMsg(ctx, m)
		return err
	})
}

// message returns the subject, headers and data of the job's message.
func (j *job) message() (string, nats.Header, []byte) {
	if j.raw != nil {
		return j.raw.Subject, j.raw.Header, j.raw.Data
	}
	return j.msg.Subject(), j.msg.Headers(), j.msg.Data()
}

func dlqGroup(g string) string {
	if bus.ValidGroup(g) {
		return g
	}
	return "_invalid"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// finish publishes the result and acks; if the result cannot be stored the
// message is handed back (see retryLater) so that the job is not lost.
func (j *job) finish(res *bus.Result, out *policy.Outcome) {
	w := j.w
	now := w.cfg.Now()
	res.Timings.QueuedMS = max(0, j.picked.Sub(j.published).Milliseconds())
	res.Timings.TotalMS = now.Sub(j.picked).Milliseconds()
	if res.Status == bus.StatusOK && j.pastDeadline(now) {
		// The answer is complete, but after the deadline: a worker that was
		// frozen (paused, stopped, starved) reads the rest of the stream when
		// it is thawed, before its context's timer has run. The contract
		// says deadline_exceeded (docs/wire.md), so the answer is not
		// delivered; what it cost is still reported. The check uses the
		// instant total_ms is measured at, so the result's timings agree.
		res.Status, res.Text, res.JSON, res.ToolCalls, res.FinishReason = bus.StatusError, "", nil, nil, ""
		res.Error = &bus.Error{Code: bus.CodeDeadlineExceeded, Message: fmt.Sprintf("the answer was complete after the deadline %s", j.deadline.UTC().Format(time.RFC3339Nano))}
	}
	res, err := j.publish(res)
	if err != nil {
		j.retryLater("result", err)
		return
	}
	j.answered = true
	j.ack()
	j.dropObject()
	j.report(res, out)
	j.logDone(res)
}

// publish publishes the job's result (see publishResult) and returns what
// was published: res, or, when res can never be published (too large, not
// encodable), the small error result that replaces it. An error means the
// result could not be stored yet.
func (j *job) publish(res *bus.Result) (*bus.Result, error) {
	err := j.publishResult(res)
	if err == nil || !permanent(err) {
		return res, err
	}
	j.w.log.Warn("result cannot be published; answered with an error instead", slog.String("job", j.id), slog.Any("error", err))
	sub := j.substitute(res, err)
	return sub, j.publishResult(sub)
}

// publishResult publishes the result with a tenant-qualified Nats-Msg-Id
// (see bus.Subjects.ResultMsgID): into the results stream (awaiting its
// ack) when the reply prefix is the default one, else with core NATS,
// flushed. Transient failures are retried (see store); a result larger than
// one message goes to the Object Store first (see resultMsg).
//
// A message that was sent but not stored is kept for the job's next
// delivery (see unstored): what the client may have seen live is what the
// stream stores.
func (j *job) publishResult(res *bus.Result) error {
	j.w.scrubResult(res)
	var m *nats.Msg
	err := j.store(func(ctx context.Context) error {
		if m == nil {
			var err error
			if m, err = j.resultMsg(ctx, res); err != nil {
				return err
			}
		}
		return j.sendResultMsg(ctx, m)
	})
	switch {
	case err == nil:
		j.w.unstored.forget(j.resultMsgID())
	case m != nil && !permanent(err):
		j.w.unstored.put(m, res)
	}
	return err
}

// resultMsgID is the Nats-Msg-Id of the job's result message (see
// resultMsg).
func (j *job) resultMsgID() string {
	return bus.ReplayResultMsgID(j.subj.ResultMsgID(j.id), j.replay)
}

// sendResultMsg publishes an encoded result message: into the results
// stream (awaiting its ack) when the reply prefix is the default one, else
// with core NATS, flushed.
func (j *job) sendResultMsg(ctx context.Context, m *nats.Msg) error {
	if j.subj.InResults(j.reply) {
		_, err := j.w.js.PublishMsg(ctx, m)
		return err
	}
	if err := j.w.nc.PublishMsg(m); err != nil {
		return err
	}
	return j.w.nc.FlushWithContext(ctx)
}

// republish answers a redelivered job with the result message an earlier
// delivery could not store, if this worker kept one: it publishes the same
// bytes again and acks. It reports whether the job is done with (answered,
// or handed back because the store still fails).
func (j *job) republish() bool {
	m, res := j.w.unstored.get(j.resultMsgID())
	if m == nil {
		return false
	}
	j.w.log.Info("redelivered job has a result that was not stored; publishing it again, not running the job",
		slog.String("job", j.id), slog.Int("delivery", j.attempt))
	if err := j.store(func(ctx context.Context) error { return j.sendResultMsg(ctx, m) }); err != nil {
		j.retryLater("result", err)
		return true
	}
	j.w.unstored.forget(j.resultMsgID())
	j.answered = true
	j.ack()
	j.dropObject()
	j.report(res, nil)
	j.logDone(res)
	return true
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
		s.Error = &bus.Error{Code: r.Error.Code, Message: truncate(r.Error.Message, 1024), Retryable: r.Error.Retryable, RetryAfterMS: r.Error.RetryAfterMS}
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

// send publishes one event (best effort: a failure is logged once per job).
func (e *emitter) send(ev *bus.Event) {
	if ev.Type == bus.EventRestart {
		e.j.countRestart(ev.Code)
	}
	if !e.on {
		return
	}
	if ev.Reason != "" {
		ev.Reason = e.j.w.scrub(ev.Reason)
	}
	e.seq++
	ev.ID = e.j.id
	ev.Seq = e.seq
	ev.Attempt = e.j.attempt
	data, err := e.j.enc.Marshal(ev)
	if err == nil {
		// No headers: an event is the hottest message of a job, headers cost
		// as much as the rest of it, and the wire contract tells the
		// encoding by the first byte ('{' is JSON) when there is none.
		if e.ttl != nil {
			err = e.j.w.nc.PublishMsg(&nats.Msg{Subject: e.subject, Data: data, Header: e.ttl})
		} else {
			err = e.j.w.nc.Publish(e.subject, data)
		}
	}
	if err != nil && !e.failed {
		// Events are best effort; the result is not. Log once per job.
		e.failed = true
		e.j.w.log.Warn("event publish failed", slog.String("job", e.j.id), slog.Any("error", err))
	}
}
