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

func newState(t *testing.T, url string) *State {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := New(t.Context(), js, Config{})
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

	_, err = r1.Execute(t.Context(), "g", userReq(), nil) // one failure opens r1's breaker
	require.ErrorIs(t, err, llm.ErrUnavailable)
	opened := time.Now()
	require.Eventually(t, func() bool { return s2.BreakerOpenUntil("a").After(time.Now()) }, time.Second, time.Millisecond)
	took := time.Since(opened)
	t.Logf("breaker propagation: %v", took)
	require.Less(t, took, 100*time.Millisecond)

	_, err = r2.Execute(t.Context(), "g", userReq(), nil)
	require.ErrorIs(t, err, llm.ErrUnavailable)
	require.EqualValues(t, 0, p2.Calls(), "the second worker skips the deployment without calling it")
}

func TestSharedRPM(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	const rpm = 10
	var provs []*mock.Provider
	var routers []*policy.Router
	for range 2 {
		p := mock.New(mock.Config{Tokens: 2})
		r, err := policy.NewRouter([]policy.Group{group(p, policy.DeploymentOptions{RPM: rpm})}, policy.WithSharedState(newState(t, srv.ClientURL())))
		require.NoError(t, err)
		provs, routers = append(provs, p), append(routers, r)
	}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _ = routers[i%2].Execute(ctx, "g", userReq(), nil)
		})
	}
	wg.Wait()
	total := provs[0].Calls() + provs[1].Calls()
	// A minute boundary during the test allows one more window's worth.
	require.True(t, total == rpm || total == 2*rpm && time.Now().Second() < 2, "calls %d", total)
	require.Positive(t, provs[0].Calls())
	require.Positive(t, provs[1].Calls())
}

func TestLosingKVKeepsWorking(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	st := newState(t, srv.ClientURL())
	p := mock.New(mock.Config{})
	r, err := policy.NewRouter([]policy.Group{group(p, policy.DeploymentOptions{RPM: 100})}, policy.WithSharedState(st))
	require.NoError(t, err)
	_, err = r.Execute(t.Context(), "g", userReq(), nil)
	require.NoError(t, err)
	srv.Shutdown()
	srv.WaitForShutdown()
	start := time.Now()
	for range 5 {
		_, err = r.Execute(t.Context(), "g", userReq(), nil)
		require.NoError(t, err)
	}
	require.Less(t, time.Since(start), time.Second)
	require.EqualValues(t, 6, p.Calls())
}
