package heartbeat_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/heartbeat"
	"github.com/switchyard/switchyard/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func registry() (*prometheus.Registry, *prometheus.CounterVec) {
	reg := prometheus.NewRegistry()
	jobs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_jobs_total", Help: "jobs"}, []string{"group", "status", "code"})
	reg.MustRegister(jobs, collectors.NewGoCollector())
	return reg, jobs
}

func TestWorkersBeatAndLeave(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	reg, jobs := registry()
	jobs.WithLabelValues("demo", "ok", "").Add(3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- heartbeat.Run(ctx, js, heartbeat.Config{Gatherer: reg, Groups: []string{"demo"}, Concurrency: 8, Interval: 50 * time.Millisecond})
	}()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	var ws []heartbeat.Worker
	require.Eventually(t, func() bool {
		ws, err = heartbeat.Read(rctx, js)
		return err == nil && len(ws) == 1 && ws[0].Families["switchyard_jobs_total"] != nil
	}, 5*time.Second, 10*time.Millisecond)
	w := ws[0]
	require.Equal(t, []string{"demo"}, w.Groups)
	require.Equal(t, 8, w.Concurrency)
	require.InDelta(t, 3, w.Families["switchyard_jobs_total"].Metric[0].GetCounter().GetValue(), 0)
	require.NotContains(t, w.Metrics, "go_goroutines", "runtime metrics stay with Prometheus")

	// A new count reaches the bucket with the next beat.
	jobs.WithLabelValues("demo", "ok", "").Inc()
	require.Eventually(t, func() bool {
		ws, err = heartbeat.Read(rctx, js)
		return err == nil && len(ws) == 1 && ws[0].Families["switchyard_jobs_total"].Metric[0].GetCounter().GetValue() == 4
	}, 5*time.Second, 10*time.Millisecond)

	// A worker that stops takes its record with it.
	cancel()
	require.NoError(t, <-done)
	ws, err = heartbeat.Read(rctx, js)
	require.NoError(t, err)
	require.Empty(t, ws)

	// The bucket is bounded.
	kv, err := js.KeyValue(rctx, heartbeat.Bucket)
	require.NoError(t, err)
	st, err := kv.Status(rctx)
	require.NoError(t, err)
	require.Equal(t, heartbeat.TTL, st.TTL())
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	require.EqualValues(t, heartbeat.MaxBucketBytes, info.Config.MaxBytes)
	require.EqualValues(t, heartbeat.MaxRecordBytes, info.Config.MaxMsgSize)
}

func TestSnapshotKeepsWholeFamiliesWithinTheBound(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_a_total", Help: "a"}, []string{"k"})
	b := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_b_total", Help: "b"}, []string{"k"})
	reg.MustRegister(a, b)
	for i := range 50 {
		a.WithLabelValues(strings.Repeat("x", i+1)).Inc()
		b.WithLabelValues(strings.Repeat("y", i+1)).Inc()
	}
	full, err := heartbeat.Snapshot(reg, 1<<20)
	require.NoError(t, err)
	require.Contains(t, full, "switchyard_b_total")
	cut, err := heartbeat.Snapshot(reg, len(full)-1)
	require.NoError(t, err)
	require.Contains(t, cut, "switchyard_a_total")
	require.NotContains(t, cut, "switchyard_b_total", "a family that does not fit is left out whole")
	require.LessOrEqual(t, len(cut), len(full)-1)
}

func TestMirrorFollowsBeatsAndForgetsTheSilent(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := heartbeat.NewMirror(js, clock)
	defer m.Stop()
	ctx := context.Background()
	ws, err := m.Workers(ctx)
	require.NoError(t, err)
	require.Empty(t, ws, "no bucket yet: no worker")

	reg, _ := registry()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- heartbeat.Run(rctx, js, heartbeat.Config{Gatherer: reg, Groups: []string{"demo"}, Interval: 50 * time.Millisecond, Now: time.Now})
	}()
	require.Eventually(t, func() bool { ws, err = m.Workers(ctx); return err == nil && len(ws) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"demo"}, ws[0].Groups)

	// A worker that falls silent (its record expires in the bucket without
	// a marker) is forgotten once its last beat is older than TTL.
	mu.Lock()
	now = time.Now().Add(heartbeat.TTL + time.Second)
	mu.Unlock()
	ws, err = m.Workers(ctx)
	require.NoError(t, err)
	require.Empty(t, ws)

	// A worker that stops deletes its record; the mirror follows.
	mu.Lock()
	now = time.Now()
	mu.Unlock()
	require.Eventually(t, func() bool { ws, _ = m.Workers(ctx); return len(ws) == 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { ws, _ = m.Workers(ctx); return len(ws) == 0 }, 5*time.Second, 10*time.Millisecond)
}
