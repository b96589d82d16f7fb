package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// job is one delivery of one request message.
type job struct {
	w      *Worker
	group  string
	msg    jetstream.Msg
	picked time.Time

	ns        bus.Subjects // the namespace of the request stream it came from
	subj      bus.Subjects // the namespace of the job's tenant, from its subject
	tenant    string       // whose keys and budget it uses (see identify)
	refused   *bus.Error   // why the job must not run, found by identify
	id        string
	reply     string
	digest    string // the request's Llm-Digest, echoed on the result
	replay    string // the request's Llm-Replay: a replayed dead letter's DLQ sequence
	answer    bool   // a requester can be told: it named an id or a reply
	enc       bus.Encoding
	attempt   int
	published time.Time
	req       bus.Request

	stream   string // the request stream and the message's sequence in it
	seq      uint64
	raw      *jetstream.RawStreamMsg // instead of msg, for a message read from the stream (see rawJob)
	answered bool                    // its result (or its rejection) is stored

	cancelMu sync.Mutex
	cancelFn context.CancelCauseFunc
	cause    error // set when cancelled before cancelFn existed
	// deadline is the job's deadline (zero: none), set before it runs; the
	// read and reply paths check it (see pastDeadline).
	deadline time.Time

	exec     Executor       // the router of the job's tenant, else the worker's
	started  bool           // sent to the router (for the observer)
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

func (j *job) run() {
	w := j.w
	meta, err := j.msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack.
		w.log.Error("message without JetStream metadata", slog.Any("error", err))
		return
	}
	if ackOnPickUp {
		_ = j.msg.Ack() // the chaos_broken_ack build only
	}
	j.attempt = int(meta.NumDelivered)
	j.published = meta.Timestamp
	j.stream, j.seq = meta.Stream, meta.Sequence.Stream
	h := j.msg.Headers()
	j.startSpan(h)
	defer j.span.End()
	data := j.msg.Data()
	j.enc = bus.Detect(h, data)
	decErr := j.enc.Unmarshal(data, &j.req)
	j.identify(j.msg.Subject(), h, meta)
	if decErr == nil && h.Get(bus.HeaderObject) != "" && j.refused == nil {
		decErr = j.resolveObject(h)
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
	switch {
	case errors.As(decErr, new(*transientError)):
		w.log.Warn("cannot read the job's input yet; handed back", slog.String("job", j.id), slog.Any("error", decErr))
		_ = j.msg.NakWithDelay(2 * time.Second)
		return
	case decErr != nil:
		j.reject(bus.CodeInvalidRequest, "cannot decode request ("+j.enc.String()+"): "+decErr.Error(), true)
		return
	case j.attempt >= w.cfg.Consumer.MaxDeliver:
		j.reject(bus.CodeInternal, fmt.Sprintf("job was delivered %d times without finishing; moved to the dead-letter queue", j.attempt), true)
		return
	}
	if r := j.admit(); r != nil {
		j.reject(r.Code, r.Message, false)
		return
	}
	lreq, err := toLLM(&j.req)
	if err != nil {
		j.reject(bus.CodeInvalidRequest, err.Error(), false)
		return
	}
	con, err := newContract(lreq, &j.req, w.cfg.ValidationRetries)
	if err != nil {
		j.reject(bus.CodeInvalidRequest, err.Error(), false)
		return
	}
	deadline, err := deadlineOf(&j.req, j.published)
	if err != nil {
		j.reject(bus.CodeInvalidRequest, err.Error(), false)
		return
	}
	if w.cancelled.has(j.subj.Tenant, j.id) {
		j.finish(j.errorResult(bus.CodeCancelled, "job was cancelled before it started", false), nil)
		return
	}
	if !deadline.IsZero() && !w.cfg.Now().Before(deadline) {
		j.finish(j.errorResult(bus.CodeDeadlineExceeded, fmt.Sprintf("deadline %s passed while the job was queued", deadline.UTC().Format(time.RFC3339Nano)), false), nil)
		return
	}
	j.exec = w.exec
	if t := j.tenant; t != "" {
		if e, ok := w.cfg.Tenants[t]; ok {
			j.exec = e
		}
		if w.cfg.Budgets != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := w.cfg.Budgets.Allow(ctx, t)
			cancel()
			if err != nil {
				code, retryable := codeOf(err)
				j.finish(j.errorResult(code, err.Error(), retryable), nil)
				return
			}
		}
	}
	j.execute(lreq, con, deadline)
}

// charge adds the job's usage to its tenant's budget.
func (j *job) charge(res *bus.Result) {
	t := j.tenant
	if t == "" || j.w.cfg.Budgets == nil || res.Usage == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := j.w.cfg.Budgets.Charge(ctx, t, res.Usage.TotalTokens, res.CostUSD); err != nil {
		j.w.log.Warn("budget charge failed", slog.String("tenant", t), slog.String("job", j.id), slog.Any("error", err))
	}
}

// execute runs the request; con (nil for plain text) is what its answer must
// satisfy, with re-asks.
func (j *job) execute(lreq *llm.Request, con *contract, deadline time.Time) {
	w := j.w
	ctx, cancel := context.WithCancelCause(w.jobCtx)
	defer cancel(nil)
	ctx, stopTimer := context.WithTimeout(ctx, w.cfg.MaxJobTime)
	defer stopTimer()
	hasDeadline := !deadline.IsZero()
	j.deadline = deadline
	if hasDeadline {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, deadline)
		defer stop()
	}
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
	var (
		out *policy.Outcome
		v   *verdict
		err error
	)
	if con == nil {
		out, err = j.exec.Execute(trace.ContextWithSpan(ctx, j.span), &policy.Call{Group: j.group, Request: lreq}, em.policy)
	} else {
		em.enablePartials(con)
		out, v, err = j.executeValidated(trace.ContextWithSpan(ctx, j.span), lreq, con, em)
	}
	if cause := context.Cause(ctx); errors.Is(cause, errShutdown) {
		if j.started {
			w.cfg.Observer.JobDone(JobReport{Group: j.group, Started: true, Result: &bus.Result{ID: j.id, Status: "handed_back"}, Delivery: j.attempt})
		}
		j.handBack()
		return
	}
	res := j.outcomeResult(out)
	switch {
	case err != nil:
		code, retryable := codeOf(err)
		msg := err.Error()
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errCancelled):
			code, retryable, msg = bus.CodeCancelled, false, "job was cancelled"
		case j.pastDeadline(w.cfg.Now()):
			code, retryable, msg = bus.CodeDeadlineExceeded, false, "deadline passed while the job ran: "+msg
		}
		res.Status = bus.StatusError
		res.Error = &bus.Error{Code: code, Message: msg, Retryable: retryable}
	case v != nil:
		v.apply(res)
	}
	if em.ttft > 0 {
		res.Timings.TTFTMS = em.ttft.Milliseconds()
	}
	j.charge(res)
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

// outcomeResult builds the result of an execution, successful or not.
func (j *job) outcomeResult(out *policy.Outcome) *bus.Result {
	res := &bus.Result{ID: j.id, Status: bus.StatusOK, Group: j.group, Metadata: j.req.Metadata}
	if out == nil {
		return res
	}
	res.Text = out.Text
	res.FinishReason = string(out.FinishReason)
	res.CostUSD = out.CostUSD
	res.Group = cmpOr(out.Group, j.group)
	res.Deployment = out.Deployment
	res.Model = out.Model
	if u := out.Usage; u != (llm.Usage{}) {
		res.Usage = &bus.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	for _, tc := range out.ToolCalls {
		res.ToolCalls = append(res.ToolCalls, bus.ToolCall{ID: tc.ID, Type: "function", Function: bus.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	for _, a := range out.Attempts {
		ba := bus.Attempt{Deployment: a.Deployment, DurationMS: a.Duration.Milliseconds()}
		if a.Err != nil {
			code, _ := codeOf(a.Err)
			ba.ErrorCode = string(code)
			ba.Message = a.Err.Error()
		}
		res.Attempts = append(res.Attempts, ba)
	}
	return res
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (j *job) errorResult(code bus.ErrorCode, msg string, retryable bool) *bus.Result {
	return &bus.Result{
		ID: j.id, Status: bus.StatusError, Group: j.group, Metadata: j.req.Metadata,
		Error: &bus.Error{Code: code, Message: msg, Retryable: retryable},
	}
}

// reject answers bad input (when someone can be told), copies undecodable
// or exhausted messages to the DLQ, and terminates the message so that it is
// never redelivered. What cannot be stored yet hands the job back instead
// (see retryLater): without its DLQ copy, terminating would lose it.
func (j *job) reject(code bus.ErrorCode, msg string, dlq bool) {
	w := j.w
	w.log.Warn("job rejected", slog.String("job", j.id), slog.String("group", j.group), slog.String("code", string(code)), slog.String("reason", msg))
	if dlq {
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
		res.Status, res.Text, res.ToolCalls, res.FinishReason = bus.StatusError, "", nil, ""
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

// handBack returns an unfinished job for redelivery at once.
func (j *job) handBack() {
	j.w.log.Info("job handed back", slog.String("job", j.id))
	if err := j.msg.Nak(); err != nil {
		j.w.log.Warn("nak failed; the job will be redelivered after AckWait", slog.String("job", j.id), slog.Any("error", err))
	}
}
