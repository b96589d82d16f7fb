package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// W3C trace context travels in the NATS headers traceparent / tracestate.
var propagator = propagation.TraceContext{}

// startSpan continues the producer's trace (the request's traceparent
// header) with the job's span, and records the time the job waited in the
// queue as a child span.
func (j *job) startSpan(h nats.Header) {
	parent := propagator.Extract(context.Background(), propagation.HeaderCarrier(h))
	tr := j.w.cfg.Tracer
	j.traceCtx, j.span = tr.Start(parent, "switchyard.job "+j.group,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(j.picked),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", j.msg.Subject()),
			attribute.String("switchyard.group", j.group),
			attribute.Int("switchyard.delivery", j.attempt),
		))
	if !j.published.IsZero() && j.published.Before(j.picked) {
		_, q := tr.Start(j.traceCtx, "queue wait", trace.WithTimestamp(j.published))
		q.End(trace.WithTimestamp(j.picked))
	}
}

// injectTrace puts the job span's context into the result's headers, so the
// requester's trace continues from the worker's.
func (j *job) injectTrace(h nats.Header) {
	if j.traceCtx != nil && j.span.SpanContext().IsValid() {
		propagator.Inject(j.traceCtx, propagation.HeaderCarrier(h))
	}
}

// report tells the observer and closes the trace of an answered job.
func (j *job) report(res *bus.Result, out *policy.Outcome) {
	j.w.cfg.Observer.JobDone(JobReport{
		Group: j.group, Class: j.class, Result: res, Outcome: out, Started: j.started,
		QueueWait: max(0, j.picked.Sub(j.published)), Restarts: j.restarts, Delivery: j.attempt,
	})
	if !j.span.IsRecording() {
		return
	}
	// One span per attempt (deployment call or validation try), laid end
	// to end from the job's start: the router runs attempts in sequence.
	at := j.picked
	for _, a := range res.Attempts {
		d := time.Duration(a.DurationMS) * time.Millisecond
		_, s := j.w.cfg.Tracer.Start(j.traceCtx, "attempt "+a.Deployment, trace.WithTimestamp(at),
			trace.WithAttributes(attribute.String("switchyard.deployment", a.Deployment)))
		if a.ErrorCode != "" {
			s.SetStatus(codes.Error, a.ErrorCode)
			s.SetAttributes(attribute.String("error.type", a.ErrorCode))
		}
		at = at.Add(d)
		s.End(trace.WithTimestamp(at))
	}
	j.span.SetAttributes(attribute.String("switchyard.job_id", j.id), attribute.String("switchyard.status", string(res.Status)))
	if res.Deployment != "" {
		j.span.SetAttributes(attribute.String("gen_ai.request.model", res.Model), attribute.String("switchyard.deployment", res.Deployment))
	}
	if u := res.Usage; u != nil {
		j.span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", u.PromptTokens), attribute.Int("gen_ai.usage.output_tokens", u.CompletionTokens))
	}
	if res.Error != nil {
		j.span.SetStatus(codes.Error, string(res.Error.Code))
	}
}
