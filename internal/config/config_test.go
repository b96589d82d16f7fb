package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
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
	g, ok := m.Resolve("gpt-4o")
	require.True(t, ok)
	require.Equal(t, "chat", g)
	acme, err := m.BuildTenant(context.Background(), "acme", groups)
	require.NoError(t, err)
	require.Equal(t, "openai-4o@acme", acme[0].Deployments[0].Name, "the tenant's keyed deployment has its own state")
	require.Equal(t, groups[0].Deployments[1].Provider, acme[0].Deployments[1].Provider, "the others are shared")
}

func TestGroupCacheLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
groups:
  g:
    cache: {ttl: 90m, any_temperature: true}
    deployments:
      - {name: a, provider: mock}
`), 0o600))
	m, err := LoadModels(path)
	require.NoError(t, err)
	require.Equal(t, &policy.CacheOptions{TTL: 90 * time.Minute, AnyTemperature: true}, m.Groups["g"].Cache)
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
		{"hedge delay with a percentile", `
groups:
  g:
    hedge: {delay: 1s, percentile: 90}
    deployments:
      - name: a
        provider: mock
`, []string{"models.yaml:4", "groups.g.hedge.delay: a fixed delay excludes percentile and min_delay"}},
		{"unknown key", `
groups:
  g:
    deployments:
      - name: a
        provider: mock
        tokenz: 3
`, []string{"models.yaml:7", `groups.g.deployments[0]: unknown key "tokenz" (valid keys: name, provider, model,`}},
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
		{"cache without a ttl", `
groups:
  g:
    cache: {any_temperature: true}
    deployments:
      - {name: a, provider: mock}
`, []string{"groups.g", "cache.ttl"}},
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
		{"tenant name in capitals", `
groups:
  g:
    deployments:
      - {name: a, provider: mock}
tenants:
  Acme:
    budget: {tokens: 10}
`, []string{"tenants.Acme", "exactly"}},
		{"tenant named like a rule", `
groups:
  g:
    deployments:
      - {name: a, provider: mock}
tenants:
  deny:
    budget: {tokens: 10}
`, []string{"tenants.deny", "not a tenant name"}},
		{"unknown_tenants names no tenant", `
unknown_tenants: initech
groups:
  g:
    deployments:
      - {name: a, provider: mock}
tenants:
  acme:
    budget: {tokens: 10}
`, []string{"unknown_tenants", `"initech"`}},
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

func TestUnknownTenants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml   string
		tenant string
		deny   bool
	}{
		{"", "", false}, // no tenants: the anonymous tenant
		{"tenants: {acme: {budget: {tokens: 1}}}", "", true}, // tenants: deny unless said
		{"unknown_tenants: anonymous\ntenants: {acme: {budget: {tokens: 1}}}", "", false},
		{"unknown_tenants: deny", "", true},
		{"unknown_tenants: acme\ntenants: {acme: {budget: {tokens: 1}}}", "acme", false},
	} {
		m, err := ParseModels("m.yaml", []byte("groups: {g: {deployments: [{name: a, provider: mock}]}}\n"+tc.yaml))
		require.NoError(t, err, tc.yaml)
		tenant, deny := m.AnonymousJobs()
		require.Equal(t, tc.tenant, tenant, tc.yaml)
		require.Equal(t, tc.deny, deny, tc.yaml)
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

// TestBedrockDeployment proves a bedrock deployment parses, builds an
// Anthropic client that SigV4-signs for the configured region with the
// configured (or, failing that, the AWS_* environment's) credentials.
func TestBedrockDeployment(t *testing.T) {
	var (
		mu   sync.Mutex
		auth []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization")+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"message":"You don't have access to the model with the specified model ID."}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("BR_KEY_ID", "AKIAYAMLEXAMPLE")
	t.Setenv("BR_SECRET", "yaml-secret-SECRET")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret-SECRET")
	t.Setenv("AWS_SESSION_TOKEN", "env-session-SECRET")
	m, err := ParseModels("m.yaml", []byte(`
groups:
  claude:
    deployments:
      - name: bedrock-yaml
        provider: bedrock
        model: anthropic.claude-3-5-sonnet-20241022-v2:0
        region: eu-central-1
        aws_access_key_id: ${BR_KEY_ID}
        aws_secret_access_key: ${BR_SECRET}
        base_url: `+srv.URL+`
        max_tokens: 1024
      - name: bedrock-env
        provider: bedrock
        model: us.anthropic.claude-sonnet-4-20250514-v1:0
        region: us-west-2
        base_url: `+srv.URL+`
`))
	require.NoError(t, err)
	d := m.Groups["claude"].Deployments[0]
	require.Equal(t, "yaml-secret-SECRET", d.AWSSecretAccessKey.Reveal())
	require.NotContains(t, fmt.Sprintf("%v %+v", d, d), "SECRET")
	groups, err := m.Build(context.Background())
	require.NoError(t, err)
	require.Len(t, groups[0].Deployments, 2)

	wantCred := []string{"AKIAYAMLEXAMPLE/", "AKIAENVEXAMPLE/"}
	wantRegion := []string{"/eu-central-1/bedrock/aws4_request", "/us-west-2/bedrock/aws4_request"}
	for i, dep := range groups[0].Deployments {
		_, err := dep.Provider.Stream(t.Context(), &llm.Request{Model: dep.Model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		require.ErrorIs(t, err, llm.ErrAuth, "the server's AccessDeniedException")
		require.NotContains(t, err.Error(), "SECRET")
		mu.Lock()
		got := auth[len(auth)-1]
		mu.Unlock()
		require.True(t, strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential="+wantCred[i]), got)
		require.Contains(t, got, wantRegion[i])
		require.True(t, strings.HasSuffix(got, "/model/"+dep.Model+"/invoke-with-response-stream"), got)
	}

	for name, tc := range map[string]struct{ yaml, want string }{
		"no region":         {"region: ''", "deployments[0].region: required for bedrock"},
		"api_key refused":   {"region: us-east-1\n        api_key: x", `deployments[0].api_key: not used by provider "bedrock"`},
		"secret without id": {"region: us-east-1\n        aws_secret_access_key: x", "deployments[0].aws_access_key_id: required"},
	} {
		_, err := ParseModels("m.yaml", []byte(`
groups:
  g:
    deployments:
      - name: b
        provider: bedrock
        model: anthropic.claude-3-haiku-20240307-v1:0
        `+tc.yaml+"\n"))
		require.ErrorContains(t, err, tc.want, name)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                   "nats://127.0.0.1:4222",
		"nats://u:p4ss@a:4222,tls://tok3n@b:4222": "nats://u:[redacted]@a:4222,tls://[redacted]@b:4222",
		"nats://u:p%40ss@a:4222":                  "nats://u:[redacted]@a:4222",
		"a:4222, nats://x:y@b":                    "a:4222,nats://x:[redacted]@b",
		"nats://u:p ss@a%zz":                      "[redacted]@a%zz",
		"":                                        "",
	} {
		require.Equal(t, want, RedactURL(in), in)
	}
	require.ElementsMatch(t, []string{"p4ss", "tok3n", "pw", "tk"},
		Env{NATSURL: "nats://u:p4ss@a,tls://tok3n@b", NATSPassword: "pw", NATSToken: "tk"}.Secrets())
}
