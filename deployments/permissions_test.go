package deployments

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/fleet"
	"github.com/switchyard/switchyard/internal/heartbeat"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// permErrors records the permission violations the server reports to one
// connection (they arrive asynchronously, through the error handler).
type permErrors struct {
	mu   sync.Mutex
	errs []string
}

func (p *permErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		p.mu.Lock()
		p.errs = append(p.errs, err.Error())
		p.mu.Unlock()
	}
}

func (p *permErrors) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// TestPermissions runs the real worker (provisioning, fleet state, consume
// loop) and the real Go client as the users of nats/permissions.conf: the
// documented permissions must be enough for both, with no violation, and
// must keep each role out of the other's subjects and out of destructive
// JetStream calls.
func TestPermissions(t *testing.T) {
	// Not parallel: the config's passwords come from the environment.
	t.Setenv("SWITCHYARD_PRODUCER_PASSWORD", "producer-secret")
	t.Setenv("SWITCHYARD_WORKER_PASSWORD", "worker-secret")
	t.Setenv("SWITCHYARD_ACME_PASSWORD", "acme-secret")
	t.Setenv("SWITCHYARD_GATEWAY_PASSWORD", "gateway-secret")
	t.Setenv("SWITCHYARD_OPERATOR_PASSWORD", "operator-secret")
	conf, err := server.ProcessConfigFile(filepath.Join("nats", "permissions.conf"))
	require.NoError(t, err)
	require.Len(t, conf.Users, 5)
	srv := natstest.Server(t, func(o *server.Options) { o.Users = conf.Users })

	connect := func(user, pass string, opts ...nats.Option) (*nats.Conn, *permErrors) {
		t.Helper()
		pe := &permErrors{}
		nc := natstest.Connect(t, srv, append(opts, nats.UserInfo(user, pass), nats.ErrorHandler(pe.handler))...)
		return nc, pe
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// The worker, wired as cmd/worker wires it.
	wnc, wperm := connect("switchyard-worker", "worker-secret")
	wjs, err := jetstream.New(wnc)
	require.NoError(t, err)
	st, err := fleet.New(ctx, wjs, fleet.Config{})
	require.NoError(t, err, "fleet state as the worker user")
	var closeFleet sync.Once
	closeState := func() { closeFleet.Do(func() { st.Close() }) }
	t.Cleanup(closeState)
	// The second call hangs until cancelled (see the cancel below).
	m := mock.New(mock.Config{Tokens: 5, Script: []mock.Step{{OK: true}, {Hang: true}}})
	router, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{
		Name: "mock", Model: "mock-1", Provider: m,
		// Limits, so the fleet-wide rate counters (KV LLM_RATES) are used.
		Options: policy.DeploymentOptions{RPM: 10000, TPM: 10_000_000},
	}}}}, policy.WithSharedState(st))
	require.NoError(t, err)
	w, err := worker.New(wnc, router, worker.Config{
		Groups:        []string{"demo"},
		TenantNames:   []string{"acme"},
		ShutdownGrace: time.Second,
		// Sweep often, so jobs of unserved groups are answered in the test.
		UnknownSweep: 100 * time.Millisecond,
		UnknownGrace: 10 * time.Millisecond,
		// Short pulls, so that stopping the worker at the end is quick.
		FetchWait: 200 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	var stopOnce sync.Once
	stopWorker := func() {
		stopOnce.Do(func() {
			stop()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("worker did not stop")
			}
		})
	}
	t.Cleanup(stopWorker)
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker failed to start as switchyard-worker: %v (violations: %v)", err, wperm.list())
	case <-ctx.Done():
		t.Fatalf("worker not ready: violations %v", wperm.list())
	}

	// The worker's heartbeat (internal/heartbeat), as the worker process
	// runs it: a few beats, none refused.
	var beats atomic.Int64
	hbLog := &lockedBuffer{}
	hbCtx, hbStop := context.WithCancel(context.Background())
	hbDone := make(chan error, 1)
	go func() {
		hbDone <- heartbeat.Run(hbCtx, wjs, heartbeat.Config{
			Gatherer: prometheus.NewRegistry(), Groups: []string{"demo"}, Interval: 50 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(hbLog, nil)), Now: func() time.Time { beats.Add(1); return time.Now() },
		})
	}()
	require.Eventually(t, func() bool { return beats.Load() >= 4 }, 10*time.Second, 10*time.Millisecond)
	hbStop()
	require.NoError(t, <-hbDone)
	require.NotContains(t, hbLog.String(), "heartbeat not written", "the worker user may write its heartbeat")

	// The producer: submit, read the stored result again, cancel.
	pnc, pperm := connect("switchyard-producer", "producer-secret")
	client, err := bus.NewClient(pnc)
	require.NoError(t, err)
	res, err := client.Submit(ctx, "demo", &bus.Request{
		ID:       "perm-job-1",
		Messages: []bus.Message{{Role: "user", Content: bus.Text("hello")}},
	})
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)
	// The stream may store a result just after its requester saw it.
	storedResult := func(c *bus.Client, id string) *bus.Result {
		t.Helper()
		var r *bus.Result
		require.Eventually(t, func() bool {
			var err error
			r, err = c.StoredResult(ctx, c.Subjects().Reply(id))
			require.NoError(t, err, "read a stored result")
			return r != nil
		}, 10*time.Second, 10*time.Millisecond, "no stored result for %s", id)
		return r
	}
	stored := storedResult(client, "perm-job-1")
	require.Equal(t, res.ID, stored.ID)
	require.NoError(t, client.Cancel(ctx, "perm-job-2"), "producer cancels (KV marker + core cancel)")
	// The worker running a job confirms its cancel.
	slow, err := client.Publish(ctx, "demo", &bus.Request{ID: "perm-job-slow", Messages: []bus.Message{{Role: "user", Content: bus.Text("slow")}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return m.Calls() == 2 }, 10*time.Second, 5*time.Millisecond, "the job runs")
	gs, err := client.GroupStatus(ctx, "demo")
	require.NoError(t, err, "the producer reads its group's queue")
	require.Equal(t, 1, gs.InFlight)
	running, err := client.CancelConfirmed(ctx, "perm-job-slow", 5*time.Second)
	require.NoError(t, err)
	require.True(t, running, "the worker confirmed (violations: %v)", wperm.list())
	for {
		_, res, err := slow.Next(ctx)
		require.NoError(t, err)
		if res != nil {
			require.Equal(t, bus.CodeCancelled, res.Error.Code)
			break
		}
	}

	// A request larger than max_payload travels through the Object Store.
	big, err := client.Submit(ctx, "demo", &bus.Request{
		ID:       "perm-job-big",
		Messages: []bus.Message{{Role: "user", Content: bus.Text(strings.Repeat("long prompt ", 100_000))}},
	})
	require.NoError(t, err, "large request (violations: %v %v)", pperm.list(), wperm.list())
	require.Equal(t, bus.StatusOK, big.Status)

	// A result larger than max_payload travels through the Object Store
	// too: the worker stores it, the producer reads it.
	var schema any
	require.NoError(t, json.Unmarshal([]byte(`{"type":"object","properties":{"s":{"type":"string","minLength":1500000}},"required":["s"]}`), &schema))
	no := false
	bigRes, err := client.Submit(ctx, "demo", &bus.Request{
		ID: "perm-job-big-result", Stream: &no, Messages: []bus.Message{{Role: "user", Content: bus.Text("a long one")}},
		ResponseFormat: &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "long", Schema: schema}},
	})
	require.NoError(t, err, "large result (violations: %v %v)", pperm.list(), wperm.list())
	require.Greater(t, len(bigRes.Text), 1_500_000)

	// A job of a group nobody serves is answered by the worker's sweep.
	res, err = client.Submit(ctx, "nobody", &bus.Request{
		ID:       "perm-job-3",
		Messages: []bus.Message{{Role: "user", Content: bus.Text("anyone?")}},
	})
	require.Error(t, err)
	require.NotNil(t, res, "no answer for an unserved group (violations: %v)", wperm.list())
	require.NotNil(t, res.Error)
	require.Equal(t, bus.CodeUnknownGroup, res.Error.Code)

	// An undecodable job goes to the dead-letter stream.
	require.NoError(t, pnc.Publish(client.Subjects().Request("demo"), []byte{0xc1, 0x00}))
	require.Eventually(t, func() bool {
		s, err := wjs.Stream(ctx, bus.StreamDLQ)
		return err == nil && s.CachedInfo().State.Msgs > 0
	}, 10*time.Second, 20*time.Millisecond, "no dead letter (violations: %v)", wperm.list())

	// The tenant acme, in its namespace: submit, read back, cancel, a large
	// request, is its group served.
	anc, aperm := connect("switchyard-acme", "acme-secret", nats.CustomInboxPrefix("_INBOX.acme"))
	acme, err := bus.NewClient(anc, bus.WithTenant("acme"))
	require.NoError(t, err)
	res, err = acme.Submit(ctx, "demo", &bus.Request{ID: "acme-1", Messages: []bus.Message{{Role: "user", Content: bus.Text("hello")}}})
	require.NoError(t, err, "tenant submits (violations: %v %v)", aperm.list(), wperm.list())
	require.Equal(t, bus.StatusOK, res.Status)
	require.Equal(t, "acme-1", storedResult(acme, "acme-1").ID)
	require.NoError(t, acme.Cancel(ctx, "acme-2"), "tenant cancels")
	served, err := acme.Served(ctx, "demo")
	require.NoError(t, err)
	require.True(t, served)
	big, err = acme.Submit(ctx, "demo", &bus.Request{
		ID:       "acme-big",
		Messages: []bus.Message{{Role: "user", Content: bus.Text(strings.Repeat("long prompt ", 100_000))}},
	})
	require.NoError(t, err, "tenant's large request (violations: %v %v)", aperm.list(), wperm.list())
	require.Equal(t, bus.StatusOK, big.Status)
	// A tenant's large result: stored by the worker in the tenant's bucket,
	// read from there by the tenant.
	bigRes, err = acme.Submit(ctx, "demo", &bus.Request{
		ID: "acme-big-result", Stream: &no, Messages: []bus.Message{{Role: "user", Content: bus.Text("a long one")}},
		ResponseFormat: &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "long", Schema: schema}},
	})
	require.NoError(t, err, "tenant's large result (violations: %v %v)", aperm.list(), wperm.list())
	require.Greater(t, len(bigRes.Text), 1_500_000)

	// The gateway acts for any tenant.
	gnc, gperm := connect("switchyard-gateway", "gateway-secret")
	gw, err := bus.NewClient(gnc, bus.WithTenant("acme"))
	require.NoError(t, err)
	res, err = gw.Submit(ctx, "demo", &bus.Request{ID: "gw-1", Messages: []bus.Message{{Role: "user", Content: bus.Text("hello")}}})
	require.NoError(t, err, "gateway submits for acme (violations: %v)", gperm.list())
	require.Equal(t, bus.StatusOK, res.Status)
	require.Equal(t, "gw-1", storedResult(gw, "gw-1").ID)
	require.NoError(t, gw.Cancel(ctx, "gw-2"))

	// A breaker opened by this worker reaches the fleet through KV.
	until := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	require.NoError(t, st.PublishBreaker(ctx, "mock-elsewhere", until))
	require.Eventually(t, func() bool { return !st.BreakerOpenUntil("mock-elsewhere").IsZero() },
		5*time.Second, 10*time.Millisecond, "breaker mark not watched back")

	// Stopping uses subjects too (a watch deletes its consumer): a missing
	// permission there makes shutdown wait for API timeouts.
	stopped := time.Now()
	stopWorker()
	closeState()
	require.Less(t, time.Since(stopped), 3*time.Second, "worker shutdown waited on a denied request? (violations: %v)", wperm.list())

	// Violations arrive asynchronously: give them time to show.
	require.NoError(t, wnc.Flush())
	require.NoError(t, pnc.Flush())
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		if len(wperm.list())+len(pperm.list()) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Empty(t, wperm.list(), "the worker needed subjects permissions.conf does not allow")
	require.Empty(t, pperm.list(), "the producer needed subjects permissions.conf does not allow")
	require.Empty(t, aperm.list(), "the tenant needed subjects permissions.conf does not allow")
	require.Empty(t, gperm.list(), "the gateway needed subjects permissions.conf does not allow")

	t.Run("denied", func(t *testing.T) {
		pjs, err := jetstream.New(pnc)
		require.NoError(t, err)
		// A denied JetStream API request is dropped by the server (and
		// reported as a violation), so the call can only time out: keep
		// the wait short and check the violation.
		refused := func(perm *permErrors, what string, call func(context.Context) error) {
			t.Helper()
			before := len(perm.list())
			cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer ccancel()
			require.Error(t, call(cctx), what)
			require.Eventually(t, func() bool { return len(perm.list()) > before }, 5*time.Second, 10*time.Millisecond,
				"%s: no permission violation reported", what)
		}
		refused(pperm, "producer deletes LLM_REQUESTS", func(c context.Context) error { return pjs.DeleteStream(c, bus.StreamRequests) })
		refused(wperm, "worker deletes LLM_RESULTS", func(c context.Context) error { return wjs.DeleteStream(c, bus.StreamResults) })
		refused(wperm, "worker purges LLM_REQUESTS", func(c context.Context) error {
			s, err := wjs.Stream(c, bus.StreamRequests)
			if err != nil {
				return err
			}
			return s.Purge(c)
		})
		refused(pperm, "producer consumes jobs", func(c context.Context) error {
			_, err := pjs.CreateOrUpdateConsumer(c, bus.StreamRequests, jetstream.ConsumerConfig{Durable: "thief"})
			return err
		})
		ajs, err := jetstream.New(anc)
		require.NoError(t, err)
		refused(aperm, "tenant lists the results stream's subjects", func(c context.Context) error {
			_, err := ajs.Stream(c, bus.StreamResults)
			return err
		})
		refused(aperm, "tenant reads another namespace's result", func(c context.Context) error {
			_, err := anc.RequestWithContext(c, "$JS.API.DIRECT.GET.LLM_RESULTS.llm.res.perm-job-1.result", nil)
			return err
		})
		refused(aperm, "tenant opens the anonymous object bucket", func(c context.Context) error {
			_, err := ajs.ObjectStore(c, bus.BucketObjects)
			return err
		})
		refused(aperm, "tenant purges its request stream", func(c context.Context) error {
			return ajs.DeleteStream(c, "LLM_REQUESTS_acme")
		})
		refused(aperm, "tenant subscribes to the anonymous results", func(context.Context) error {
			if _, err := anc.Subscribe("llm.res.>", func(*nats.Msg) {}); err != nil {
				return err
			}
			if err := anc.FlushTimeout(5 * time.Second); err != nil {
				return err
			}
			return errors.New("subscribed; refusal is asynchronous")
		})

		// Core publishes outside a user's allow list are dropped too.
		for _, c := range []struct {
			nc      *nats.Conn
			perm    *permErrors
			subject string
		}{
			{pnc, pperm, "llm.dlq.demo"},     // only workers dead-letter
			{pnc, pperm, "llm.res.x.result"}, // only workers answer
			{wnc, wperm, "llm.req.demo"},     // workers do not submit
			{wnc, wperm, "$JS.API.STREAM.PURGE.events"},
			{anc, aperm, "llm.req.demo"},                     // a tenant has no v1 subjects
			{anc, aperm, "llm.t.globex.req.demo"},            // nor another tenant's
			{anc, aperm, "llm.t.acme.res.x.result"},          // only workers answer
			{anc, aperm, "llm.cancel.perm-job-1"},            // cancels only its own jobs
			{anc, aperm, "$KV.LLM_CANCEL.perm-job-1"},        //   queued ones too
			{anc, aperm, "$JS.API.STREAM.PURGE.LLM_RESULTS"}, // purges nothing shared
		} {
			refused(c.perm, "publish to "+c.subject, func(context.Context) error {
				if err := c.nc.Publish(c.subject, []byte("{}")); err != nil {
					return err
				}
				if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
					return err
				}
				return errors.New("published; refusal is asynchronous")
			})
		}
	})
}

// lockedBuffer is a log sink written by one goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
