package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExampleModelFileLoads(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "ACME_OPENAI_KEY"} {
		t.Setenv(k, "sk-test-"+strings.ToLower(k))
	}
	m, err := LoadModels("../../deployments/models.example.yaml")
	require.NoError(t, err)
	require.Equal(t, []string{"chat", "cheap", "demo", "local", "long"}, m.GroupNames())
	require.Equal(t, "sk-test-openai_api_key", m.Groups["chat"].Deployments[0].APIKey.Reveal())
	groups, err := m.Build(context.Background())
	require.NoError(t, err)
	require.Len(t, groups, 5)
	require.Equal(t, []string{"acme", "trial"}, m.TenantNames())
	acme, err := m.BuildTenant(context.Background(), "acme", groups)
	require.NoError(t, err)
	require.Equal(t, "openai-4o@acme", acme[0].Deployments[0].Name, "the tenant's keyed deployment has its own state")
	require.Equal(t, groups[0].Deployments[1].Provider, acme[0].Deployments[1].Provider, "the others are shared")
}

func TestDemoModels(t *testing.T) {
	m, err := LoadModels("")
	require.NoError(t, err)
	require.Equal(t, []string{"demo"}, m.GroupNames())
	_, err = m.Build(context.Background())
	require.NoError(t, err)
}

func TestModelFileErrorsNameFileLineAndKey(t *testing.T) {
	t.Setenv("SET_KEY", "x")
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", `
groups:
  g:
    deployments:
      - name: a
        provider: mock
        tokenz: 3
`, []string{"models.yaml", "[7:9]", `unknown field "tokenz"`}},
		{"unknown provider", `
groups:
  g:
    deployments:
      - name: a
        provider: opnai
        model: gpt-4o
`, []string{"models.yaml:6", "groups.g.deployments[0].provider", `unknown provider "opnai"`}},
		{"key of another provider", `
groups:
  g:
    deployments:
      - name: a
        provider: anthropic
        model: claude-sonnet-4-5
        api_key: ${SET_KEY}
        endpoint: https://x
`, []string{"groups.g.deployments[0].endpoint", `not used by provider "anthropic"`}},
		{"unset variable", `
groups:
  g:
    deployments:
      - name: a
        provider: openai
        model: gpt-4o
        api_key: ${SURELY_NOT_SET_VAR}
`, []string{"models.yaml:8", "api_key", "SURELY_NOT_SET_VAR is not set"}},
		{"bad group name", `
groups:
  Bad.Name:
    deployments:
      - {name: a, provider: mock}
`, []string{"must be one token"}},
		{"undefined fallback", `
groups:
  g:
    fallbacks: [nowhere]
    deployments:
      - {name: a, provider: mock}
`, []string{`fallback group "nowhere" is not defined`}},
		{"bad policy value", `
groups:
  g:
    strategy: fastest
    deployments:
      - {name: a, provider: mock}
`, []string{"groups.g", "strategy"}},
		{"duplicate deployment", `
groups:
  g:
    deployments:
      - {name: a, provider: mock}
      - {name: a, provider: mock}
`, []string{"models.yaml:6", `"a" appears twice`}},
		{"bad mock option", `
groups:
  g:
    deployments:
      - {name: a, provider: mock, mock: {error_rate: {exploded: 0.5}}}
`, []string{"deployments[0].mock"}},
		{"no groups", `groups: {}`, []string{"at least one group"}},
		{"tenant key for an unknown deployment", `
groups:
  g:
    deployments:
      - {name: a, provider: mock}
tenants:
  acme:
    keys: {b: "${SET_KEY}"}
`, []string{"tenants.acme.keys.b", `no deployment is named "b"`}},
		{"empty budget", `
groups:
  g:
    deployments:
      - {name: a, provider: mock}
tenants:
  acme:
    budget: {window: 1h}
`, []string{"tenants.acme.budget", "set tokens, cost_usd or both"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseModels("models.yaml", []byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const key = "sk-live-VERY-SECRET-123"
	t.Setenv("THE_KEY", key)
	m, err := ParseModels("m.yaml", []byte(`
groups:
  g:
    deployments:
      - name: a
        provider: openai
        model: gpt-4o
        api_key: ${THE_KEY}
        headers: {X-Api-Token: "${THE_KEY}"}
`))
	require.NoError(t, err)
	d := m.Groups["g"].Deployments[0]
	require.Equal(t, key, d.APIKey.Reveal())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("deployment", "d", d, "key", d.APIKey)
	j, err := json.Marshal(d)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", d, d, d, d.APIKey), buf.String(), string(j)} {
		require.NotContains(t, s, key)
	}
}

func TestEnvDefaultsAndValidation(t *testing.T) {
	e, err := LoadEnv()
	require.NoError(t, err)
	require.Equal(t, 128, e.Concurrency)
	require.Equal(t, "127.0.0.1:4222", e.EmbeddedAddr)
	t.Setenv("SWITCHYARD_CONCURRENCY", "0")
	t.Setenv("LOG_FORMAT", "xml")
	_, err = LoadEnv()
	require.ErrorContains(t, err, "SWITCHYARD_CONCURRENCY")
	require.ErrorContains(t, err, "LOG_FORMAT")
	t.Setenv("SWITCHYARD_CONCURRENCY", "lots")
	_, err = LoadEnv()
	require.ErrorContains(t, err, "SWITCHYARD_CONCURRENCY")
	_ = os.Getenv
}
