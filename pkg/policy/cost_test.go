package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func usd(v float64) *float64 { return &v }

func priced(in, out float64, maxOutput int) DeploymentOptions {
	return DeploymentOptions{InputCostPerMTok: usd(in), OutputCostPerMTok: usd(out), MaxOutput: maxOutput}
}

// sized is a request of about prompt tokens (catalog.EstimateTokens: 7
// tokens of framing, then one per 4 characters).
func sized(prompt, maxTokens int) *llm.Request {
	r := req(strings.Repeat("abcd", prompt-7))
	r.MaxTokens = maxTokens
	return r
}

// The cost strategy orders by what this request costs: a long prompt with a
// short answer goes to the deployment with cheap input, a short prompt with
// a long answer to the one with cheap output, and without max_tokens the
// order is that of the price per token.
func TestCostStrategyPerRequest(t *testing.T) {
	t.Parallel()
	o := fast()
	o.Strategy = StrategyCost
	cheapIn, cheapOut, unknown := mock.New(mock.Config{}), mock.New(mock.Config{}), mock.New(mock.Config{})
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
		dep("unknown", unknown, DeploymentOptions{}), // mock-unknown: no catalogue price
		dep("cheap-out", cheapOut, priced(10, 1, 0)),
		dep("cheap-in", cheapIn, priced(1, 20, 0)),
	}})
	tests := []struct {
		name string
		req  *llm.Request
		want string
	}{
		{"long prompt, short answer", sized(10_000, 10), "cheap-in"},    // 0.01+0.0002 vs 0.1+0.00001
		{"short prompt, long answer", sized(10, 10_000), "cheap-out"},   // 0.00001+0.2 vs 0.0001+0.01
		{"no max_tokens: price per token", sized(1000, 0), "cheap-out"}, // 11 < 21 per MTok
	}
	for _, tt := range tests {
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: tt.req}, nil)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, out.Deployment, tt.name)
	}
	require.Zero(t, unknown.Calls(), "an unknown price is tried last")
}

// The cheapest deployment at its limit is passed over for the next
// cheapest: cheapest that fits and has capacity.
func TestCostStrategyCheapestWithCapacity(t *testing.T) {
	t.Parallel()
	o := fast()
	o.Strategy = StrategyCost
	full, next := mock.New(mock.Config{}), mock.New(mock.Config{})
	cheap := priced(0.1, 0.1, 0)
	cheap.ContextWindow = 50 // the request does not fit it
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
		dep("small", full, cheap),
		dep("next", next, priced(1, 1, 0)),
	}})
	out, err := r.Execute(t.Context(), &Call{Group: "g", Request: sized(100, 10)}, nil)
	require.NoError(t, err)
	require.Equal(t, "next", out.Deployment)
	require.Zero(t, full.Calls())
}

func TestMaxCost(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*Router, *mock.Provider, *mock.Provider, *mock.Provider) {
		dear, cheap, fb := mock.New(mock.Config{}), mock.New(mock.Config{}), mock.New(mock.Config{})
		o := fast()
		o.Fallbacks = []string{"fallback"}
		r := newRouter(t,
			Group{Name: "g", Options: o, Deployments: []Deployment{
				dep("dear", dear, priced(10, 30, 4000)), // priority: first unless it may cost too much
				dep("cheap", cheap, priced(1, 2, 4000)),
			}},
			Group{Name: "fallback", Options: fast(), Deployments: []Deployment{dep("fb", fb, priced(0.1, 0.1, 4000))}},
			Group{Name: "unpriced", Options: fast(), Deployments: []Deployment{dep("unpriced", mock.New(mock.Config{}), DeploymentOptions{})}},
		)
		return r, dear, cheap, fb
	}
	t.Run("the deployments that may cost more are skipped", func(t *testing.T) {
		t.Parallel()
		r, dear, cheap, _ := setup(t)
		// 1000 prompt + 1000 out: dear 0.04, cheap 0.003.
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: sized(1000, 1000), MaxCostUSD: 0.01}, nil)
		require.NoError(t, err)
		require.Equal(t, "cheap", out.Deployment)
		require.Zero(t, dear.Calls())
		require.Equal(t, int64(1), cheap.Calls())
	})
	t.Run("a group none of which is affordable falls back", func(t *testing.T) {
		t.Parallel()
		r, dear, cheap, fb := setup(t)
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: sized(1000, 1000), MaxCostUSD: 0.001}, nil)
		require.NoError(t, err)
		require.Equal(t, "fb", out.Deployment)
		require.Zero(t, dear.Calls()+cheap.Calls())
		require.Equal(t, int64(1), fb.Calls())
	})
	t.Run("refused before any call", func(t *testing.T) {
		t.Parallel()
		r, dear, cheap, fb := setup(t)
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: sized(1000, 1000), MaxCostUSD: 0.0001}, nil)
		be, ok := errors.AsType[*BudgetError](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, []string{"g", "fallback"}, be.Groups)
		require.InDelta(t, (1000*0.1+1000*0.1)/1e6, be.Estimate, 1e-12, "the cheapest bound found")
		code, retryable := WireCode(err)
		require.Equal(t, "budget_exceeded", code)
		require.False(t, retryable)
		require.Empty(t, out.Attempts)
		require.Zero(t, dear.Calls()+cheap.Calls()+fb.Calls())
	})
	t.Run("without max_tokens the model's output limit bounds the answer", func(t *testing.T) {
		t.Parallel()
		r, _, cheap, _ := setup(t)
		// cheap: 1000 in at $1 + 4000 out at $2 = 0.009 > 0.005: refused to
		// g, then the fallback (0.0005) answers.
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: sized(1000, 0), MaxCostUSD: 0.005}, nil)
		require.NoError(t, err)
		require.Equal(t, "fb", out.Deployment)
		require.Zero(t, cheap.Calls())
	})
	t.Run("an unknown price is never within a bound", func(t *testing.T) {
		t.Parallel()
		r, _, _, _ := setup(t)
		_, err := r.Execute(t.Context(), &Call{Group: "unpriced", Request: sized(10, 10), MaxCostUSD: 100}, nil)
		be, ok := errors.AsType[*BudgetError](err)
		require.True(t, ok, "%v", err)
		require.Zero(t, be.Estimate)
		require.Contains(t, be.Error(), "no deployment")
	})
	t.Run("no bound, no check", func(t *testing.T) {
		t.Parallel()
		r, dear, _, _ := setup(t)
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: sized(1000, 1000)}, nil)
		require.NoError(t, err)
		require.Equal(t, "dear", out.Deployment)
		require.Equal(t, int64(1), dear.Calls())
	})
}
