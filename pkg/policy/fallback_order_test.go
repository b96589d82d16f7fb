package policy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// groupsOf builds one single-deployment group per name, failing unless ok,
// with the given fallbacks.
func groupsOf(t *testing.T, ok string, fallbacks map[string][]string, maxFallbacks int) (*Router, map[string]*mock.Provider) {
	t.Helper()
	ps := map[string]*mock.Provider{}
	var groups []Group
	for _, name := range []string{"a", "b", "c", "d"} {
		cfg := mock.Config{ErrorRate: map[string]float64{"unavailable": 1}}
		if name == ok {
			cfg = mock.Config{}
		}
		ps[name] = mock.New(cfg)
		o := fast()
		o.Retry.MaxRetries = -1
		o.Fallbacks = fallbacks[name]
		o.MaxFallbacks = maxFallbacks
		groups = append(groups, Group{Name: name, Options: o, Deployments: []Deployment{dep(name, ps[name], DeploymentOptions{})}})
	}
	return newRouter(t, groups...), ps
}

func groupsTried(out *Outcome) []string {
	var gs []string
	for _, a := range out.Attempts {
		gs = append(gs, a.Group)
	}
	return gs
}

// a: [b, c] and b: [d]: when b and d fail, a's next fallback, c, is tried
// (LiteLLM walks a's list, each fallback with its own fallbacks first).
func TestFallbacksDepthFirst(t *testing.T) {
	t.Parallel()
	r, _ := groupsOf(t, "c", map[string][]string{"a": {"b", "c"}, "b": {"d"}}, 0)
	out, err := r.Execute(t.Context(), &Call{Group: "a", Request: req("x")}, nil)
	require.NoError(t, err)
	require.Equal(t, "c", out.Group)
	require.Equal(t, []string{"a", "b", "d", "c"}, groupsTried(out))
	require.Equal(t, 3, out.Fallbacks)
}

// Fallback lists that point back (a: [b], b: [a, c]) never try a group twice.
func TestFallbacksNeverRevisit(t *testing.T) {
	t.Parallel()
	r, _ := groupsOf(t, "c", map[string][]string{"a": {"b"}, "b": {"a", "c"}}, 0)
	out, err := r.Execute(t.Context(), &Call{Group: "a", Request: req("x")}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, groupsTried(out))
}

// max_fallbacks bounds the groups a request falls back to.
func TestMaxFallbacks(t *testing.T) {
	t.Parallel()
	r, ps := groupsOf(t, "d", map[string][]string{"a": {"b", "c", "d"}}, 2)
	out, err := r.Execute(t.Context(), &Call{Group: "a", Request: req("x")}, nil)
	require.Error(t, err)
	require.Equal(t, []string{"a", "b", "c"}, groupsTried(out))
	require.Zero(t, ps["d"].Calls())
}
