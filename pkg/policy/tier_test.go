package policy

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// Priority is a tier for every strategy: a weighted group never sends to a
// lower tier while a deployment of the upper one is available.
func TestPriorityIsATierForEveryStrategy(t *testing.T) {
	t.Parallel()
	for _, s := range []Strategy{StrategyWeighted, StrategyLeastBusy, StrategyLowestLatency, StrategyUsageBased, StrategyPriority} {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			a, b, c := mock.New(mock.Config{}), mock.New(mock.Config{}), mock.New(mock.Config{})
			o := fast()
			o.Strategy = s
			o.Breaker.Failures = 1
			r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
				dep("a", a, DeploymentOptions{Weight: 1}),
				dep("c", c, DeploymentOptions{Weight: 100, Priority: 1}),
				dep("b", b, DeploymentOptions{Weight: 1}),
			}})
			for range 50 {
				out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
				require.NoError(t, err)
				require.NotEqual(t, "c", out.Deployment)
			}
			require.EqualValues(t, 0, c.Calls())
		})
	}
	t.Run("lower tier once the upper one is out", func(t *testing.T) {
		t.Parallel()
		bad := mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}
		a, b, c := mock.New(bad), mock.New(bad), mock.New(mock.Config{})
		o := fast()
		o.Strategy = StrategyWeighted
		o.Breaker.Failures = 1
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
			dep("a", a, DeploymentOptions{}), dep("b", b, DeploymentOptions{}), dep("c", c, DeploymentOptions{Priority: 1}),
		}})
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.Equal(t, "c", out.Deployment)
		require.EqualValues(t, 1, a.Calls())
		require.EqualValues(t, 1, b.Calls())
	})
}

// A seeded source makes the weighted shuffle repeatable: the same seed picks
// the same deployments in the same order, and the picks follow the weights.
func TestWithRandMakesTheShuffleRepeatable(t *testing.T) {
	t.Parallel()
	picks := func(seed uint64) []string {
		a, b := mock.New(mock.Config{}), mock.New(mock.Config{})
		o := fast()
		o.Strategy = StrategyWeighted
		r, err := NewRouter([]Group{{Name: "g", Options: o, Deployments: []Deployment{
			dep("a", a, DeploymentOptions{Weight: 3}), dep("b", b, DeploymentOptions{Weight: 1}),
		}}}, WithRand(rand.NewPCG(seed, seed)))
		require.NoError(t, err)
		var out []string
		for range 400 {
			res, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.NoError(t, err)
			out = append(out, res.Deployment)
		}
		return out
	}
	first := picks(7)
	require.Equal(t, first, picks(7))
	require.NotEqual(t, first, picks(8))
	n := 0
	for _, p := range first {
		if p == "a" {
			n++
		}
	}
	// 400 draws at p = 3/4: mean 300, sd 8.7; the seed is fixed, so this
	// is exact, and the bound (4 sd) holds for any fair shuffle.
	require.InDelta(t, 300, n, 35)
}

// lowest_cost tries the cheapest deployment first: the catalogue's price,
// a deployment's override, and an unknown price last.
func TestLowestCost(t *testing.T) {
	t.Parallel()
	cheap, dear, unknown := mock.New(mock.Config{}), mock.New(mock.Config{}), mock.New(mock.Config{})
	price := func(v float64) *float64 { return &v }
	o := fast()
	o.Strategy = StrategyCost
	o.Breaker.Failures = 1
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
		{Name: "unknown", Model: "mock-unknown", Provider: unknown},
		{Name: "dear", Model: "gpt-4o", Provider: dear}, // priced by the catalogue
		{Name: "cheap", Model: "gpt-4o", Provider: cheap, Options: DeploymentOptions{InputCostPerMTok: price(0.1), OutputCostPerMTok: price(0.2)}},
	}})
	for range 5 {
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.Equal(t, "cheap", out.Deployment)
	}
	require.Zero(t, dear.Calls()+unknown.Calls())
}
