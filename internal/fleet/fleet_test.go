package fleet

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(5*time.Second))
	t.Cleanup(s.Shutdown)
	return s
}

func newState(t *testing.T, url string, cfg ...Config) *State {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := New(t.Context(), js, append(cfg, Config{})[0])
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func userReq() *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
}

func group(p *mock.Provider, o policy.DeploymentOptions) policy.Group {
	return policy.Group{Name: "g", Options: policy.GroupOptions{
		Retry:   policy.RetryOptions{MaxRetries: -1},
		Breaker: policy.BreakerOptions{Failures: 1, Period: time.Minute, Cooldown: time.Minute},
	}, Deployments: []policy.Deployment{{Name: "a", Model: "m", Provider: p, Options: o}}}
}

func TestBreakerPropagates(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s1, s2 := newState(t, srv.ClientURL()), newState(t, srv.ClientURL())
	down := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
	p2 := mock.New(mock.Config{})
	r1, err := policy.NewRouter([]policy.Group{group(down, policy.DeploymentOptions{})}, policy.WithSharedState(s1))
	require.NoError(t, err)
	r2, err := policy.NewRouter([]policy.Group{group(p2, policy.DeploymentOptions{})}, policy.WithSharedState(s2))
	require.NoError(t, err)

	_, err = r1.Execute(t.Context(), &policy.Call{Group: "g", Request: userReq()}, nil) // one failure opens r1's breaker
	require.ErrorIs(t, err, llm.ErrUnavailable)
	// How fast is a figure for make bench; here only that it arrives.
	opened := time.Now()
	require.Eventually(t, func() bool { return s2.BreakerOpenUntil("a").After(time.Now()) }, 10*time.Second, time.Millisecond)
	t.Logf("breaker propagation: %v", time.Since(opened))

	_, err = r2.Execute(t.Context(), &policy.Call{Group: "g", Request: userReq()}, nil)
	require.ErrorIs(t, err, llm.ErrUnavailable)
	require.EqualValues(t, 0, p2.Calls(), "the second worker skips the deployment without calling it")
}

// TestSharedRPM checks that two routers share one rpm limit. Both run on a
// fixed clock (no minute boundary can open a second window) and a generous
// store timeout (a slow reservation under load must not fall back to the
// local counters), so every count is exact. The routers' turns are
// sequential where the split between them is asserted: racing goroutines
// decide who wins, so the concurrent part asserts only the total.
func TestSharedRPM(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	const rpm = 10
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	clock := func() time.Time { return now }
	// Each part counts in its own bucket, so that its window starts empty.
	newRouters := func(bucket string) ([]*mock.Provider, []*policy.Router) {
		var provs []*mock.Provider
		var routers []*policy.Router
		for range 2 {
			p := mock.New(mock.Config{Tokens: 2})
			st := newState(t, srv.ClientURL(), Config{RateBucket: bucket, OpTimeout: 30 * time.Second, Now: clock})
			r, err := policy.NewRouter([]policy.Group{group(p, policy.DeploymentOptions{RPM: rpm})}, policy.WithSharedState(st), policy.WithClock(clock))
			require.NoError(t, err)
			provs, routers = append(provs, p), append(routers, r)
		}
		return provs, routers
	}
	call := func(r *policy.Router) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := r.Execute(ctx, &policy.Call{Group: "g", Request: userReq()}, nil)
		return err
	}

	t.Run("sequential turns", func(t *testing.T) {
		provs, routers := newRouters("RATES_SEQUENTIAL")
		for range 4 {
			require.NoError(t, call(routers[0]))
		}
		// The second router has its own local allowance of 10, but the
		// fleet's counter has 6 left.
		var limited int
		for range 10 {
			if err := call(routers[1]); err != nil {
				require.ErrorIs(t, err, llm.ErrRateLimited)
				limited++
			}
		}
		require.EqualValues(t, 4, provs[0].Calls())
		require.EqualValues(t, 6, provs[1].Calls())
		require.Equal(t, 4, limited)
		require.ErrorIs(t, call(routers[0]), llm.ErrRateLimited, "the first router sees the window full too")
		require.EqualValues(t, 4, provs[0].Calls())
	})
	t.Run("racing", func(t *testing.T) {
		provs, routers := newRouters("RATES_RACING")
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() { _ = call(routers[i%2]) })
		}
		wg.Wait()
		require.EqualValues(t, rpm, provs[0].Calls()+provs[1].Calls(), "calls %d + %d", provs[0].Calls(), provs[1].Calls())
	})
}

// TestLosingKVKeepsWorking checks that a router whose store is gone decides
// from its local counters at once: with a store timeout of an hour, a call
// that waited for the store would fail on its own deadline instead.
func TestLosingKVKeepsWorking(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	st := newState(t, srv.ClientURL(), Config{OpTimeout: time.Hour})
	p := mock.New(mock.Config{})
	r, err := policy.NewRouter([]policy.Group{group(p, policy.DeploymentOptions{RPM: 100})}, policy.WithSharedState(st))
	require.NoError(t, err)
	_, err = r.Execute(t.Context(), &policy.Call{Group: "g", Request: userReq()}, nil)
	require.NoError(t, err)
	srv.Shutdown()
	srv.WaitForShutdown()
	require.Eventually(t, func() bool { return !st.nc.IsConnected() }, 10*time.Second, time.Millisecond)
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		_, err = r.Execute(ctx, &policy.Call{Group: "g", Request: userReq()}, nil)
		cancel()
		require.NoError(t, err)
	}
	require.EqualValues(t, 6, p.Calls())
}
