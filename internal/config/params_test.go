package config

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// A deployment's params fill what a request leaves unset, never what it sets.
func TestDeploymentParamsAreDefaults(t *testing.T) {
	t.Parallel()
	m, err := ParseModels("models.yaml", []byte(`
groups:
  g:
    deployments:
      - {name: a, provider: mock, params: {temperature: 0.2, max_tokens: 20, stop: ["\n"], seed: 12}}
`))
	require.NoError(t, err)
	groups, err := m.Build(context.Background())
	require.NoError(t, err)
	p := groups[0].Deployments[0].Provider
	require.Equal(t, "mock", p.(llm.Namer).ProviderName(), "the router sees the same provider")
	r, err := policy.NewRouter(groups)
	require.NoError(t, err)
	hot := 0.9
	for _, req := range []*llm.Request{
		{Messages: []llm.Message{{Role: llm.RoleUser, Content: "defaults"}}},
		{Messages: []llm.Message{{Role: llm.RoleUser, Content: "own"}}, Temperature: &hot, MaxTokens: 5},
	} {
		_, err := r.Execute(context.Background(), &policy.Call{Group: "g", Request: req}, nil)
		require.NoError(t, err)
	}
	sent := p.(withParams).p.(*mock.Provider).Requests()
	require.Len(t, sent, 2)
	require.Equal(t, 0.2, *sent[0].Temperature)
	require.Equal(t, 20, sent[0].MaxTokens)
	require.Equal(t, []string{"\n"}, sent[0].Stop)
	require.EqualValues(t, 12, *sent[0].Seed)
	require.Equal(t, 0.9, *sent[1].Temperature)
	require.Equal(t, 5, sent[1].MaxTokens)
}
