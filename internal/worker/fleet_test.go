package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/fleet"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// fleetEnv is one NATS server and any number of workers, each a process in
// miniature: its own connection, router, fleet state and provider instances,
// so that calls are counted per worker.
type fleetEnv struct {
	t      *testing.T
	srv    *server.Server
	client *bus.Client

	// clock, when set, is the routers' and fleet states' clock (rate
	// windows): a fixed one keeps a burst inside one minute.
	clock func() time.Time

	mu      sync.Mutex
	workers []*fleetWorker
}

// fleetWorker is one worker of a fleetEnv. It exists (router, shared state
// watching the KV) from newWorker on, and consumes jobs between run and stop.
type fleetWorker struct {
	nc     *nats.Conn
	router *policy.Router
	state  *fleet.State // nil when the worker does not share state
	spy    *spyState
	jobsMu sync.Mutex
	jobs   map[string]int // jobs handed to the router, by group

	cancel context.CancelFunc
	done   chan error
}

func newFleetEnv(t *testing.T) *fleetEnv {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	f := &fleetEnv{t: t, srv: srv, client: c}
	// One cleanup stops every running worker at once (each takes up to a
	// pull request's expiry to stop), then closes their states and
	// connections. It is registered after the server's, so it runs first.
	t.Cleanup(f.stopAll)
	return f
}

func (f *fleetEnv) stopAll() {
	f.mu.Lock()
	ws := f.workers
	f.mu.Unlock()
	for _, w := range ws {
		if w.cancel != nil {
			w.cancel()
		}
	}
	for _, w := range ws {
		if w.done == nil {
			continue
		}
		select {
		case err, ok := <-w.done:
			if ok {
				require.NoError(f.t, err)
			}
		case <-time.After(20 * time.Second):
			f.t.Error("worker did not stop in 20s")
		}
	}
	for _, w := range ws {
		if w.state != nil {
			_ = w.state.Close()
		}
		w.nc.Close()
	}
}

// newWorker builds a worker's router over groups, with a fleet.State on its
// own connection when shared. It does not consume yet: see run.
func (f *fleetEnv) newWorker(groups []policy.Group, shared bool) *fleetWorker {
	f.t.Helper()
	nc, err := nats.Connect(f.srv.ClientURL())
	require.NoError(f.t, err)
	w := &fleetWorker{nc: nc, jobs: map[string]int{}}
	f.mu.Lock()
	f.workers = append(f.workers, w)
	f.mu.Unlock()
	var opts []policy.Option
	if shared {
		js, err := jetstream.New(nc)
		require.NoError(f.t, err)
		// A generous store timeout: a reservation slower than the default
		// 250ms on a loaded machine would fall back to the local counters
		// and let the fleet exceed a shared limit.
		w.state, err = fleet.New(f.t.Context(), js, fleet.Config{OpTimeout: 30 * time.Second, Now: f.clock})
		require.NoError(f.t, err)
		w.spy = &spyState{SharedState: w.state, opened: map[string]time.Time{}}
		opts = append(opts, policy.WithSharedState(w.spy))
	}
	if f.clock != nil {
		opts = append(opts, policy.WithClock(f.clock))
	}
	w.router, err = policy.NewRouter(groups, opts...)
	require.NoError(f.t, err)
	return w
}

// run starts consuming cfg.Groups (default: every group of the router) and
// waits until the worker is ready.
func (f *fleetEnv) run(w *fleetWorker, cfg worker.Config) {
	f.t.Helper()
	if cfg.Groups == nil {
		cfg.Groups = w.router.Groups()
	}
	cfg.Logger = cmpLogger(cfg.Logger)
	cfg.FetchWait = 300 * time.Millisecond
	wk, err := worker.New(w.nc, countingExec{w}, cfg)
	require.NoError(f.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- wk.Run(ctx) }()
	select {
	case <-wk.Ready():
	case err := <-w.done:
		f.t.Fatalf("worker ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		f.t.Fatal("worker not ready in 10s")
	}
}

// stop ends a worker's Run gracefully and waits for it, as a process that
// exits: every job it took is answered and acked.
func (f *fleetEnv) stop(w *fleetWorker) {
	f.t.Helper()
	w.cancel()
	select {
	case err := <-w.done:
		require.NoError(f.t, err)
		close(w.done) // stopAll must not wait for it again
	case <-time.After(20 * time.Second):
		f.t.Fatal("worker did not stop in 20s")
	}
}

// submit publishes reqs to group at once and returns their results in order.
func (f *fleetEnv) submit(ctx context.Context, group string, reqs ...*bus.Request) []*bus.Result {
	f.t.Helper()
	out := make([]*bus.Result, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { out[i], errs[i] = f.client.Submit(ctx, group, r) })
	}
	wg.Wait()
	for i, err := range errs {
		if out[i] == nil {
			require.NoError(f.t, err, "job %s", reqs[i].ID)
		}
	}
	return out
}

// jobsOf returns how many jobs of group the worker ran.
func (w *fleetWorker) jobsOf(group string) int {
	w.jobsMu.Lock()
	defer w.jobsMu.Unlock()
	return w.jobs[group]
}

// countingExec counts the jobs a worker hands to its router.
type countingExec struct{ w *fleetWorker }

func (c countingExec) Execute(ctx context.Context, call *policy.Call, emit func(policy.Event)) (*policy.Outcome, error) {
	c.w.jobsMu.Lock()
	c.w.jobs[call.Group]++
	c.w.jobsMu.Unlock()
	return c.w.router.Execute(ctx, call, emit)
}

func (c countingExec) HasGroup(name string) bool { return c.w.router.HasGroup(name) }

// spyState records when the router published each deployment's breaker as
// open: the moment the breaker opened, give or take a goroutine start.
type spyState struct {
	policy.SharedState
	mu     sync.Mutex
	opened map[string]time.Time
}

func (s *spyState) PublishBreaker(ctx context.Context, deployment string, openUntil time.Time) error {
	if !openUntil.IsZero() {
		s.mu.Lock()
		if _, ok := s.opened[deployment]; !ok {
			s.opened[deployment] = time.Now()
		}
		s.mu.Unlock()
	}
	return s.SharedState.PublishBreaker(ctx, deployment, openUntil)
}

func (s *spyState) openedAt(deployment string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.opened[deployment]
	return t, ok
}

// quick are group options with millisecond backoffs.
func quick(maxRetries int, b policy.BreakerOptions) policy.GroupOptions {
	return policy.GroupOptions{
		Retry:   policy.RetryOptions{MaxRetries: maxRetries, Backoff: policy.BackoffOptions{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Jitter: -1},
		Breaker: b,
	}
}

func requireOK(t *testing.T, res *bus.Result) {
	t.Helper()
	require.Equal(t, bus.StatusOK, res.Status, "job %s: %+v", res.ID, res.Error)
}

// Issue 4: deployment a of group g fails hard; the first worker's breaker
// opens, the second worker learns it through the KV (within 100 ms on a quiet
// machine, well inside the breaker's cooldown on any) and never
// calls a, so every one of its jobs ends ok on b.
func TestFleetBreakerSkipsDeploymentOnOtherWorker(t *testing.T) {
	t.Parallel()
	f := newFleetEnv(t)
	type providers struct{ a, b *mock.Provider }
	build := func() (*fleetWorker, providers) {
		p := providers{a: mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}), b: mock.New(mock.Config{Tokens: 3})}
		g := policy.Group{Name: "g", Options: quick(3, policy.BreakerOptions{Failures: 2, Period: time.Minute, Cooldown: time.Minute}),
			Deployments: []policy.Deployment{
				{Name: "a", Model: "mock-a", Provider: p.a},
				{Name: "b", Model: "mock-b", Provider: p.b, Options: policy.DeploymentOptions{Priority: 1}},
			}}
		return f.newWorker([]policy.Group{g}, true), p
	}
	w1, p1 := build()
	w2, p2 := build() // watching the breakers already, not consuming yet

	// Worker 2 sees what its router would see: its shared state.
	seen := make(chan time.Time, 1)
	ctx := ctxT(t, 20*time.Second)
	go func() {
		for ctx.Err() == nil {
			if w2.state.BreakerOpenUntil("a").After(time.Now()) {
				seen <- time.Now()
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()

	f.run(w1, worker.Config{})
	var opened time.Time
	for i := 0; ; i++ {
		require.Less(t, i, 5, "a's breaker never opened on worker 1")
		res := f.submit(ctx, "g", userReq(fmt.Sprintf("w1-%d", i), "hello"))[0]
		requireOK(t, res)
		require.Equal(t, "b", res.Deployment, "the group's other deployment answers")
		if at, ok := w1.spy.openedAt("a"); ok {
			opened = at
			break
		}
	}
	require.EqualValues(t, 2, p1.a.Calls(), "breaker failures: 2")
	var took time.Duration
	select {
	case at := <-seen:
		took = at.Sub(opened)
	case <-time.After(5 * time.Second):
		t.Fatal("worker 2 never saw a's breaker open")
	}
	// How fast is a figure for a bench, not a unit test on a loaded
	// machine (it once took 584 ms under -race with a load of 28): what
	// this pins is that worker 2 learns it through the KV, long before a's
	// one-minute cooldown could teach it anything.
	t.Logf("breaker propagation from worker 1 to worker 2: %v", took)
	require.Less(t, took, 5*time.Second)

	// Worker 1 exits; worker 2 takes the next jobs.
	f.stop(w1)
	w1Calls := p1.a.Calls() + p1.b.Calls()
	f.run(w2, worker.Config{})
	const n = 10
	reqs := make([]*bus.Request, n)
	for i := range reqs {
		reqs[i] = userReq(fmt.Sprintf("w2-%d", i), fmt.Sprintf("question %d", i))
	}
	for _, res := range f.submit(ctx, "g", reqs...) {
		requireOK(t, res)
		require.Equal(t, "b", res.Deployment)
		require.Len(t, res.Attempts, 1, "a is skipped, not tried")
	}
	require.EqualValues(t, 0, p2.a.Calls(), "worker 2 never calls a")
	require.EqualValues(t, n, p2.b.Calls())
	require.Equal(t, n, w2.jobsOf("g"))
	require.Equal(t, w1Calls, p1.a.Calls()+p1.b.Calls(), "worker 1 took no job after it stopped")
}

// twoWorkers is a fleet of two workers sharing state, serving the same
// groups, each on its own mocks: p[0] are worker 1's, p[1] worker 2's.
type twoWorkers struct {
	*fleetEnv
	w [2]*fleetWorker
	p [2]map[string]*mock.Provider // by deployment name
}

// calls sums the calls to deployment over both workers' mocks.
func (f *twoWorkers) calls(deployment string) int64 {
	return f.p[0][deployment].Calls() + f.p[1][deployment].Calls()
}

func (f *twoWorkers) jobsOf(group string) (int, int) {
	return f.w[0].jobsOf(group), f.w[1].jobsOf(group)
}

// TestFleetTwoWorkers runs the issue 4 tests that need both workers
// consuming at once; they share one fleet, each on its own groups.
func TestFleetTwoWorkers(t *testing.T) {
	t.Parallel()
	f := &twoWorkers{fleetEnv: newFleetEnv(t)}
	// At the start of a minute: the next one, when a limited deployment
	// frees up, is a whole minute away (see testSharedRPM).
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.clock = func() time.Time { return now }
	const rpm = 10
	limited := policy.DeploymentOptions{RPM: rpm}
	noBreaker := policy.BreakerOptions{Disabled: true}
	for i := range f.w {
		p := map[string]*mock.Provider{
			"spill-a":  mock.New(mock.Config{Tokens: 2}),
			"spill-b":  mock.New(mock.Config{Tokens: 2}),
			"strict-a": mock.New(mock.Config{Tokens: 2}),
			"down":     mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}),
			"flaky":    mock.New(mock.Config{Tokens: 2, Script: []mock.Step{{Error: "unavailable"}, {Error: "timeout"}}}),
		}
		d := func(name string, o policy.DeploymentOptions) policy.Deployment {
			return policy.Deployment{Name: name, Model: "mock-1", Provider: p[name], Options: o}
		}
		groups := []policy.Group{
			{Name: "spill", Options: quick(1, policy.BreakerOptions{}), Deployments: []policy.Deployment{
				d("spill-a", limited), d("spill-b", policy.DeploymentOptions{Priority: 1}),
			}},
			{Name: "strict", Options: quick(1, policy.BreakerOptions{}), Deployments: []policy.Deployment{d("strict-a", limited)}},
			{Name: "down", Options: quick(3, noBreaker), Deployments: []policy.Deployment{d("down", policy.DeploymentOptions{})}},
			{Name: "flaky", Options: quick(3, noBreaker), Deployments: []policy.Deployment{d("flaky", policy.DeploymentOptions{})}},
		}
		f.w[i], f.p[i] = f.newWorker(groups, true), p
	}
	// Two slots each, so that both workers take a share of a burst.
	f.run(f.w[0], worker.Config{Concurrency: 2})
	f.run(f.w[1], worker.Config{Concurrency: 2})

	for _, tc := range []struct {
		name string
		run  func(*testing.T, *twoWorkers)
	}{
		{"shared rpm limit", testSharedRPM},
		{"exactly 1+N calls", testExactlyOnePlusNCalls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, f)
		})
	}
}

// Issue 4: two workers share a deployment's rpm limit fleet-wide. Two
// groups show what the policy does with the requests over the limit: with
// another deployment in the group they go there; alone, a request whose
// deadline comes before the next minute fails rate_limited at once.
//
// The workers run on one fixed clock (one minute window). Which worker
// takes how many jobs is up to the race for them, so the split is only
// logged; that the fleet's counter decides is shown by the counter itself,
// holding every reservation of both workers (internal/fleet's TestSharedRPM
// shows an exact split between two routers).
func testSharedRPM(t *testing.T, f *twoWorkers) {
	const rpm, jobs = 10, 30
	ctx := ctxT(t, 120*time.Second)
	burst := func(group string) []*bus.Request {
		reqs := make([]*bus.Request, jobs)
		for i := range reqs {
			reqs[i] = userReq(fmt.Sprintf("%s-%d", group, i), fmt.Sprintf("prompt %d", i))
			// The deadline does two things: a job over the limit fails at
			// once because it comes before the next minute (60s away on
			// the fixed clock, which never gets there), and every other
			// job must finish before it. It used to be 10s (30s before
			// the next minute), and the jobs of this burst, queued behind
			// each other on four slots, passed it on a loaded machine
			// (deadline_exceeded on spill jobs): the test measured the
			// machine's speed. 55s keeps the first property whatever the
			// load and leaves the jobs all but the whole minute.
			reqs[i].TimeoutMS = 55_000
		}
		return reqs
	}
	var spill, strict []*bus.Result
	var wg sync.WaitGroup
	wg.Go(func() { spill = f.submit(ctx, "spill", burst("spill")...) })
	wg.Go(func() { strict = f.submit(ctx, "strict", burst("strict")...) })
	wg.Wait()
	for _, g := range []string{"spill", "strict"} {
		n1, n2 := f.jobsOf(g)
		t.Logf("%s: jobs per worker %d / %d", g, n1, n2)
	}
	for _, d := range []string{"spill-a", "strict-a"} {
		require.Equal(t, rpm, f.reserved(t, ctx, d), "the fleet counter of %s holds every call", d)
	}

	// spill: every job ends ok; a takes exactly its fleet-wide rpm.
	aCalls := f.calls("spill-a")
	t.Logf("spill-a calls: worker 1 %d, worker 2 %d", f.p[0]["spill-a"].Calls(), f.p[1]["spill-a"].Calls())
	onA := 0
	for _, res := range spill {
		requireOK(t, res)
		if res.Deployment == "spill-a" {
			onA++
		}
	}
	require.EqualValues(t, rpm, aCalls, "a is preferred while it has headroom, and no more")
	require.EqualValues(t, aCalls, onA)
	require.EqualValues(t, jobs-onA, f.calls("spill-b"), "the rest went to b")

	// strict: the jobs over the limit fail rate_limited (retryable) without
	// calling the deployment.
	sCalls := f.calls("strict-a")
	ok := 0
	for _, res := range strict {
		if res.Status == bus.StatusOK {
			ok++
			continue
		}
		require.Equal(t, bus.CodeRateLimited, res.Error.Code, "%+v", res.Error)
		require.True(t, res.Error.Retryable)
		require.Empty(t, res.Attempts, "no call was made")
	}
	require.EqualValues(t, rpm, sCalls)
	require.Equal(t, rpm, ok)
}

// reserved reads the fleet's rpm counter of deployment for the clock's
// current minute (see internal/fleet).
func (f *twoWorkers) reserved(t *testing.T, ctx context.Context, deployment string) int {
	t.Helper()
	js, err := jetstream.New(f.w[0].nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, "LLM_RATES")
	require.NoError(t, err)
	e, err := kv.Get(ctx, fmt.Sprintf("%s.%d", deployment, f.clock().Unix()/60))
	require.NoError(t, err)
	var c struct {
		Requests int `json:"r"`
	}
	require.NoError(t, json.Unmarshal(e.Value(), &c))
	return c.Requests
}

// Issue 4: a job allowed N retries on one deployment makes exactly 1+N
// upstream calls through the worker, counted over both workers' mocks: no
// retries hidden in a provider, none doubled by nesting, none added by
// JetStream redelivery to either worker.
func testExactlyOnePlusNCalls(t *testing.T, f *twoWorkers) {
	const retries = 3
	ctx := ctxT(t, 60*time.Second)

	res := f.submit(ctx, "down", userReq("down-1", "hi"))[0]
	require.Equal(t, bus.StatusError, res.Status)
	require.Equal(t, bus.CodeProviderUnavailable, res.Error.Code, "%+v", res.Error)
	require.Len(t, res.Attempts, 1+retries)
	require.EqualValues(t, 1+retries, f.calls("down"))

	res = f.submit(ctx, "flaky", userReq("flaky-1", "hi"))[0]
	requireOK(t, res)
	require.Len(t, res.Attempts, 3)
	require.Equal(t, []string{"provider_unavailable", "timeout", ""}, []string{res.Attempts[0].ErrorCode, res.Attempts[1].ErrorCode, res.Attempts[2].ErrorCode})
	require.EqualValues(t, 3, f.calls("flaky"), "stops at the first success")

	// Nothing comes back later: the failed job is answered and acked (gone
	// from the work queue), so there is nothing to redeliver.
	js, err := jetstream.New(f.w[0].nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, bus.StreamRequests)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.Subjects{}.Request("down")))
		return err == nil && len(info.State.Subjects) == 0
	}, 10*time.Second, 10*time.Millisecond, "the job was acked")
	require.EqualValues(t, 1+retries, f.calls("down"))
	n1, n2 := f.jobsOf("down")
	require.Equal(t, 1, n1+n2)
}
