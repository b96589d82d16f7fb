package config

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

// Every key a registry entry names is a deployment key, and every
// provider, the presets included, is listed and buildable from its entry.
func TestProviderRegistry(t *testing.T) {
	t.Parallel()
	known := (&Deployment{}).providerKeys()
	for name, p := range registry {
		for _, k := range p.keys {
			_, ok := known[k]
			require.True(t, ok, "provider %s names unknown key %q", name, k)
		}
		require.NotNil(t, p.build, name)
	}
	names := ProviderNames()
	for name := range registry {
		require.Contains(t, names, name)
	}
	for _, preset := range openai.PresetNames() {
		require.Contains(t, names, preset)
		if _, own := registry[preset]; own {
			continue // azure: a preset with an entry of its own
		}
		p, ok := lookupProvider(preset)
		require.True(t, ok, preset)
		require.Equal(t, openAIKeys, p.keys, "%s is an OpenAI-compatible preset", preset)
	}
	require.True(t, slices.IsSorted(names))
	_, ok := lookupProvider("nope")
	require.False(t, ok)
}

// A deployment without api_key takes its key from the provider's variable.
func TestProviderKeyFromEnvironment(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("GEMINI_API_KEY", "")
	t.Setenv("GOOGLE_API_KEY", "g-second")
	d := &Deployment{Provider: ProviderOpenAI, Model: "gpt-4o"}
	require.Equal(t, "sk-from-env", d.apiKey(registry[ProviderOpenAI]))
	g := &Deployment{Provider: ProviderGemini, Model: "gemini-2.5-pro"}
	require.Equal(t, "g-second", g.apiKey(registry[ProviderGemini]), "the first variable that is set")
	require.Empty(t, g.missingKey())
	t.Setenv("GOOGLE_API_KEY", "")
	require.Contains(t, g.missingKey(), "GEMINI_API_KEY or GOOGLE_API_KEY")
	p, err := d.build(context.Background())
	require.NoError(t, err)
	require.Equal(t, "openai", p.(llm.Namer).ProviderName())
}
