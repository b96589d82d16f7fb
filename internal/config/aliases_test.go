package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAliasesResolveToGroups(t *testing.T) {
	t.Parallel()
	m, err := ParseModels("models.yaml", []byte(`
groups:
  chat:
    deployments: [{name: a, provider: mock}]
aliases:
  gpt-4o: chat
  openai/gpt-4o: {group: chat, hidden: true}
`))
	require.NoError(t, err)
	for _, name := range []string{"chat", "gpt-4o", "openai/gpt-4o"} {
		g, ok := m.Resolve(name)
		require.True(t, ok, name)
		require.Equal(t, "chat", g)
	}
	_, ok := m.Resolve("gpt-4")
	require.False(t, ok)
	require.Equal(t, []ModelName{
		{Name: "chat", Group: "chat"},
		{Name: "gpt-4o", Group: "chat"},
		{Name: "openai/gpt-4o", Group: "chat", Hidden: true},
	}, m.ModelNames())
}

func TestAliasErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	_, err := ParseModels("models.yaml", []byte(`
groups:
  chat:
    deployments: [{name: a, provider: mock}]
  other:
    deployments: [{name: b, provider: mock}]
aliases:
  gpt-3.5-turbo: chta
  other: chat
`))
	require.Error(t, err)
	require.Contains(t, err.Error(), `models.yaml:8: aliases.'gpt-3.5-turbo': alias "gpt-3.5-turbo" points to "chta", which is not a group`)
	require.Contains(t, err.Error(), `models.yaml:9: aliases.other: alias "other" is also the name of a group`)
}
