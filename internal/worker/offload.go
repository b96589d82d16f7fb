package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Offload: a job that can wait (class batch with a deadline at least the
// group's vendor_batch.max_wait away, or none; or service_tier batch) of a
// group whose vendor has a batch API is recorded in its tenant's offload
// bucket and acked, instead of run (internal/offload). The engine sends it
// in a vendor batch and answers it through offloadHost, with this file's
// reply path: its result is published as if the job had just run.

// OffloadConfig turns the vendor batch offload on (Config.Offload).
type OffloadConfig struct {
	// Targets says where a namespace's group's batches go (see
	// offload.Targets). Required.
	Targets offload.Targets
	// Engine configures the engine (its defaults: ticks of 5s, leases of
	// 30s).
	Engine offload.Config
}

// offloads reports whether a checked job goes to a vendor batch instead of
// a live call.
func (j *job) offloads(call *policy.Call) bool {
	w := j.w
	switch {
	case w.offload == nil, !j.answer, call.Contract != nil:
		// Nobody to answer; an answer that must be validated (re-asks are
		// live calls).
		return false
	}
	if h := j.msg.Headers(); h.Get(bus.HeaderObject) != "" {
		return false // its large body is dropped once the job is acked
	}
	t, ok := w.offload.Target(j.subj.Tenant, j.group)
	if !ok {
		return false
	}
	if j.req.ServiceTier == bus.ServiceTierBatch {
		return true
	}
	return j.class == bus.PriorityBatch && (call.Deadline.IsZero() || call.Deadline.Sub(w.cfg.Now()) >= t.Options.MaxWait)
}

// offload records the job in its tenant's offload bucket and acks it. A
// job the bucket cannot take (too large, or the bucket is full) runs live;
// one whose record cannot be stored yet is handed back.
func (j *job) offload(call *policy.Call) {
	w := j.w
	if b := w.cfg.Budgets; b != nil {
		ctx, cancel := context.WithTimeout(w.jobCtx, 5*time.Second)
		err := b.Allow(ctx, call.Tenant)
		cancel()
		if err != nil {
			j.finish(j.result(nil, err), nil)
			return
		}
	}
	subject, h, data := j.message()
	l := &offload.Line{
		Job: j.id, Group: j.group, Subject: subject, Header: h, Data: data,
		Published: j.published, Stream: j.stream, Seq: j.seq, Tenant: j.subj.Tenant,
	}
	err := j.store(func(ctx context.Context) error {
		err := w.offload.Add(ctx, l)
		if errors.Is(err, offload.ErrLineTooLarge) || errors.Is(err, offload.ErrBucketFull) {
			return &permanentError{err}
		}
		return err
	})
	switch {
	case errors.Is(err, offload.ErrLineTooLarge), errors.Is(err, offload.ErrBucketFull):
		w.log.Info("job runs live", slog.String("job", j.id), slog.String("group", j.group), slog.String("why", err.Error()))
		j.execute(call)
		return
	case err != nil:
		j.retryLater("vendor batch line", err)
		return
	}
	w.log.Info("job waits for a vendor batch", slog.String("job", j.id), slog.String("group", j.group))
	j.ack()
}

// offloadHost is the worker as the offload engine's host.
type offloadHost struct{ w *Worker }

var _ offload.Host = offloadHost{}

// lineJob is the job of a line, as intake makes it of its message.
func (w *Worker) lineJob(l *offload.Line) *job {
	m := &jetstream.RawStreamMsg{Subject: l.Subject, Sequence: l.Seq, Header: l.Header, Data: l.Data, Time: l.Published}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	j := w.rawJob(m, w.cfg.Subjects.ForTenant(l.Tenant), l.Group)
	j.stream = l.Stream
	j.attempt = 1
	return j
}

// Request implements offload.Host.
func (h offloadHost) Request(l *offload.Line) (*llm.Request, error) {
	j := h.w.lineJob(l)
	call, rej := h.w.rules.check(&j.ticket, j.group, 1, j.published)
	if rej != nil {
		return nil, fmt.Errorf("%s: %s", rej.code, rej.msg)
	}
	return call.Request, nil
}

// Cancelled implements offload.Host.
func (h offloadHost) Cancelled(l *offload.Line) bool {
	return h.w.cancelled != nil && h.w.cancelled.has(l.Tenant, l.Job)
}

// Answer implements offload.Host: the line's result, published as the
// job's (deduplicated by its id in the results stream, so that two workers
// answering the same line publish one result), and charged to its tenant.
func (h offloadHost) Answer(ctx context.Context, l *offload.Line, a *offload.Answer) error {
	w := h.w
	j := w.lineJob(l)
	now := w.cfg.Now()
	var res *bus.Result
	switch {
	case a.Cancelled && a.BatchID != "":
		res = j.errorResult(bus.CodeCancelled, "job was cancelled after its vendor batch "+a.BatchID+" was sent; its answer is dropped", false)
	case a.Cancelled:
		res = j.errorResult(bus.CodeCancelled, "job was cancelled before its vendor batch was sent", false)
	default:
		res = &bus.Result{
			ID: j.id, Status: bus.StatusOK, Group: l.Group, Metadata: j.req.Metadata,
			Text: a.Text, FinishReason: string(a.FinishReason), CostUSD: a.CostUSD,
			Deployment: a.Target.Deployment, Model: a.Target.Model, VendorBatchID: a.BatchID,
		}
		if u := a.Usage; u != (llm.Usage{}) {
			res.Usage = &bus.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
		}
		for _, tc := range a.ToolCalls {
			res.ToolCalls = append(res.ToolCalls, bus.ToolCall{ID: tc.ID, Type: "function", Function: bus.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
		}
	}
	var err error
	res.Timings.QueuedMS = max(0, l.Added.Sub(l.Published).Milliseconds())
	res.Timings.TotalMS = max(0, now.Sub(l.Added).Milliseconds())
	if res, err = j.publish(res); err != nil {
		return err
	}
	if b := w.cfg.Budgets; b != nil && !a.Cancelled {
		tenant := j.tenant
		if err := b.Charge(ctx, tenant, a.Usage.TotalTokens, a.CostUSD); err != nil {
			w.log.Warn("budget charge failed", slog.String("tenant", tenant), slog.Any("error", err))
		}
	}
	w.cfg.Observer.JobDone(JobReport{Group: l.Group, Result: res, Delivery: 1})
	j.logDone(res)
	return nil
}

// Live implements offload.Host: the job runs here, through the chain, as
// if it had just been delivered (its retries and fallbacks, its events),
// and its result is published under its id. A worker stopping under it
// returns the error: the line stays for the next worker.
func (h offloadHost) Live(ctx context.Context, l *offload.Line, why string) error {
	w := h.w
	j := w.lineJob(l)
	j.picked = w.cfg.Now()
	var res *bus.Result
	call, rej := w.rules.check(&j.ticket, j.group, 1, j.published)
	if rej != nil {
		res = j.errorResult(rej.code, rej.msg, false)
	} else {
		j.deadline = call.Deadline
		em := newEmitter(j)
		out, err := w.chain.Execute(ctx, call, em.policy)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		res = j.result(out, err)
		if em.ttft > 0 {
			res.Timings.TTFTMS = em.ttft.Milliseconds()
		}
	}
	res.Timings.QueuedMS = max(0, j.picked.Sub(l.Published).Milliseconds())
	res.Timings.TotalMS = w.cfg.Now().Sub(j.picked).Milliseconds()
	if _, err := j.publish(res); err != nil {
		return err
	}
	w.log.Info("vendor batch line ran live", slog.String("job", j.id), slog.String("why", why))
	w.cfg.Observer.JobDone(JobReport{Group: l.Group, Result: res, Delivery: 1})
	j.logDone(res)
	return nil
}
