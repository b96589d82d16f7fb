//go:build benchprofile

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/fleet"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// BenchmarkWorkerInProcess runs the worker loop in this process against a
// real server so that `go test -tags benchprofile -bench WorkerInProcess
// -cpuprofile cpu.out ./internal/bench` shows where a job's CPU goes
// (focus on internal/worker, pkg/policy, pkg/bus, pkg/llm).
func BenchmarkWorkerInProcess(b *testing.B) {
	srv := natstest.Server(b)
	nc := natstest.Connect(b, srv)
	wnc := natstest.Connect(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	models, err := config.ParseModels("bench", []byte("groups:\n  bench:\n    deployments:\n      - name: mock\n        provider: mock\n        model: mock-1\n        mock: {tokens: 20}\n"))
	require.NoError(b, err)
	groups, err := models.Build(ctx)
	require.NoError(b, err)
	js, err := jetstream.New(wnc)
	require.NoError(b, err)
	st, err := fleet.New(ctx, js, fleet.Config{Replicas: 1})
	require.NoError(b, err)
	router, err := policy.NewRouter(groups, policy.WithSharedState(st))
	require.NoError(b, err)
	w, err := worker.New(wnc, router, worker.Config{Groups: []string{"bench"}, Concurrency: 256, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; st.Close() })
	<-w.Ready()
	c, err := bus.NewClient(nc)
	require.NoError(b, err)
	fn := SwitchyardJob(c, "bench", Prompt(512), true, nil)
	b.ResetTimer()
	r, err := Run(ctx, "inproc", LoadConfig{Jobs: b.N, Concurrency: 64, JobTimeout: 30 * time.Second}, fn)
	require.NoError(b, err)
	b.StopTimer()
	require.Equal(b, b.N, r.OK, "%v", r.Errors)
	b.ReportMetric(r.JobsPerSec(), "jobs/s")
}

// startInProcess starts a worker for the model file src in this process.
func startInProcess(b *testing.B, src string, group string, concurrency int) *bus.Client {
	b.Helper()
	srv := natstest.Server(b)
	nc := natstest.Connect(b, srv)
	wnc := natstest.Connect(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	models, err := config.ParseModels("bench", []byte(src))
	require.NoError(b, err)
	groups, err := models.Build(ctx)
	require.NoError(b, err)
	js, err := jetstream.New(wnc)
	require.NoError(b, err)
	st, err := fleet.New(ctx, js, fleet.Config{Replicas: 1})
	require.NoError(b, err)
	router, err := policy.NewRouter(groups, policy.WithSharedState(st))
	require.NoError(b, err)
	w, err := worker.New(wnc, router, worker.Config{Groups: []string{group}, Concurrency: concurrency, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; st.Close() })
	<-w.Ready()
	c, err := bus.NewClient(nc)
	require.NoError(b, err)
	return c
}

func BenchmarkWorkerOpenAI(b *testing.B) {
	sse, err := StartSSEServer(20)
	require.NoError(b, err)
	b.Cleanup(func() { sse.Close() })
	c := startInProcess(b, "groups:\n  oai:\n    deployments:\n      - name: local\n        provider: openai\n        base_url: "+sse.URL+"\n        api_key: sk-bench\n        model: gpt-4o-mini\n", "oai", 256)
	fn := SwitchyardJob(c, "oai", Prompt(512), true, nil)
	// Section c's loads: sequential, and 50 in flight.
	for _, n := range []int{1, 4, 50} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			r, err := Run(context.Background(), "oai", LoadConfig{Jobs: b.N, Concurrency: n, JobTimeout: 30 * time.Second}, fn)
			require.NoError(b, err)
			require.Equal(b, b.N, r.OK, "%v", r.Errors)
			b.ReportMetric(r.JobsPerSec(), "jobs/s")
		})
	}
}

func BenchmarkWorkerStreams(b *testing.B) {
	c := startInProcess(b, "groups:\n  slow:\n    deployments:\n      - name: mock\n        provider: mock\n        model: mock-1\n        mock: {tokens: 100, chunk_delay: 50ms}\n", "slow", 5000)
	fn := SwitchyardJob(c, "slow", Prompt(512), true, nil)
	b.ResetTimer()
	r, err := Run(context.Background(), "streams", LoadConfig{Jobs: b.N, Concurrency: b.N, JobTimeout: time.Minute}, fn)
	require.NoError(b, err)
	require.Equal(b, b.N, r.OK, "%v", r.Errors)
}
