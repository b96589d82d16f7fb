package policy

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// clock is a settable test clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func intp(n int) *int { return &n }

func failing(kind string) *mock.Provider {
	return mock.New(mock.Config{ErrorRate: map[string]float64{kind: 1}})
}

// cooldownRouter serves group g (no retries: one call per request, in
// priority order) with the cooldown c, on a test clock.
func cooldownRouter(t *testing.T, c *CooldownOptions, deps ...Deployment) (*Router, *clock) {
	t.Helper()
	clk := newClock()
	o := fast()
	o.Retry.MaxRetries = -1
	o.Cooldown = c
	for i := range deps {
		deps[i].Options.Priority = i
	}
	r, err := NewRouter([]Group{{Name: "g", Options: o, Deployments: deps}}, WithClock(clk.now))
	require.NoError(t, err)
	return r, clk
}

// served runs one request and returns the deployment of its last attempt.
func served(t *testing.T, r *Router) string {
	t.Helper()
	out, _ := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
	if len(out.Attempts) == 0 {
		return ""
	}
	return out.Attempts[len(out.Attempts)-1].Deployment
}

// allowed_fails: the failure after allowed_fails cools the deployment down
// for the cooldown's duration (LiteLLM: "cooldown model if it fails >
// allowed_fails"); then it is back.
func TestCooldownAfterAllowedFails(t *testing.T) {
	t.Parallel()
	bad := failing("unavailable")
	r, clk := cooldownRouter(t, &CooldownOptions{AllowedFails: intp(2), Duration: 30 * time.Second},
		dep("bad", bad, DeploymentOptions{}), dep("good", mock.New(mock.Config{}), DeploymentOptions{}))
	for i := range 3 {
		require.Equal(t, "bad", served(t, r), "call %d", i+1)
	}
	require.Equal(t, "good", served(t, r), "the third failure cooled it down")
	clk.advance(29 * time.Second)
	require.Equal(t, "good", served(t, r))
	require.EqualValues(t, 3, bad.Calls())
	require.Equal(t, BreakerOpen, r.Status()[0].Breaker)
	clk.advance(2 * time.Second)
	require.Equal(t, BreakerClosed, r.Status()[0].Breaker)
	require.Equal(t, "bad", served(t, r), "back after cooldown_time")
}

// The count is forgotten a cooldown's duration after the last counted failure.
func TestCooldownCountExpires(t *testing.T) {
	t.Parallel()
	bad := failing("unavailable")
	r, clk := cooldownRouter(t, &CooldownOptions{AllowedFails: intp(1), Duration: 10 * time.Second},
		dep("bad", bad, DeploymentOptions{}), dep("good", mock.New(mock.Config{}), DeploymentOptions{}))
	require.Equal(t, "bad", served(t, r))
	clk.advance(11 * time.Second)
	require.Equal(t, "bad", served(t, r), "the first failure was forgotten")
	require.Equal(t, "bad", served(t, r))
	require.Equal(t, "good", served(t, r))
	require.EqualValues(t, 3, bad.Calls())
}

// allowed_fails_policy: per kind; the other kinds at allowed_fails.
func TestCooldownAllowedFailsPerKind(t *testing.T) {
	t.Parallel()
	bad := mock.New(mock.Config{Script: []mock.Step{{Error: "unavailable"}, {Error: "rate_limited"}}})
	r, _ := cooldownRouter(t, &CooldownOptions{AllowedFails: intp(5), AllowedFailsPerKind: map[string]int{"rate_limited": 0}},
		dep("bad", bad, DeploymentOptions{}), dep("good", mock.New(mock.Config{}), DeploymentOptions{}))
	require.Equal(t, "bad", served(t, r), "one failure of five allowed")
	require.Equal(t, "bad", served(t, r), "a 429 is more than RateLimitErrorAllowedFails: 0")
	require.Equal(t, "good", served(t, r))
}

// Failures that are about the request (a context window, a content
// policy, a plain bad request) and connection errors never cool.
func TestCooldownIgnoresRequestErrors(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"context_window_exceeded", "content_policy", "bad_request", "connection"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			r, _ := cooldownRouter(t, &CooldownOptions{AllowedFails: intp(0)},
				dep("bad", failing(kind), DeploymentOptions{}), dep("good", mock.New(mock.Config{}), DeploymentOptions{}))
			for range 3 {
				require.NotEqual(t, BreakerOpen, r.Status()[0].Breaker)
				served(t, r)
			}
			require.Equal(t, BreakerClosed, r.Status()[0].Breaker)
		})
	}
}

// Without allowed_fails, LiteLLM's failure-rate rule: a 429 cools a
// deployment that has a peer at once, never the last one of its group; an
// auth failure cools even the last one; so does more than half of at least
// five calls this minute failing, with a peer.
func TestCooldownByFailureRate(t *testing.T) {
	t.Parallel()
	ok := func() *mock.Provider { return mock.New(mock.Config{}) }
	t.Run("429 with a peer", func(t *testing.T) {
		t.Parallel()
		r, _ := cooldownRouter(t, &CooldownOptions{}, dep("bad", failing("rate_limited"), DeploymentOptions{}), dep("good", ok(), DeploymentOptions{}))
		require.Equal(t, "bad", served(t, r))
		require.Equal(t, "good", served(t, r))
	})
	t.Run("429 alone", func(t *testing.T) {
		t.Parallel()
		r, _ := cooldownRouter(t, &CooldownOptions{}, dep("bad", failing("rate_limited"), DeploymentOptions{}))
		for range 3 {
			require.Equal(t, "bad", served(t, r), "the last deployment of a group is not cooled for a 429")
		}
	})
	t.Run("auth alone", func(t *testing.T) {
		t.Parallel()
		bad := failing("auth")
		r, _ := cooldownRouter(t, &CooldownOptions{}, dep("bad", bad, DeploymentOptions{}))
		served(t, r)
		require.Empty(t, served(t, r), "cooled down: no deployment left")
		require.EqualValues(t, 1, bad.Calls())
	})
	t.Run("failure rate", func(t *testing.T) {
		t.Parallel()
		// ok, fail, ok, fail, fail: 3 of 5 this minute.
		flaky := mock.New(mock.Config{Script: []mock.Step{{OK: true}, {Error: "unavailable"}, {OK: true}, {Error: "unavailable"}, {Error: "unavailable"}}})
		r, clk := cooldownRouter(t, &CooldownOptions{Duration: time.Second}, dep("flaky", flaky, DeploymentOptions{}), dep("good", ok(), DeploymentOptions{}))
		for range 5 {
			require.Equal(t, "flaky", served(t, r))
		}
		require.Equal(t, "good", served(t, r))
		clk.advance(time.Minute) // a new minute, a new count
		require.Equal(t, "flaky", served(t, r))
	})
}

// The deployment's own cooldown beats the group's duration; a deployment
// cooldown of 0 never cools. (A Retry-After is honoured whatever the
// cooldown: the deployment is not called again before it.)
func TestCooldownDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  mock.Config
		own  *time.Duration
		want time.Duration
	}{
		{"the group's", mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}, nil, time.Hour},
		{"the deployment's own", mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}, ptr(3 * time.Second), 3 * time.Second},
		{"Retry-After", mock.Config{ErrorRate: map[string]float64{"rate_limited": 1}, RetryAfter: 20 * time.Second}, nil, 20 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &CooldownOptions{AllowedFails: intp(0), Duration: time.Hour}
			if tt.want == 20*time.Second {
				c = &CooldownOptions{Duration: time.Hour} // a 429 with a peer cools at once
			}
			r, clk := cooldownRouter(t, c, dep("bad", mock.New(tt.err), DeploymentOptions{Cooldown: tt.own}), dep("good", mock.New(mock.Config{}), DeploymentOptions{}))
			require.Equal(t, "bad", served(t, r))
			clk.advance(tt.want - time.Millisecond)
			require.Equal(t, "good", served(t, r))
			clk.advance(2 * time.Millisecond)
			require.Equal(t, "bad", served(t, r))
		})
	}
	t.Run("never", func(t *testing.T) {
		t.Parallel()
		r, _ := cooldownRouter(t, &CooldownOptions{AllowedFails: intp(0)},
			dep("bad", failing("unavailable"), DeploymentOptions{Cooldown: ptr(time.Duration(0))}), dep("good", mock.New(mock.Config{}), DeploymentOptions{}))
		require.Equal(t, "bad", served(t, r))
		require.Equal(t, "bad", served(t, r))
		require.Equal(t, BreakerClosed, r.Status()[0].Breaker)
	})
}

// A group whose deployments are all cooling down is exhausted at once: the
// request goes to the group's fallbacks, it does not wait.
func TestCooledGroupFallsBack(t *testing.T) {
	t.Parallel()
	clk := newClock()
	bad, spare := failing("unavailable"), mock.New(mock.Config{})
	o := fast()
	o.Retry.MaxRetries = -1
	o.Cooldown = &CooldownOptions{AllowedFails: intp(0), Duration: time.Hour}
	o.Fallbacks = []string{"spare"}
	r, err := NewRouter([]Group{
		{Name: "g", Options: o, Deployments: []Deployment{dep("bad", bad, DeploymentOptions{})}},
		{Name: "spare", Options: fast(), Deployments: []Deployment{dep("spare", spare, DeploymentOptions{})}},
	}, WithClock(clk.now))
	require.NoError(t, err)
	for range 3 {
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.Equal(t, "spare", out.Group)
	}
	require.EqualValues(t, 1, bad.Calls())
}
