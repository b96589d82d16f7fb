package respcache_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/respcache"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// cachedWorker is a worker process in miniature: its own connection, mock
// provider (so that its calls are its own), router and cache store.
type cachedWorker struct {
	provider *mock.Provider
	stop     func()
}

func ptr[T any](v T) *T { return &v }

// routerExec is the router behind its cache, as internal/app builds it.
type routerExec struct {
	policy.Executor
	r *policy.Router
}

func (e routerExec) HasGroup(name string) bool { return e.r.HasGroup(name) }

func startCachedWorker(t *testing.T, srv *server.Server) *cachedWorker {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	p := mock.New(mock.Config{Text: "The quick brown fox jumps over the lazy dog.", Tokens: 6})
	r, err := policy.NewRouter([]policy.Group{{
		Name: "g",
		Deployments: []policy.Deployment{{Name: "d", Model: "m", Provider: p, Options: policy.DeploymentOptions{
			InputCostPerMTok: ptr(1.0), OutputCostPerMTok: ptr(2.0),
		}}},
		Options: policy.GroupOptions{Cache: &policy.CacheOptions{TTL: time.Hour}},
	}})
	require.NoError(t, err)
	exec := routerExec{r: r, Executor: policy.Chain(r, policy.Cache(policy.CacheConfig{Store: respcache.New(js, respcache.Config{}), Options: r.CacheOptions}))}
	w, err := worker.New(nc, exec, worker.Config{
		Groups: []string{"g"}, FetchWait: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready in 10s")
	}
	cw := &cachedWorker{provider: p}
	var stopped bool
	cw.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("worker did not stop in 20s")
		}
		r.Close()
		nc.Close()
	}
	t.Cleanup(cw.stop)
	return cw
}

// event is what a requester sees of an event, without its job id.
type event struct {
	Type       bus.EventType
	Seq        uint64
	Deployment string
	Delta      string
}

func submit(t *testing.T, c *bus.Client, req *bus.Request) (*bus.Result, []event) {
	t.Helper()
	var evs []event
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := c.Submit(ctx, "g", req, bus.OnEvent(func(e *bus.Event) {
		evs = append(evs, event{e.Type, e.Seq, e.Deployment, e.Delta})
	}))
	require.NoError(t, err)
	return res, evs
}

func request(id string) *bus.Request {
	return &bus.Request{ID: id, Temperature: ptr(0.0), Messages: []bus.Message{{Role: "user", Content: bus.Text("Say the pangram.")}}}
}

// A deterministic request answered by one worker is answered again by
// another from the cache: no provider call, the same events, cached and
// free.
func TestSecondWorkerAnswersFromTheCache(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	c, err := bus.NewClient(natstest.Connect(t, srv))
	require.NoError(t, err)

	first := startCachedWorker(t, srv)
	res1, evs1 := submit(t, c, request("job-1"))
	require.Equal(t, bus.StatusOK, res1.Status)
	require.False(t, res1.Cached)
	require.Positive(t, res1.CostUSD)
	require.EqualValues(t, 1, first.provider.Calls())
	first.stop()

	second := startCachedWorker(t, srv)
	res2, evs2 := submit(t, c, request("job-2"))
	require.Zero(t, second.provider.Calls(), "the second worker called no provider")
	require.Equal(t, bus.StatusOK, res2.Status)
	require.True(t, res2.Cached)
	require.Zero(t, res2.CostUSD)
	require.Nil(t, res2.Usage)
	require.Empty(t, res2.Attempts)
	require.Equal(t, res1.Text, res2.Text)
	require.Equal(t, res1.Deployment, res2.Deployment)
	require.Greater(t, len(evs1), 2, "a start and several chunks")
	require.Equal(t, evs1, evs2, "the same event sequence")

	// cache: false on the wire goes to the provider, and stores nothing
	// that a later request would be answered with.
	req := request("job-3")
	req.Cache = ptr(false)
	res3, _ := submit(t, c, req)
	require.False(t, res3.Cached)
	require.EqualValues(t, 1, second.provider.Calls())
}
