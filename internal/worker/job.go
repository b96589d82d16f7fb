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

	subj      bus.Subjects // the namespace of the job's tenant
	id        string
	reply     string
	digest    string // the request's Llm-Digest, echoed on the result
	replay    string // the request's Llm-Replay: a replayed dead letter's DLQ sequence
	answer    bool   // a requester can be told: it named an id or a reply
	enc       bus.Encoding
	attempt   int
	published time.Time
	req       bus.Request

	cancelMu sync.Mutex
	cancelFn context.CancelCauseFunc
	cause    error // set when cancelled before cancelFn existed

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
	h := j.msg.Headers()
	j.startSpan(h)
	defer j.span.End()
	data := j.msg.Data()
	j.enc = bus.Detect(h, data)
	decErr := j.enc.Unmarshal(data, &j.req)
	j.identify(h, meta)
	if decErr == nil && h.Get(bus.HeaderObject) != "" {
		decErr = j.resolveObject(h)
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
	if j.req.ID != "" && !bus.ValidJobID(j.req.ID) {
		j.reject(bus.CodeInvalidRequest, fmt.Sprintf("id: %q is not a valid job id (1-128 of [A-Za-z0-9_=/-])", j.req.ID), false)
		return
	}
	if r := j.replyRequested(h); r != "" && !bus.ValidReply(r) {
		j.reject(bus.CodeInvalidRequest, fmt.Sprintf("reply: %q is not a valid subject prefix", r), false)
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
	if w.cancelled.has(j.id) {
		j.finish(j.errorResult(bus.CodeCancelled, "job was cancelled before it started", false), nil)
		return
	}
	if !deadline.IsZero() && !w.cfg.Now().Before(deadline) {
		j.finish(j.errorResult(bus.CodeDeadlineExceeded, fmt.Sprintf("deadline %s passed while the job was queued", deadline.UTC().Format(time.RFC3339Nano)), false), nil)
		return
	}
	j.exec = w.exec
	if t := j.req.Tenant; t != "" {
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
	t := j.req.Tenant
	if t == "" || j.w.cfg.Budgets == nil || res.Usage == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := j.w.cfg.Budgets.Charge(ctx, t, res.Usage.TotalTokens, res.CostUSD); err != nil {
		j.w.log.Warn("budget charge failed", slog.String("tenant", t), slog.String("job", j.id), slog.Any("error", err))
	}
}

// identify sets the job's id, reply prefix and whether anyone can be told.
func (j *job) identify(h nats.Header, meta *jetstream.MsgMetadata) {
	j.subj = j.w.cfg.Subjects
	j.digest = h.Get(bus.HeaderDigest)
	j.replay = h.Get(bus.HeaderReplay)
	j.id = bus.MsgJobID(h) // a replayed dead letter's id less its replay suffix
	if j.id == "" {
		j.id = j.req.ID
	}
	j.answer = j.id != ""
	if !bus.ValidJobID(j.id) {
		// No usable id: derive a stable one from the stream sequence so a
		// redelivery keeps it.
		j.id = fmt.Sprintf("seq-%d", meta.Sequence.Stream)
	}
	j.reply = j.subj.Reply(j.id)
	if r := j.replyRequested(h); r != "" {
		j.answer = true
		if bus.ValidReply(r) {
			j.reply = r
		}
	}
}

func (j *job) replyRequested(h nats.Header) string {
	if r := h.Get(bus.HeaderReply); r != "" {
		return r
	}
	return j.req.Reply
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
	w.running[j.id] = j
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
	if err != nil {
		code, retryable := codeOf(err)
		msg := err.Error()
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errCancelled):
			code, retryable, msg = bus.CodeCancelled, false, "job was cancelled"
		case hasDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded) && !w.cfg.Now().Before(deadline):
			code, retryable, msg = bus.CodeDeadlineExceeded, false, "deadline passed while the job ran: "+msg
		}
		res.Status = bus.StatusError
		res.Error = &bus.Error{Code: code, Message: msg, Retryable: retryable}
	} else if v != nil {
		v.apply(res)
	}
	if em.ttft > 0 {
		res.Timings.TTFTMS = em.ttft.Milliseconds()
	}
	j.charge(res)
	j.finish(res, out)
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
// never redelivered.
func (j *job) reject(code bus.ErrorCode, msg string, dlq bool) {
	w := j.w
	w.log.Warn("job rejected", slog.String("job", j.id), slog.String("group", j.group), slog.String("code", string(code)), slog.String("reason", msg))
	if dlq {
		if err := j.deadLetter(code, msg); err != nil {
			// Without the DLQ copy, Term would lose the message: let it be
			// redelivered instead.
			w.log.Error("dead-letter copy failed; message left for redelivery", slog.String("job", j.id), slog.Any("error", err))
			_ = j.msg.NakWithDelay(5 * time.Second)
			return
		}
	}
	res := j.errorResult(code, msg, false)
	if j.answer {
		if err := j.publishResult(res); err != nil {
			w.log.Error("result publish failed", slog.String("job", j.id), slog.Any("error", err))
			_ = j.msg.NakWithDelay(time.Second)
			return
		}
	}
	j.report(res, nil)
	if err := j.msg.TermWithReason(string(code)); err != nil {
		w.log.Warn("term failed", slog.String("job", j.id), slog.Any("error", err))
	}
}

// deadLetter copies the message, its headers and the reason to the group's
// DLQ subject, waiting for the stream's ack.
func (j *job) deadLetter(code bus.ErrorCode, reason string) error {
	m := nats.NewMsg(j.w.cfg.Subjects.DLQ(dlqGroup(j.group)))
	for k, v := range j.msg.Headers() {
		if k == bus.HeaderMsgID {
			continue // the DLQ stream must keep every copy
		}
		m.Header[k] = v
	}
	m.Header.Set(bus.HeaderDLQCode, string(code))
	m.Header.Set(bus.HeaderDLQReason, truncate(reason, 1024))
	m.Header.Set(bus.HeaderDLQSubject, j.msg.Subject())
	m.Header.Set(bus.HeaderDLQJob, j.id)
	m.Header.Set(bus.HeaderDLQDeliveries, fmt.Sprint(j.attempt))
	m.Data = j.msg.Data()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := j.w.js.PublishMsg(ctx, m)
	return err
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
// message is handed back so that the job is not lost.
func (j *job) finish(res *bus.Result, out *policy.Outcome) {
	w := j.w
	res.Timings.QueuedMS = max(0, j.picked.Sub(j.published).Milliseconds())
	res.Timings.TotalMS = w.cfg.Now().Sub(j.picked).Milliseconds()
	if err := j.publishResult(res); err != nil {
		w.log.Error("result publish failed; job handed back", slog.String("job", j.id), slog.Any("error", err))
		_ = j.msg.NakWithDelay(time.Second)
		return
	}
	if err := j.msg.Ack(); err != nil {
		w.log.Warn("ack failed (the result is stored; a redelivery will not duplicate it)", slog.String("job", j.id), slog.Any("error", err))
	}
	j.dropObject()
	j.report(res, out)
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
	w.log.LogAttrs(context.Background(), slog.LevelInfo, "job done", attrs...)
}

// publishResult publishes the result with Nats-Msg-Id set to the job id:
// into the results stream (awaiting its ack) when the reply prefix is the
// default one, else with core NATS, flushed.
func (j *job) publishResult(res *bus.Result) error {
	data, err := j.enc.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	m := nats.NewMsg(bus.ResultSubject(j.reply))
	// A replayed dead letter's result is a new run's: it must not be
	// deduplicated against the dead letter's error result.
	m.Header.Set(bus.HeaderMsgID, bus.ReplayResultMsgID(j.subj.ResultMsgID(j.id), j.replay))
	m.Header.Set(bus.HeaderContentType, j.enc.ContentType())
	if j.digest != "" {
		m.Header.Set(bus.HeaderDigest, j.digest)
	}
	j.injectTrace(m.Header)
	m.Data = data
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if j.subj.InResults(j.reply) {
		_, err = j.w.js.PublishMsg(ctx, m)
		return err
	}
	if err := j.w.nc.PublishMsg(m); err != nil {
		return err
	}
	return j.w.nc.FlushWithContext(ctx)
}

// handBack returns an unfinished job for redelivery at once.
func (j *job) handBack() {
	j.w.log.Info("job handed back", slog.String("job", j.id))
	if err := j.msg.Nak(); err != nil {
		j.w.log.Warn("nak failed; the job will be redelivered after AckWait", slog.String("job", j.id), slog.Any("error", err))
	}
}
