package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/embedded"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// tmpfs mounts a tmpfs of size bytes on a new directory, or skips the test
// where mounting is not allowed (it needs CAP_SYS_ADMIN).
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): TestFullStoreLosesNoJob covers a store limit instead", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk writes a file into dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)
			return p
		}
	}
}

// diskServer is an embedded NATS server whose store is a small tmpfs, on a
// fixed port (below the ephemeral range, see natstest.FixedPorts), so
// that it can be restarted on the same store and its clients reconnect.
type diskServer struct {
	t    *testing.T
	dir  string
	port int
	srv  *server.Server
}

// newDiskServer starts a server on a new 8 MiB tmpfs; the test's end shuts
// down the one running then.
func newDiskServer(t *testing.T) *diskServer {
	t.Helper()
	d := &diskServer{t: t, dir: tmpfs(t, 8<<20), port: natstest.FixedPorts(t, 1)[0]}
	d.start()
	t.Cleanup(func() { d.srv.Shutdown(); d.srv.WaitForShutdown() })
	return d
}

func (d *diskServer) start() {
	d.t.Helper()
	s, err := embedded.Start(embedded.Options{Addr: fmt.Sprintf("127.0.0.1:%d", d.port), StoreDir: d.dir,
		// As if the disk were large: the file system, not a limit, fills.
		Configure: func(o *server.Options) { o.JetStreamMaxStore = 1 << 30 }})
	require.NoError(d.t, err)
	d.srv = s
}

// restart shuts the server down and starts it again on the same store.
func (d *diskServer) restart() {
	d.t.Helper()
	d.srv.Shutdown()
	d.srv.WaitForShutdown()
	d.start()
}

// connect opens a connection that reconnects across restarts, closed at
// the test's end.
func (d *diskServer) connect() *nats.Conn {
	d.t.Helper()
	nc, err := nats.Connect(d.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(d.t, err)
	d.t.Cleanup(nc.Close)
	return nc
}

// client connects a JetStream handle and a bus client, with the streams
// provisioned.
func (d *diskServer) client(ctx context.Context) (jetstream.JetStream, *bus.Client) {
	d.t.Helper()
	nc := d.connect()
	js, err := jetstream.New(nc)
	require.NoError(d.t, err)
	client, err := bus.NewClient(nc)
	require.NoError(d.t, err)
	require.NoError(d.t, bus.Provision(ctx, js, bus.StreamsConfig{}))
	return js, client
}

// runWorker runs w until the test's end.
func runWorker(t *testing.T, w *worker.Worker) {
	t.Helper()
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
}

// dlqJobs returns the ids of the jobs with a dead letter.
func dlqJobs(t *testing.T, ctx context.Context, js jetstream.JetStream) map[string]bool {
	t.Helper()
	dlq := map[string]bool{}
	d, err := js.Stream(ctx, bus.StreamDLQ)
	require.NoError(t, err)
	for seq := d.CachedInfo().State.FirstSeq; seq > 0 && seq <= d.CachedInfo().State.LastSeq; seq++ {
		if m, err := d.GetMsg(ctx, seq); err == nil {
			dlq[m.Header.Get("Llm-Dlq-Job")] = true
		}
	}
	return dlq
}

// demoRouter routes group demo to one mock deployment.
func demoRouter(t *testing.T, m *mock.Provider) *policy.Router {
	t.Helper()
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: m}}}})
	require.NoError(t, err)
	return r
}

// TestFullDiskLosesNoJob is issue #13's case on a real full file system:
// the server's data directory is a small tmpfs, filled after six jobs were
// accepted. The server disables JetStream ("out of space"); the worker
// cannot store results, dead letters or acks and reports itself unready.
// Once space is freed and the server restarted, every job ends with a
// result or a dead letter, the work queue is empty, and the worker is ready
// again without being restarted.
func TestFullDiskLosesNoJob(t *testing.T) {
	t.Parallel()
	ds := newDiskServer(t)
	ctx := ctxT(t, 180*time.Second)
	js, client := ds.client(ctx)
	var logs syncLog
	// Slow to answer, so that the disk fills while the jobs run.
	m := mock.New(mock.Config{Tokens: 3, TTFT: time.Second})
	w, err := worker.New(ds.connect(), demoRouter(t, m), worker.Config{Groups: []string{"demo"},
		Consumer:   bus.ConsumerConfig{MaxDeliver: 3, AckWait: 2 * time.Second},
		StoreRetry: 200 * time.Millisecond, HandBackDelay: 50 * time.Millisecond, FetchWait: 300 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	runWorker(t, w)
	select {
	case <-w.Ready():
	case <-ctx.Done():
		t.Fatal("worker not ready")
	}

	const n = 6
	for i := range n {
		_, err := client.Publish(ctx, "demo", userReq(fmt.Sprintf("disk-%d", i), "hi"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return m.Calls() == n }, 30*time.Second, 5*time.Millisecond, "every job runs")
	filler := fillDisk(t, ds.dir)

	require.Eventually(t, func() bool { return w.StoreHealth() != nil }, 60*time.Second, 10*time.Millisecond, "unready while the disk is full")
	t.Logf("while full: %v", w.StoreHealth())
	// Every job got past its last delivery (a Nak there used to be the end
	// of it), its answer not stored.
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("disk-%d", i)
	}
	require.Eventually(t, func() bool { return handedBackPast(t, logs.String(), ids, 3) }, 120*time.Second, 10*time.Millisecond,
		"every job was handed back on its last delivery")
	t.Logf("JetStream enabled on the full disk: %v", ds.srv.JetStreamEnabled())

	// Space is freed, the server restarted (JetStream stays disabled until
	// then); the worker is not.
	require.NoError(t, os.Remove(filler))
	ds.restart()

	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, bus.StreamRequests)
		return err == nil && s.CachedInfo().State.Msgs == 0
	}, 120*time.Second, 50*time.Millisecond, "the work queue is empty")
	dlq := dlqJobs(t, ctx, js)
	for i := range n {
		id := fmt.Sprintf("disk-%d", i)
		r, err := client.StoredResult(ctx, client.Subjects().Reply(id))
		require.NoError(t, err)
		require.True(t, r != nil || dlq[id], "job %s has neither a result nor a dead letter", id)
	}
	require.Eventually(t, func() bool { return w.StoreHealth() == nil }, 30*time.Second, 10*time.Millisecond, "ready again by itself: %v", w.StoreHealth())
}

// TestAckedJobsLeftInTheQueueAreRemoved: jobs acked while the disk was full
// are acked for their consumer (below its ack floor, never delivered again)
// but their removal from the work queue was not persisted, so after the
// server's restart they are back in the stream, forever on the old code
// (issue #13 saw 29). The worker's sweep removes them: a job whose result is
// stored is deleted, one without is copied to the DLQ first.
func TestAckedJobsLeftInTheQueueAreRemoved(t *testing.T) {
	t.Parallel()
	ds := newDiskServer(t)
	ctx := ctxT(t, 120*time.Second)
	js, client := ds.client(ctx)
	cons, err := bus.EnsureConsumer(ctx, js, bus.Subjects{}, "demo", bus.ConsumerConfig{})
	require.NoError(t, err)

	// A worker runs 40 jobs and stores the results of the even ones (the
	// odd ones' reply prefixes are outside the results stream, say); then
	// the disk fills and it acks them all.
	const n = 40
	for i := range n {
		_, err := client.Publish(ctx, "demo", userReq(fmt.Sprintf("acked-%d", i), "hi"))
		require.NoError(t, err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	require.Len(t, msgs, n)
	for i := 0; i < n; i += 2 {
		id := fmt.Sprintf("acked-%d", i)
		m := nats.NewMsg(bus.ResultSubject(client.Subjects().Reply(id)))
		m.Header.Set(bus.HeaderMsgID, id)
		m.Data, err = bus.Msgpack.Marshal(&bus.Result{ID: id, Status: bus.StatusOK})
		require.NoError(t, err)
		_, err = js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	filler := fillDisk(t, ds.dir)
	for _, m := range msgs {
		require.NoError(t, m.DoubleAck(ctx))
	}
	require.NoError(t, os.Remove(filler))
	ds.restart()

	// Back after the restart: acked, below the ack floor, still queued.
	var left []string
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, bus.StreamRequests)
		if err != nil {
			return false
		}
		for seq := s.CachedInfo().State.FirstSeq; seq > 0 && seq <= s.CachedInfo().State.LastSeq; seq++ {
			if m, err := s.GetMsg(ctx, seq); err == nil {
				left = append(left, m.Header.Get(bus.HeaderMsgID))
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond)
	require.NotEmpty(t, left, "the full disk left acked jobs in the queue (the case this test is about)")
	c, err := js.Consumer(ctx, bus.StreamRequests, bus.ConsumerName("demo"))
	require.NoError(t, err)
	require.Zero(t, c.CachedInfo().NumPending, "never to be delivered again")
	t.Logf("left in the queue: %v", left)

	m := mock.New(mock.Config{})
	w, err := worker.New(ds.connect(), demoRouter(t, m), worker.Config{Groups: []string{"demo"}, UnknownSweep: 100 * time.Millisecond, FetchWait: 300 * time.Millisecond,
		Logger: cmpLogger(nil)})
	require.NoError(t, err)
	runWorker(t, w)

	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, bus.StreamRequests)
		return err == nil && s.CachedInfo().State.Msgs == 0
	}, 30*time.Second, 50*time.Millisecond, "the sweep removed them")
	require.Zero(t, m.Calls(), "none ran again")
	dlq := dlqJobs(t, ctx, js)
	for _, id := range left {
		var i int
		_, _ = fmt.Sscanf(id, "acked-%d", &i)
		require.Equal(t, i%2 == 1, dlq[id], "job %s: copied to the DLQ exactly when it has no stored result", id)
	}
}
