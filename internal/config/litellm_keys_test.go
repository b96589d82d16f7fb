package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/policy"
)

// Every key is mapped, noted or refused: a refusal names the file, line,
// key and reason; a notice its line, key and reason; nothing else passes.
func TestLiteLLMRefusesWhatItCannotHonour(t *testing.T) {
	t.Parallel()
	const base = `
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: k}
`
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"an unknown provider", `
model_list:
  - model_name: m
    litellm_params: {model: replicate/llama-3, api_key: k}
`, `config.yaml:4: model_list[0].litellm_params.model: cannot be honoured: provider "replicate" is not one Switchyard serves`},
		{"a bare name of no known vendor", `
model_list:
  - model_name: m
    litellm_params: {model: my-model}
`, `config.yaml:4: model_list[0].litellm_params.model: cannot tell the provider of "my-model"`},
		{"an embedding model", base + `
  - model_name: e
    litellm_params: {model: openai/text-embedding-3-small, api_key: k}
    model_info: {mode: embedding}
`, `config.yaml:8: model_list[1].model_info.mode: cannot be honoured: mode "embedding": Switchyard serves chat completions only`},
		{"a parameter LiteLLM would pass on", `
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: k, frequency_penalty: 0.5}
`, `config.yaml:4: model_list[0].litellm_params.frequency_penalty: not a litellm_params key Switchyard knows`},
		{"an unknown routing strategy", base + `
router_settings: {routing_strategy: provider-budget-routing}
`, `config.yaml:6: router_settings.routing_strategy: cannot be honoured: routing strategy "provider-budget-routing"`},
		{"a response cache", base + `
litellm_settings:
  cache: true
`, `config.yaml:7: litellm_settings.cache: cannot be honoured: LiteLLM's cache is not translated: set a group's cache (cache: {ttl: 1h}) in a Switchyard model file`},
		{"an access rule", base + `
general_settings:
  allowed_routes: ["/chat/completions"]
`, `config.yaml:7: general_settings.allowed_routes: cannot be honoured: Switchyard's gateway authenticates`},
		{"a fallback to an unknown model", base + `
router_settings:
  fallbacks: [{"m": ["gpt-5"]}]
`, `config.yaml:7: router_settings.fallbacks[0].m[0]: no model_name "gpt-5" in model_list`},
		{"a fallback to a deployment id", `
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: k}
    model_info: {id: my-specific-model-id}
router_settings:
  fallbacks: [{"m": ["my-specific-model-id"]}]
`, `router_settings.fallbacks[0].m[0]: cannot be honoured: a fallback to one deployment`},
		{"an unknown exception class", base + `
router_settings:
  retry_policy: {"PermissionDeniedErrorRetries": 2}
`, `config.yaml:7: router_settings.retry_policy.PermissionDeniedErrorRetries: unknown exception class`},
		{"a typo at the top", base + `
router_setting: {num_retries: 2}
`, `config.yaml:6: router_setting: not a top-level key Switchyard knows`},
		{"an unset variable", `
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/LITELLM_TEST_UNSET}
`, `config.yaml:4: model_list[0].litellm_params.api_key: environment variable LITELLM_TEST_UNSET is not set`},
		{"azure without its endpoint", `
model_list:
  - model_name: m
    litellm_params: {model: azure/my-deployment, api_key: k}
`, `config.yaml:4: model_list[0].litellm_params.api_base: required for azure`},
		{"tag routing", base + `
router_settings: {enable_tag_filtering: true}
`, `router_settings.enable_tag_filtering: cannot be honoured: tag-based routing`},
		{"Claude on Vertex AI", `
model_list:
  - model_name: m
    litellm_params: {model: vertex_ai/claude-3-5-sonnet@20240620, vertex_project: p, vertex_location: us-east5}
`, `model_list[0].litellm_params.model: cannot be honoured: Claude on Vertex AI`},
		{"a model_name twice as an alias", base + `
router_settings:
  model_group_alias: {"m": "m"}
`, `router_settings.model_group_alias.m: alias "m" is also a model_name`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseModels("config.yaml", []byte(tt.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLiteLLMNoticesWhatHasNoMeaningHere(t *testing.T) {
	t.Parallel()
	m, err := ParseModels("config.yaml", []byte(`
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: k, region_name: eu}
    model_info: {access_groups: [beta]}
router_settings:
  redis_host: localhost
  enable_pre_call_checks: true
  enable_tag_filtering: false
litellm_settings:
  success_callback: ["langfuse"]
  set_verbose: true
general_settings:
  database_url: postgresql://x
  store_model_in_db: true
callback_settings: {otel: {message_logging: false}}
`))
	require.NoError(t, err)
	var got []string
	for _, n := range m.Notices() {
		require.NotZero(t, n.Line, n.Key)
		require.NotEmpty(t, n.Reason, n.Key)
		got = append(got, n.Key)
	}
	require.ElementsMatch(t, []string{
		"model_list[0].litellm_params.region_name", "model_list[0].model_info.access_groups",
		"router_settings.redis_host", "router_settings.enable_pre_call_checks",
		"litellm_settings.success_callback", "litellm_settings.set_verbose",
		"general_settings.database_url", "general_settings.store_model_in_db", "callback_settings",
	}, got, "enable_tag_filtering: false asks for nothing")
}

func TestLiteLLMAndNativeDoNotMix(t *testing.T) {
	t.Parallel()
	_, err := ParseModels("config.yaml", []byte(`
groups:
  g: {deployments: [{name: a, provider: mock}]}
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o}
`))
	require.ErrorContains(t, err, "has Switchyard's groups and LiteLLM's model_list")
}

// --print-config: the printed native file loads and builds the same groups,
// and prints no credential.
func TestLiteLLMPrintsAnEquivalentNativeFile(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
	t.Setenv("AZURE_API_KEY", "azure-from-env")
	for name, src := range map[string]string{
		"issue example":  issueExample,
		"load balancing": strings.ReplaceAll(loadBalancing, "huggingface/", "hosted_vllm/"),
		"everything": `
environment_variables: {LITELLM_TEST_BASE: "https://my-endpoint.openai.azure.com/"}
model_list:
  - model_name: gpt-4o
    litellm_params: {model: azure/gpt-4o-eu, api_base: os.environ/LITELLM_TEST_BASE, api_key: os.environ/AZURE_API_KEY, api_version: "2024-02-01", rpm: 6, order: 1}
    model_info: {base_model: azure/gpt-4o}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: sk-literal-secret, temperature: 0.2, max_tokens: 20, stop: ["\n"], seed: 1, extra_headers: {X-Team: "t1"}, cooldown_time: 0, weight: 2}
    model_info: {input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001, supports_function_calling: true}
  - model_name: test
    litellm_params: {model: gpt-3.5-turbo, mock_response: "This works!"}
router_settings:
  routing_strategy: usage-based-routing-v2
  retry_policy: {RateLimitErrorRetries: 3, AuthenticationErrorRetries: 0}
  allowed_fails_policy: {RateLimitErrorAllowedFails: 100, InternalServerErrorAllowedFails: 20}
  cooldown_time: 30
  default_fallbacks: [test]
  content_policy_fallbacks: [{"gpt-4o": ["test"]}]
  model_group_alias: {"gpt-4": {"model": "gpt-4o", "hidden": true}}
  max_fallbacks: 3
general_settings:
  master_key: sk-master-literal
`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
			printed, err := PrintModels(path)
			require.NoError(t, err)
			out := string(printed)
			for _, secret := range []string{"sk-literal-secret", "sk-master-literal", "sk-from-env", "azure-from-env", "https://my-endpoint"} {
				require.NotContains(t, out, secret)
			}
			// Literal credentials become variables the header names.
			for _, line := range strings.Split(out, "\n") {
				if v, ok := strings.CutPrefix(line, "#   SWITCHYARD_"); ok {
					name := "SWITCHYARD_" + v[:strings.Index(v, ":")]
					switch {
					case strings.Contains(v, "header X-Team"):
						t.Setenv(name, "t1")
					default:
						t.Setenv(name, "sk-literal-secret")
					}
				}
			}
			t.Setenv("LITELLM_TEST_BASE", "https://my-endpoint.openai.azure.com/")
			native := filepath.Join(t.TempDir(), "models.yaml")
			require.NoError(t, os.WriteFile(native, printed, 0o600))
			want, err := LoadModels(path)
			require.NoError(t, err)
			got, err := LoadModels(native)
			require.NoError(t, err, out)
			require.Equal(t, want.GroupNames(), got.GroupNames())
			// The same names resolve to the same groups; the native file
			// lists the group names a LiteLLM file's model names were
			// mapped to, which the LiteLLM file itself hides.
			require.Equal(t, resolved(want), resolved(got))
			require.Equal(t, want.APIKeys, got.APIKeys)
			wg, err := want.Build(context.Background())
			require.NoError(t, err)
			gg, err := got.Build(context.Background())
			require.NoError(t, err)
			require.Equal(t, shape(wg), shape(gg))
		})
	}
}

// shape is what a built group is, without its provider instances.
func shape(groups []policy.Group) []policy.Group {
	out := make([]policy.Group, len(groups))
	for i, g := range groups {
		g.Deployments = append([]policy.Deployment(nil), g.Deployments...)
		for j := range g.Deployments {
			g.Deployments[j].Provider = nil
		}
		out[i] = g
	}
	return out
}

func resolved(m *Models) map[string]string {
	out := map[string]string{}
	for _, n := range m.ModelNames() {
		out[n.Name] = n.Group
	}
	return out
}

// The standalone gateway reads a LiteLLM file as the worker does, without
// the providers' secrets: its model names, aliases and master key.
func TestLiteLLMFileForTheGateway(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/gpt-3.5-turbo, api_key: os.environ/LITELLM_GATEWAY_TEST_UNSET}
router_settings:
  model_group_alias: {"gpt-3.5": "gpt-3.5-turbo"}
general_settings:
  master_key: sk-gateway-master
`), 0o600))
	m, err := LoadGatewayModels(path)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"gpt-3-5-turbo": "gpt-3-5-turbo", "gpt-3.5-turbo": "gpt-3-5-turbo", "gpt-3.5": "gpt-3-5-turbo"}, resolved(m))
	require.Len(t, m.APIKeys, 1)
	require.True(t, m.APIKeys[0].Admin)
}
