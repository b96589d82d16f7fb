package policy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func req(text string) *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

// fast are group options with tiny delays for tests.
func fast() GroupOptions {
	return GroupOptions{
		Retry:   RetryOptions{MaxRetries: 3, Backoff: BackoffOptions{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Jitter: -1},
		Breaker: BreakerOptions{Failures: 1000, Period: time.Minute, Cooldown: time.Second},
	}
}

func dep(name string, p *mock.Provider, o DeploymentOptions) Deployment {
	return Deployment{Name: name, Model: "mock-" + name, Provider: p, Options: o}
}

func newRouter(t *testing.T, groups ...Group) *Router {
	t.Helper()
	r, err := NewRouter(groups)
	require.NoError(t, err)
	return r
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) emit(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) types() []EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []EventType
	for _, e := range r.events {
		if e.Type != EventChunk {
			out = append(out, e.Type)
		}
	}
	return out
}

func TestStrategies(t *testing.T) {
	t.Parallel()
	t.Run("priority", func(t *testing.T) {
		t.Parallel()
		a, b := mock.New(mock.Config{}), mock.New(mock.Config{})
		r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", a, DeploymentOptions{Priority: 2}), dep("b", b, DeploymentOptions{Priority: 1})}})
		for range 5 {
			out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err)
			require.Equal(t, "b", out.Deployment)
		}
		require.EqualValues(t, 0, a.Calls())
	})
	t.Run("weighted", func(t *testing.T) {
		t.Parallel()
		a, b := mock.New(mock.Config{}), mock.New(mock.Config{})
		o := fast()
		o.Strategy = StrategyWeighted
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", a, DeploymentOptions{Weight: 9}), dep("b", b, DeploymentOptions{Weight: 1})}})
		for range 400 {
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err)
		}
		require.InDelta(t, 360, a.Calls(), 30)
		require.InDelta(t, 40, b.Calls(), 30)
	})
	t.Run("least_busy", func(t *testing.T) {
		t.Parallel()
		slow, free := mock.New(mock.Config{TTFT: 300 * time.Millisecond}), mock.New(mock.Config{})
		o := fast()
		o.Strategy = StrategyLeastBusy
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("slow", slow, DeploymentOptions{}), dep("free", free, DeploymentOptions{})}})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = r.Execute(context.Background(), &Call{Group: "g", Request: req("x")}, nil)
		}()
		require.Eventually(t, func() bool { return slow.Calls() == 1 }, time.Second, time.Millisecond)
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("y")}, nil)
		require.NoError(t, err)
		require.Equal(t, "free", out.Deployment)
		<-done
	})
	t.Run("lowest_latency", func(t *testing.T) {
		t.Parallel()
		slow, quick := mock.New(mock.Config{TTFT: 30 * time.Millisecond}), mock.New(mock.Config{TTFT: time.Millisecond})
		o := fast()
		o.Strategy = StrategyLowestLatency
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("slow", slow, DeploymentOptions{}), dep("quick", quick, DeploymentOptions{})}})
		for range 6 {
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err)
		}
		require.EqualValues(t, 1, slow.Calls(), "measured once, then avoided")
		require.EqualValues(t, 5, quick.Calls())
	})
	t.Run("usage_based", func(t *testing.T) {
		t.Parallel()
		a, b := mock.New(mock.Config{}), mock.New(mock.Config{})
		o := fast()
		o.Strategy = StrategyUsageBased
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", a, DeploymentOptions{RPM: 10}), dep("b", b, DeploymentOptions{RPM: 30})}})
		for range 20 {
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err)
		}
		require.EqualValues(t, 5, a.Calls(), "a at 50%% of 10 rpm while b at 50%% of 30")
		require.EqualValues(t, 15, b.Calls())
	})
}

func TestExactlyOnePlusNCalls(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, 1, 2, 5} {
		p := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
		o := fast()
		o.Retry.MaxRetries = n
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.ErrorIs(t, err, llm.ErrUnavailable)
		want := 1 + max(n, 0)
		require.EqualValues(t, want, p.Calls(), "max_retries %d", n)
		require.Len(t, out.Attempts, want)
		require.Equal(t, want-1, out.Retries)
	}
}

func TestErrorTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind    string
		onError map[string]Action
		aCalls  int64
		bCalls  int64
		ok      bool
	}{
		{"unavailable", nil, 2, 0, true},     // retried on a (priority), second call ok
		{"rate_limited", nil, 1, 1, true},    // a cools down (Retry-After), b answers
		{"auth", nil, 1, 1, true},            // never again on a, b answers
		{"bad_request", nil, 1, 0, false},    // fails at once
		{"content_policy", nil, 1, 0, false}, // no content_policy_fallbacks: fails
		{"unavailable", map[string]Action{"unavailable": ActionFail}, 1, 0, false},
		{"bad_request", map[string]Action{"bad_request": ActionRetry}, 2, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+strings.Join(keys(tt.onError), ","), func(t *testing.T) {
			t.Parallel()
			a := mock.New(mock.Config{RetryAfter: time.Second, Script: []mock.Step{{Error: tt.kind}}})
			b := mock.New(mock.Config{})
			o := fast()
			o.OnError = tt.onError
			r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", a, DeploymentOptions{}), dep("b", b, DeploymentOptions{Priority: 1})}})
			out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Equal(t, tt.kind, llm.KindOf(err).String())
			}
			require.Equal(t, tt.aCalls, a.Calls())
			require.Equal(t, tt.bCalls, b.Calls())
			require.Equal(t, tt.kind, out.Attempts[0].Code)
		})
	}
}

func keys(m map[string]Action) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+string(v))
	}
	return out
}

func TestFallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first mock.Config
		want  string
		dep   DeploymentOptions
		long  bool
	}{
		{"fallbacks", mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}, "backup", DeploymentOptions{}, false},
		{"context_window after the call", mock.Config{ErrorRate: map[string]float64{"context_window_exceeded": 1}}, "big", DeploymentOptions{}, false},
		{"context_window before the call", mock.Config{}, "big", DeploymentOptions{ContextWindow: 100}, true},
		{"content_policy", mock.Config{ErrorRate: map[string]float64{"content_policy": 1}}, "lenient", DeploymentOptions{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := mock.New(tt.first)
			o := fast()
			o.Retry.MaxRetries = 1
			o.Fallbacks = []string{"backup"}
			o.ContextWindowFallbacks = []string{"big"}
			o.ContentPolicyFallbacks = []string{"lenient"}
			others := map[string]*mock.Provider{"backup": mock.New(mock.Config{}), "big": mock.New(mock.Config{}), "lenient": mock.New(mock.Config{})}
			groups := []Group{{Name: "main", Options: o, Deployments: []Deployment{dep("m", first, tt.dep)}}}
			for name, p := range others {
				groups = append(groups, Group{Name: name, Options: fast(), Deployments: []Deployment{dep(name, p, DeploymentOptions{})}})
			}
			r := newRouter(t, groups...)
			rec := &recorder{}
			q := req("x")
			if tt.long {
				q = req(strings.Repeat("word ", 200))
			}
			out, err := r.Execute(t.Context(), &Call{Group: "main", Request: q}, rec.emit)
			require.NoError(t, err)
			require.Equal(t, tt.want, out.Group)
			require.Equal(t, 1, out.Fallbacks)
			for name, p := range others {
				if name == tt.want {
					require.EqualValues(t, 1, p.Calls())
				} else {
					require.EqualValues(t, 0, p.Calls(), name)
				}
			}
			if tt.long {
				require.EqualValues(t, 0, first.Calls(), "decided before the call")
			}
			require.Contains(t, rec.types(), EventFallback)
			require.Len(t, out.Attempts, 1+out.Retries+out.Fallbacks-boolInt(tt.long))
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	// Fake time (testing/synctest): the waits take no time and cannot
	// race the machine's load.
	synctest.Test(t, func(t *testing.T) {
		p := mock.New(mock.Config{Script: []mock.Step{{Error: "rate_limited", RetryAfter: 80 * time.Millisecond}}})
		r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
		start := time.Now()
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
		require.Equal(t, 1, out.Retries)
		require.EqualValues(t, 2, p.Calls())
	})
}

func TestDeadlineRespected(t *testing.T) {
	t.Parallel()
	t.Run("retry-after past the deadline fails fast", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := mock.New(mock.Config{Script: []mock.Step{{Error: "rate_limited", RetryAfter: 10 * time.Second}}})
			r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
			require.ErrorIs(t, err, llm.ErrRateLimited)
			require.Less(t, time.Since(start), 100*time.Millisecond)
			require.EqualValues(t, 1, p.Calls())
		})
	})
	t.Run("backoff past the deadline fails fast", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
			o := fast()
			o.Retry.Backoff = BackoffOptions{Initial: 5 * time.Second, Max: 5 * time.Second}
			r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
			require.ErrorIs(t, err, llm.ErrUnavailable)
			require.Less(t, time.Since(start), 100*time.Millisecond)
		})
	})
	t.Run("a hang ends at the deadline", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := mock.New(mock.Config{HangRate: 1})
			r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
			require.Error(t, err)
			require.Less(t, time.Since(start), 300*time.Millisecond)
		})
	})
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  mock.Config
		to   TimeoutOptions
		msg  string
	}{
		{"ttft", mock.Config{TTFT: time.Second}, TimeoutOptions{TTFT: 30 * time.Millisecond}, "no first token"},
		{"idle", mock.Config{Tokens: 5, ChunkDelay: time.Second}, TimeoutOptions{Idle: 30 * time.Millisecond}, "no chunk"},
		{"total", mock.Config{Tokens: 50, ChunkDelay: 10 * time.Millisecond}, TimeoutOptions{Total: 60 * time.Millisecond}, "total"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				p := mock.New(tt.cfg)
				o := fast()
				o.Retry.MaxRetries = -1
				r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{Timeouts: tt.to})}})
				start := time.Now()
				_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
				require.ErrorIs(t, err, llm.ErrTimeout)
				require.ErrorContains(t, err, tt.msg)
				require.Less(t, time.Since(start), 500*time.Millisecond)
			})
		})
	}
}

func TestBreakerTransitions(t *testing.T) {
	t.Parallel()
	// Fake time (testing/synctest): the waits take no time and cannot
	// race the machine's load.
	synctest.Test(t, func(t *testing.T) {
		bad := mock.New(mock.Config{Script: []mock.Step{{Error: "unavailable"}, {Error: "unavailable"}, {Error: "unavailable"}, {OK: true}, {OK: true}}})
		good := mock.New(mock.Config{})
		o := fast()
		o.Retry.MaxRetries = -1
		o.Fallbacks = []string{"spare"}
		o.Breaker = BreakerOptions{Failures: 2, Period: time.Minute, Cooldown: 100 * time.Millisecond, HalfOpenProbes: 1}
		r := newRouter(t,
			Group{Name: "g", Options: o, Deployments: []Deployment{dep("bad", bad, DeploymentOptions{})}},
			Group{Name: "spare", Options: fast(), Deployments: []Deployment{dep("good", good, DeploymentOptions{})}})
		st := r.cfg.Load().groups["g"].deps[0].state
		for range 2 {
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err) // answered by the fallback
		}
		require.True(t, st.breaker.IsOpen(), "2 failures open it")
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.EqualValues(t, 2, bad.Calls(), "open: skipped")
		require.Equal(t, "spare", out.Group)

		time.Sleep(120 * time.Millisecond)
		_, err = r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil) // half-open probe fails (3rd scripted error)
		require.NoError(t, err)
		require.EqualValues(t, 3, bad.Calls())
		require.True(t, st.breaker.IsOpen(), "a failed probe reopens")

		time.Sleep(120 * time.Millisecond)
		out, err = r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.Equal(t, "g", out.Group)
		require.True(t, st.breaker.IsClosed(), "a good probe closes")
	})
}

func TestLimits(t *testing.T) {
	t.Parallel()
	t.Run("rpm", func(t *testing.T) {
		t.Parallel()
		a, b := mock.New(mock.Config{}), mock.New(mock.Config{})
		r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", a, DeploymentOptions{RPM: 3}), dep("b", b, DeploymentOptions{Priority: 1, RPM: 2})}})
		for range 5 {
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err)
		}
		require.EqualValues(t, 3, a.Calls())
		require.EqualValues(t, 2, b.Calls())
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
		require.ErrorIs(t, err, llm.ErrRateLimited)
		require.EqualValues(t, 5, a.Calls()+b.Calls())
	})
	t.Run("tpm", func(t *testing.T) {
		t.Parallel()
		a := mock.New(mock.Config{})
		r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", a, DeploymentOptions{TPM: 150})}})
		q := req(strings.Repeat("abcd", 100)) // ~107 tokens
		_, err := r.Execute(t.Context(), &Call{Group: "g", Request: q}, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err = r.Execute(ctx, &Call{Group: "g", Request: q}, nil)
		require.ErrorIs(t, err, llm.ErrRateLimited)
		require.EqualValues(t, 1, a.Calls())
	})
	t.Run("concurrency waits for a slot", func(t *testing.T) {
		t.Parallel()
		a := mock.New(mock.Config{TTFT: 20 * time.Millisecond})
		r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", a, DeploymentOptions{MaxConcurrency: 2})}})
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.EqualValues(t, 6, a.Calls())
		// Counted by the provider, between its call's start and its stream's
		// end, which comes before the router gives the slot back. (Counting
		// from the start event to Execute's return raced the next call's
		// start: 3 was seen in CI.)
		require.LessOrEqual(t, a.PeakInFlight(), int64(2))
	})
}

func TestMidStream(t *testing.T) {
	t.Parallel()
	full := func(t *testing.T) string {
		out, err := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", mock.New(mock.Config{Seed: 1, Tokens: 10}), DeploymentOptions{})}}).Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		return out.Text
	}
	for _, mode := range []MidStream{MidStreamRestart, MidStreamContinue} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			p := mock.New(mock.Config{Seed: 1, Tokens: 10, Script: []mock.Step{{FailAfter: 4}}})
			o := fast()
			o.MidStream = mode
			r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
			rec := &recorder{}
			out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, rec.emit)
			require.NoError(t, err)
			want := full(t)
			require.Equal(t, want, out.Text)
			var streamed strings.Builder
			for _, e := range rec.events {
				switch e.Type {
				case EventRestart:
					streamed.Reset()
				case EventChunk:
					streamed.WriteString(e.Delta)
				}
			}
			require.Equal(t, want, streamed.String(), "what the client assembles")
			if mode == MidStreamRestart {
				require.Equal(t, []EventType{EventStart, EventRetry, EventRestart, EventStart}, rec.types())
				require.Len(t, p.Requests()[1].Messages, 1)
			} else {
				require.Equal(t, []EventType{EventStart, EventRetry, EventStart}, rec.types())
				msgs := p.Requests()[1].Messages
				require.Len(t, msgs, 2)
				require.Equal(t, llm.RoleAssistant, msgs[1].Role)
			}
		})
	}
	t.Run("continue falls back to restart for JSON", func(t *testing.T) {
		t.Parallel()
		p := mock.New(mock.Config{Script: []mock.Step{{FailAfter: 2}}})
		o := fast()
		o.MidStream = MidStreamContinue
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
		q := req("x")
		q.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONObject}
		rec := &recorder{}
		_, err := r.Execute(t.Context(), &Call{Group: "g", Request: q}, rec.emit)
		require.NoError(t, err)
		require.Contains(t, rec.types(), EventRestart)
	})
}

func TestReloadKeepsState(t *testing.T) {
	t.Parallel()
	a := mock.New(mock.Config{})
	g := Group{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", a, DeploymentOptions{RPM: 2})}}
	r := newRouter(t, g)
	for range 2 {
		_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
	}
	g2 := g
	g2.Deployments = []Deployment{dep("a", mock.New(mock.Config{}), DeploymentOptions{RPM: 2})}
	require.NoError(t, r.Reload([]Group{g2, {Name: "h", Options: fast(), Deployments: []Deployment{dep("x", mock.New(mock.Config{}), DeploymentOptions{})}}}))
	require.True(t, r.HasGroup("h"))
	require.Equal(t, []string{"g", "h"}, r.Groups())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
	require.ErrorIs(t, err, llm.ErrRateLimited, "the rpm count survived the reload")

	g3 := g
	g3.Deployments = []Deployment{{Name: "a", Model: "other-model", Provider: mock.New(mock.Config{}), Options: DeploymentOptions{RPM: 2}}}
	require.NoError(t, r.Reload([]Group{g3}))
	_, err = r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
	require.NoError(t, err, "a changed model starts fresh")
	require.False(t, r.HasGroup("h"))

	require.Error(t, r.Reload([]Group{{Name: "g", Options: GroupOptions{Fallbacks: []string{"nope"}}, Deployments: g.Deployments}}))
}

func TestUnknownGroup(t *testing.T) {
	t.Parallel()
	r := newRouter(t, Group{Name: "g", Deployments: []Deployment{dep("a", mock.New(mock.Config{}), DeploymentOptions{})}})
	_, err := r.Execute(t.Context(), &Call{Group: "nope", Request: req("x")}, nil)
	require.True(t, errors.Is(err, ErrUnknownGroup))
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		o     GroupOptions
		field string
	}{
		{GroupOptions{Strategy: "random"}, "strategy"},
		{GroupOptions{MidStream: "resume"}, "mid_stream"},
		{GroupOptions{Retry: RetryOptions{MaxRetries: -2}}, "max_retries"},
		{GroupOptions{Breaker: BreakerOptions{FailureRate: 2}}, "failure_rate"},
		{GroupOptions{OnError: map[string]Action{"boom": ActionRetry}}, "on_error"},
		{GroupOptions{OnError: map[string]Action{"auth": "explode"}}, "on_error.auth"},
		{GroupOptions{Timeouts: TimeoutOptions{TTFT: -1}}, "timeouts"},
	}
	for _, tt := range tests {
		require.ErrorContains(t, tt.o.Validate(), tt.field)
	}
	require.NoError(t, GroupOptions{}.WithDefaults().Validate())
	require.ErrorContains(t, DeploymentOptions{RPM: -1}.Validate(), "rpm")
	require.Equal(t, 1, DeploymentOptions{}.WithDefaults().Weight)
}

// The router reads rate windows and Retry-After cool-downs from its clock
// (WithClock), so a test can move to the next minute without waiting one.
func TestRateWindowOnTheRoutersClock(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 12, 0, 10, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := mock.New(mock.Config{Script: []mock.Step{{OK: true}, {OK: true}, {Error: "rate_limited", RetryAfter: 10 * time.Second}}})
	r, err := NewRouter([]Group{{Name: "g", Options: fast(), Deployments: []Deployment{dep("a", a, DeploymentOptions{RPM: 2})}}}, WithClock(clock))
	require.NoError(t, err)
	for range 2 {
		_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
	require.ErrorIs(t, err, llm.ErrRateLimited, "2 rpm spent in this minute")
	require.EqualValues(t, 2, a.Calls())

	advance(50 * time.Second) // 12:01:00, a new minute
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil) // answered 429, Retry-After 10s
	require.ErrorIs(t, err, llm.ErrRateLimited)
	require.EqualValues(t, 3, a.Calls())

	advance(9 * time.Second)
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
	require.ErrorIs(t, err, llm.ErrRateLimited, "still cooling down on the router's clock")
	require.EqualValues(t, 3, a.Calls())

	advance(time.Second)
	_, err = r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
	require.NoError(t, err)
	require.EqualValues(t, 4, a.Calls())
}
