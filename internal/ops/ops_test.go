package ops_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

type env struct {
	t      *testing.T
	srv    *server.Server
	js     jetstream.JetStream
	client *bus.Client
	router *policy.Router
	dlq    *ops.DeadLetters
	jobs   *ops.Jobs
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: mock.New(mock.Config{Tokens: 4})}}}})
	require.NoError(t, err)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, bus.Provision(ctx, js, bus.StreamsConfig{Tenants: []string{"acme"}, DurableEvents: true}))
	return &env{t: t, srv: srv, js: js, client: c, router: r, dlq: ops.NewDeadLetters(js, bus.Subjects{}), jobs: ops.NewJobs(js, bus.Subjects{})}
}

// startWorker runs a worker until the returned stop is called (or the test
// ends).
func (e *env) startWorker(cfg worker.Config) (stop func()) {
	e.t.Helper()
	nc := natstest.Connect(e.t, e.srv)
	cfg.Groups = []string{"demo"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.FetchWait = 200 * time.Millisecond
	cfg.Streams = bus.StreamsConfig{Tenants: []string{"acme"}, DurableEvents: true}
	w, err := worker.New(nc, e.router, cfg)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(e.t, <-done)
			nc.Close()
		})
	}
	e.t.Cleanup(stop)
	select {
	case <-w.Ready():
	case err := <-done:
		e.t.Fatalf("worker: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("worker not ready")
	}
	return stop
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func req(id string) *bus.Request {
	return &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text("hello")}}}
}

// deadLetter runs job id on a worker whose consumer delivers a job once
// (MaxDeliver 1: the first delivery is the last, so the job is
// dead-lettered unrun), and returns its error result.
func (e *env) deadLetter(ctx context.Context, ids ...string) {
	e.t.Helper()
	stop := e.startWorker(worker.Config{Consumer: bus.ConsumerConfig{MaxDeliver: 1}})
	for _, id := range ids {
		res, err := e.client.Submit(ctx, "demo", req(id))
		require.Error(e.t, err)
		require.Equal(e.t, bus.CodeInternal, res.Error.Code)
	}
	stop()
}

func TestReplayRunsTheJobAgainAndMarksTheDeadLetter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t, 30*time.Second)
	e.deadLetter(ctx, "poison-1", "poison-2")

	l, err := e.dlq.List(ctx, ops.Filter{})
	require.NoError(t, err)
	require.Equal(t, 2, l.Matched)
	require.Equal(t, map[string]int{"internal": 2}, l.ByCode)
	require.Equal(t, "poison-2", l.Entries[0].JobID, "newest first")
	require.Equal(t, "llm.req.demo", l.Entries[0].Subject)
	require.Equal(t, 1, l.Entries[0].Deliveries)
	require.Nil(t, l.Entries[0].Replayed)

	job, err := e.jobs.Get(ctx, nil, "poison-1")
	require.NoError(t, err)
	require.Equal(t, ops.StatusDead, job.Status)
	require.NotNil(t, job.Request, "a dead letter keeps the request")
	require.Equal(t, "hello", job.Request.Body.Messages[0].Content.Text)

	// The operator fixes the consumer (a worker with the default
	// MaxDeliver) and replays one of the two.
	e.startWorker(worker.Config{})
	seq := l.Entries[1].Seq
	out, err := e.dlq.Replay(ctx, []uint64{seq}, "alice")
	require.NoError(t, err)
	require.Equal(t, []ops.ReplayOutcome{{Seq: seq, JobID: "poison-1", MsgID: bus.ReplayMsgID("poison-1", seq)}}, out)

	require.Eventually(t, func() bool {
		r, err := e.client.StoredResult(ctx, "llm.res.poison-1")
		return err == nil && r != nil && r.Status == bus.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "the replay's result is stored beside the dead letter's error")
	job, err = e.jobs.Get(ctx, nil, "poison-1")
	require.NoError(t, err)
	require.Equal(t, ops.StatusOK, job.Status)
	require.Len(t, job.DeadLetters, 1)
	require.NotNil(t, job.DeadLetters[0].Replayed)
	require.Equal(t, "alice", job.DeadLetters[0].Replayed.By)

	// Not lost, marked; a second replay of it is refused.
	l, err = e.dlq.List(ctx, ops.Filter{})
	require.NoError(t, err)
	require.Equal(t, 2, l.Matched)
	require.Equal(t, 1, l.Replayed)
	out, err = e.dlq.Replay(ctx, []uint64{seq}, "bob")
	require.NoError(t, err)
	require.Contains(t, out[0].Skipped, "replayed already")
	require.Contains(t, out[0].Skipped, "by alice")

	// Only the other one is left to replay.
	rest, err := e.dlq.Select(ctx, ops.Filter{Code: "internal", Replayed: "no"})
	require.NoError(t, err)
	require.Equal(t, []uint64{l.Entries[0].Seq}, rest)
}

func TestPurgeDeletesDeadLettersAndMarks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t, 30*time.Second)
	e.deadLetter(ctx, "p-1", "p-2", "p-3")
	all, err := e.dlq.Select(ctx, ops.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	e.startWorker(worker.Config{})
	_, err = e.dlq.Replay(ctx, all[:1], "alice")
	require.NoError(t, err)

	n, err := e.dlq.Purge(ctx, all[:2])
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = e.dlq.Purge(ctx, all[:2])
	require.NoError(t, err)
	require.Zero(t, n, "purging again deletes nothing")
	l, err := e.dlq.List(ctx, ops.Filter{})
	require.NoError(t, err)
	require.Equal(t, 1, l.Matched)
	require.Equal(t, "p-3", l.Entries[0].JobID)
	require.Zero(t, l.Replayed, "the purged dead letter's mark went with it")
}

func TestJobsListsQueuedThenAnsweredJobsPerTenant(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t, 30*time.Second)
	acme, err := bus.NewClient(e.js.Conn(), bus.WithTenant("acme"))
	require.NoError(t, err)
	for _, id := range []string{"a-1", "a-2"} {
		j, err := e.client.Publish(ctx, "demo", req(id))
		require.NoError(t, err)
		require.NoError(t, j.Close())
	}
	j, err := acme.Publish(ctx, "demo", req("t-1"))
	require.NoError(t, err)
	require.NoError(t, j.Close())

	// No worker yet: queued, in their tenants' streams.
	p, err := e.jobs.List(ctx, ops.Query{})
	require.NoError(t, err)
	require.Equal(t, []string{"t-1", "a-2", "a-1"}, ids(p.Jobs), "newest first")
	for _, s := range p.Jobs {
		require.Equal(t, ops.StatusQueued, s.Status)
	}
	anon := ""
	p, err = e.jobs.List(ctx, ops.Query{Tenant: &anon})
	require.NoError(t, err)
	require.Equal(t, []string{"a-2", "a-1"}, ids(p.Jobs))
	job, err := e.jobs.Get(ctx, nil, "t-1")
	require.NoError(t, err)
	require.Equal(t, "acme", job.Tenant)
	require.Equal(t, ops.StatusQueued, job.Status)
	require.Equal(t, "LLM_REQUESTS_acme", job.Request.Stream)

	_ = acme
	e.startWorker(worker.Config{})
	require.Eventually(t, func() bool {
		p, err := e.jobs.List(ctx, ops.Query{Tenant: &anon, Status: ops.StatusOK})
		return err == nil && len(p.Jobs) == 2
	}, 10*time.Second, 20*time.Millisecond)
	p, err = e.jobs.List(ctx, ops.Query{Tenant: &anon, Status: ops.StatusOK})
	require.NoError(t, err)
	require.Equal(t, "mock-a", p.Jobs[0].Deployment)
	require.Positive(t, p.Jobs[0].Tokens)
	_, err = e.jobs.Get(ctx, &anon, "t-1")
	require.ErrorIs(t, err, ops.ErrNotFound, "another tenant's job is not found in the anonymous tenant")
}

func ids(s []ops.Summary) []string {
	var out []string
	for _, j := range s {
		out = append(out, j.ID)
	}
	return out
}

// slowDialer's connections delay every read by the delay it is set to
// (until done is closed): a server that answers late, as one does on a
// loaded machine.
type slowDialer struct {
	delay *atomic.Int64
	done  chan struct{}
}

type slowConn struct {
	net.Conn
	d slowDialer
}

func (c slowConn) Read(b []byte) (int, error) {
	select {
	case <-time.After(time.Duration(c.d.delay.Load())):
	case <-c.d.done:
	}
	return c.Conn.Read(b)
}

func (d slowDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return slowConn{Conn: c, d: d}, nil
}

// TestListWaitsForALateServer: a listing read through a connection whose
// answers arrive 1.5 s late still lists every answered job. The scan used
// to pull without waiting, and nats.go gives such a pull 1 s: a late
// answer read as "no more messages", and the listing came back empty.
func TestListWaitsForALateServer(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t, 60*time.Second)
	e.startWorker(worker.Config{})
	for _, id := range []string{"a-1", "a-2"} {
		_, err := e.client.Submit(ctx, "demo", req(id))
		require.NoError(t, err)
	}
	var delay atomic.Int64
	slow := slowDialer{delay: &delay, done: make(chan struct{})}
	nc := natstest.Connect(t, e.srv, nats.SetCustomDialer(slow))
	t.Cleanup(func() { close(slow.done) }) // before the connection closes
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	jobs := ops.NewJobs(js, bus.Subjects{})
	anon := ""
	delay.Store(int64(1500 * time.Millisecond))
	p, err := jobs.List(ctx, ops.Query{Tenant: &anon, Status: ops.StatusOK})
	delay.Store(0)
	require.NoError(t, err)
	require.Equal(t, []string{"a-2", "a-1"}, ids(p.Jobs))
}
