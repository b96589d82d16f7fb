package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// job is one delivery of one request message. Its life is three steps:
// intake (intake.go: decode, identify, validate), the chain (chain.go: the
// policy executor chain around the router) and reply (reply.go: every
// publish, ack, nak, term and dead-letter copy).
type job struct {
	w      *Worker
	group  string
	class  bus.Priority // the class it was scheduled as (see Config.Classes)
	msg    jetstream.Msg
	picked time.Time

	ticket // what intake made of the message

	attempt   int // the delivery count
	published time.Time
	stream    string // the request stream and the message's sequence in it
	seq       uint64
	raw       *jetstream.RawStreamMsg // instead of msg, for a message read from the stream (see rawJob)
	answered  bool                    // its result (or its rejection) is stored

	cancelMu sync.Mutex
	cancelFn context.CancelCauseFunc
	cause    error // set when cancelled before cancelFn existed
	// deadline is the job's deadline (zero: none), set before it runs; the
	// read and reply paths check it (see pastDeadline).
	deadline time.Time

	started  bool           // sent to the chain (for the observer)
	restarts map[string]int // restart events by code
	span     trace.Span     // the job's span; never nil once run starts
	traceCtx context.Context
}

func (j *job) countRestart(code string) {
	if j.restarts == nil {
		j.restarts = map[string]int{}
	}
	j.restarts[code]++
}

func (j *job) cancel(cause error) {
	j.cancelMu.Lock()
	defer j.cancelMu.Unlock()
	if j.cancelFn != nil {
		j.cancelFn(cause)
		return
	}
	j.cause = cause
}

// run takes the job through intake, the chain and reply.
func (j *job) run() {
	w := j.w
	meta, err := j.msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack.
		w.log.Error("message without JetStream metadata", slog.Any("error", err))
		return
	}
	j.pickedUp()
	j.attempt = int(meta.NumDelivered)
	j.published = meta.Timestamp
	j.stream, j.seq = meta.Stream, meta.Sequence.Stream
	h := j.msg.Headers()
	j.startSpan(h)
	defer j.span.End()
	j.ticket = w.rules.decode(inbound{ns: j.ns, subject: j.msg.Subject(), header: h, data: j.msg.Data(), seq: j.seq, class: j.class})
	if j.decodeErr == nil && h.Get(bus.HeaderObject) != "" && j.refused == nil {
		j.decodeErr = j.resolveObject(h)
	}

	if j.attempt > 1 && j.republish() {
		return
	}
	if res := j.storedResult(); res != nil {
		// Its ack was lost: answered already, not run again.
		w.log.Info("redelivered job already has a result; acked", slog.String("job", j.id), slog.Int("delivery", j.attempt))
		j.answered = true
		j.ack()
		j.dropObject()
		return
	}
	if errors.As(j.decodeErr, new(*transientError)) {
		w.log.Warn("cannot read the job's input yet; handed back", slog.String("job", j.id), slog.Any("error", j.decodeErr))
		j.handBackSoon()
		return
	}
	call, rej := w.rules.check(&j.ticket, j.group, j.attempt, j.published)
	if rej != nil {
		j.reject(rej)
		return
	}
	if w.cancelled.has(j.subj.Tenant, j.id) {
		j.finish(j.errorResult(bus.CodeCancelled, "job was cancelled before it started", false), nil)
		return
	}
	if j.offloads(call) {
		j.offload(call)
		return
	}
	j.execute(call)
}

// execute runs the call through the worker's chain and answers it, or hands
// it back when the worker shuts down under it.
func (j *job) execute(call *policy.Call) {
	w := j.w
	ctx, cancel := context.WithCancelCause(w.jobCtx)
	defer cancel(nil)
	j.deadline = call.Deadline
	j.cancelMu.Lock()
	j.cancelFn = cancel
	pending := j.cause
	j.cancelMu.Unlock()
	w.mu.Lock()
	w.running[j.subj.ResultMsgID(j.id)] = j
	w.mu.Unlock()
	if pending != nil {
		cancel(pending)
	}

	j.started = true
	w.cfg.Observer.JobStarted(j.group)
	em := newEmitter(j)
	if j.attempt > 1 {
		em.send(&bus.Event{Type: bus.EventRestart, Code: "redelivered", Reason: fmt.Sprintf("delivery %d: an earlier worker did not finish this job", j.attempt)})
	}
	out, err := w.chain.Execute(trace.ContextWithSpan(ctx, j.span), call, em.policy)
	if errors.Is(context.Cause(ctx), errShutdown) {
		w.cfg.Observer.JobHandedBack(j.group)
		j.handBack()
		return
	}
	res := j.result(out, err)
	if em.ttft > 0 {
		res.Timings.TTFTMS = em.ttft.Milliseconds()
	}
	j.finish(res, out)
}

// errPastDeadline cancels a job whose deadline the clock shows passed
// before the context's timer fired (see pastDeadline).
var errPastDeadline = errors.New("deadline passed")

// pastDeadline reports whether the job has a deadline and the worker's
// clock is past it. The job's context has a timer for the deadline, but a
// timer runs late on a process that was frozen: the clock is the truth.
func (j *job) pastDeadline(now time.Time) bool {
	return !j.deadline.IsZero() && !now.Before(j.deadline)
}

func (j *job) errorResult(code bus.ErrorCode, msg string, retryable bool) *bus.Result {
	return &bus.Result{
		ID: j.id, Status: bus.StatusError, Group: j.group, Metadata: j.req.Metadata,
		Error: &bus.Error{Code: code, Message: msg, Retryable: retryable},
	}
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

func (j *job) logDone(res *bus.Result) {
	attrs := []slog.Attr{
		slog.String("job", j.id), slog.String("group", res.Group), slog.String("status", string(res.Status)),
		slog.String("deployment", res.Deployment), slog.Int("attempts", len(res.Attempts)), slog.Int("delivery", j.attempt),
		slog.Int64("total_ms", res.Timings.TotalMS),
	}
	if res.Usage != nil {
		attrs = append(attrs, slog.Int("tokens_in", res.Usage.PromptTokens), slog.Int("tokens_out", res.Usage.CompletionTokens))
	}
	if res.Error != nil {
		attrs = append(attrs, slog.String("code", string(res.Error.Code)))
	}
	j.w.log.LogAttrs(context.Background(), slog.LevelInfo, "job done", attrs...)
}
