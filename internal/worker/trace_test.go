package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func TestProducerTraceContinuesThroughWorker(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := setup(t, opts{mock: mock.Config{Tokens: 3}, noStart: true})
	e.startWorker(worker.Config{Tracer: tp.Tracer("worker")})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx, producer := tp.Tracer("producer").Start(ctx, "produce")
	// The Go client injects the W3C trace context of ctx.
	job, err := e.client.Publish(ctx, "demo", userReq("traced-1", "hello"))
	require.NoError(t, err)
	raw, err := e.nc.SubscribeSync(bus.ResultSubject(job.Reply))
	require.NoError(t, err)
	_, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status)
	producer.End()
	_ = raw

	tid := producer.SpanContext().TraceID()
	byName := map[string]tracetest.SpanStub{}
	require.Eventually(t, func() bool {
		for _, s := range exp.GetSpans() {
			byName[s.Name] = s
		}
		_, ok := byName["switchyard.job demo"]
		return ok
	}, 5*time.Second, 10*time.Millisecond)
	jobSpan := byName["switchyard.job demo"]
	require.Equal(t, tid, jobSpan.SpanContext.TraceID(), "the worker continues the producer's trace")
	require.Equal(t, producer.SpanContext().SpanID(), jobSpan.Parent.SpanID())
	for _, name := range []string{"queue wait", "attempt mock-a"} {
		s, ok := byName[name]
		require.True(t, ok, "span %q", name)
		require.Equal(t, jobSpan.SpanContext.SpanID(), s.Parent.SpanID(), name)
	}

	// The stored result carries the job span's context.
	stored, err := e.js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	m, err := stored.GetLastMsgForSubject(ctx, bus.ResultSubject(job.Reply))
	require.NoError(t, err)
	got := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(m.Header))
	sc := trace.SpanContextFromContext(got)
	require.Equal(t, tid, sc.TraceID())
	require.Equal(t, jobSpan.SpanContext.SpanID(), sc.SpanID())
	_ = nats.Header{}
}
