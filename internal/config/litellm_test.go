package config

// LiteLLM proxy configs, loaded as model files and run through the router
// against local replays of the vendors' wire formats (internal/vendortest).
//
// The configs are LiteLLM's own documented examples, cited at each test:
//   [configs]     https://docs.litellm.ai/docs/proxy/configs
//   [reliability] https://docs.litellm.ai/docs/proxy/reliability
//   [routing]     https://docs.litellm.ai/docs/routing
//   [settings]    https://docs.litellm.ai/docs/proxy/config_settings
// LiteLLM's behaviour the tests hold Switchyard to is its router's:
// litellm/router.py (async_function_with_retries, should_retry_this_error,
// _time_to_sleep_before_retry), router_utils/cooldown_handlers.py,
// router_utils/fallback_event_handlers.py, router_strategy/simple_shuffle.py.
// Where an example names a provider Switchyard does not serve, the test says
// so and uses the nearest one (the file is otherwise unchanged); examples
// indented with tabs, which YAML forbids, are re-indented.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

func parseLiteLLMFile(t *testing.T, src string) *Models {
	t.Helper()
	m, err := ParseModels("config.yaml", []byte(src))
	require.NoError(t, err)
	return m
}

// testClock is a settable clock for policy.WithClock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func routerOf(t *testing.T, m *Models, opts ...policy.Option) *policy.Router {
	t.Helper()
	groups, err := m.Build(context.Background())
	require.NoError(t, err)
	r, err := policy.NewRouter(groups, opts...)
	require.NoError(t, err)
	return r
}

// ask sends a prompt to the group a client's model name resolves to.
func ask(t *testing.T, m *Models, r *policy.Router, model, prompt string) (*policy.Outcome, error) {
	t.Helper()
	g, ok := m.Resolve(model)
	require.True(t, ok, "model %q resolves", model)
	return r.Execute(t.Context(), &policy.Call{Group: g, Request: &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}}}}, nil)
}

func attemptsOf(out *policy.Outcome) []string {
	var s []string
	for _, a := range out.Attempts {
		s = append(s, a.Group+"/"+a.Deployment)
	}
	return s
}

// The LiteLLM setup this project started from (issue #15), as a config
// file: priority 1 before 2 before 3, the context-window fallback to the
// larger-context group before the call, cooldown after allowed_fails, and
// the local Ollama group as the last resort when the hosted vendors are down.
const issueExample = `
model_list:
  - model_name: primary-gpt4
    litellm_params: {model: gpt-4-turbo-preview, api_key: os.environ/OPENAI_API_KEY, timeout: 600, max_retries: 2}
    model_info: {priority: 1, max_tokens: 128000, supports_vision: true}
  - model_name: primary-claude
    litellm_params: {model: claude-3-5-sonnet-20241022, api_key: os.environ/ANTHROPIC_API_KEY, timeout: 600, max_retries: 2}
    model_info: {priority: 1, max_tokens: 200000, supports_vision: true}
  - model_name: fallback-local
    litellm_params: {model: ollama/llama3.1:8b, api_base: "http://localhost:11434", timeout: 300}
    model_info: {priority: 2, max_tokens: 8192, supports_vision: false}
  - model_name: cost-effective
    litellm_params: {model: gpt-3.5-turbo, api_key: os.environ/OPENAI_API_KEY, timeout: 300}
    model_info: {priority: 3, max_tokens: 16385}
router_settings:
  routing_strategy: priority
  retry_after: 10
  num_retries: 2
  timeout: 600
  allowed_fails: 2
  fallbacks:
    - primary-gpt4: [primary-claude, fallback-local, cost-effective]
    - primary-claude: [primary-gpt4, fallback-local, cost-effective]
  context_window_fallbacks:
    - primary-gpt4: [primary-claude]
`

// issueVendors starts the vendors of issueExample and points the file at
// them: OpenAI and Anthropic through the variables LiteLLM reads their base
// URLs from, Ollama by its api_base (the only change to the file).
func issueVendors(t *testing.T) (src string, openai, anthropic, ollama *vendortest.Server) {
	openai, anthropic, ollama = vendortest.OpenAI(t, "openai"), vendortest.Anthropic(t, "anthropic"), vendortest.OpenAI(t, "ollama")
	t.Setenv("OPENAI_API_KEY", "sk-test-openai")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-test")
	t.Setenv("OPENAI_BASE_URL", openai.URL)
	t.Setenv("ANTHROPIC_API_BASE", anthropic.URL)
	src = strings.Replace(issueExample, "http://localhost:11434", strings.TrimSuffix(ollama.URL, "/v1"), 1)
	return src, openai, anthropic, ollama
}

func TestLiteLLMIssueExampleLoads(t *testing.T) {
	src, _, _, _ := issueVendors(t)
	m := parseLiteLLMFile(t, src)
	require.Equal(t, []string{"cost-effective", "fallback-local", "primary-claude", "primary-gpt4"}, m.GroupNames())
	gpt4 := m.Groups["primary-gpt4"]
	require.Equal(t, policy.StrategyPriority, gpt4.Strategy)
	require.Equal(t, []string{"primary-claude", "fallback-local", "cost-effective"}, gpt4.Fallbacks)
	require.Equal(t, []string{"primary-claude"}, gpt4.ContextWindowFallbacks)
	require.Equal(t, 2, gpt4.Retry.MaxRetries)
	require.Equal(t, 10*time.Second, gpt4.Retry.Backoff.Initial, "retry_after: no retry to the same deployment sooner")
	require.Equal(t, -1.0, gpt4.Retry.Jitter)
	require.Equal(t, 2, *gpt4.Cooldown.AllowedFails)
	require.Equal(t, 600*time.Second, gpt4.Timeouts.TTFT)
	d := gpt4.Deployments[0]
	require.Equal(t, "openai", d.Provider, "a bare OpenAI model name")
	require.Equal(t, 128000, d.ContextWindow, "model_info.max_tokens, the window")
	require.Equal(t, 1, d.Priority)
	require.True(t, *d.SupportsVision)
	require.Equal(t, "anthropic", m.Groups["primary-claude"].Deployments[0].Provider, "claude-* is Anthropic's, as LiteLLM infers")
	local := m.Groups["fallback-local"].Deployments[0]
	require.Equal(t, "ollama", local.Provider)
	require.True(t, strings.HasSuffix(local.BaseURL, "/v1"), "Ollama's OpenAI-compatible API: %s", local.BaseURL)
	require.Equal(t, 3, m.Groups["cost-effective"].Deployments[0].Priority)
	var noted []string
	for _, n := range m.Notices() {
		noted = append(noted, n.Key)
	}
	require.Equal(t, []string{
		"model_list[0].litellm_params.max_retries",
		"model_list[1].litellm_params.max_retries",
		"router_settings.routing_strategy", // priority is ours
	}, noted)
	require.Equal(t, 16, m.Notices()[2].Line)
}

func TestLiteLLMIssueExampleBehaves(t *testing.T) {
	src, openai, anthropic, ollama := issueVendors(t)
	m := parseLiteLLMFile(t, src)
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := routerOf(t, m, policy.WithClock(clk.now))

	out, err := ask(t, m, r, "primary-gpt4", "hello")
	require.NoError(t, err)
	require.Equal(t, "answer from openai", out.Text)
	require.Equal(t, 1, openai.CallsFor("gpt-4-turbo-preview"))

	// A prompt over gpt-4-turbo's 128k window goes to the larger-context
	// group before any call (the estimate: about 4 characters a token).
	long := strings.Repeat("lorem ipsum ", 50_000) // ~150k tokens
	t0 := time.Now()
	out, err = ask(t, m, r, "primary-gpt4", long)
	t.Log("long", time.Since(t0))
	require.NoError(t, err)
	require.Equal(t, "primary-claude", out.Group)
	require.Equal(t, 1, openai.CallsFor("gpt-4-turbo-preview"), "not sent to the model it cannot fit")
	require.Equal(t, 1, anthropic.Calls())

	// OpenAI's key is revoked: its groups fail over in the order of the
	// fallbacks, priority 1 before 2 before 3; with Anthropic down too, the
	// local Ollama group answers.
	openai.Always(vendortest.OpenAIAuth)
	anthropic.Always(vendortest.AnthropicAuth)
	out, err = ask(t, m, r, "primary-gpt4", "hello")
	require.NoError(t, err)
	require.Equal(t, "fallback-local", out.Group)
	require.Equal(t, []string{
		"primary-gpt4/gpt-4-turbo-preview",
		"primary-claude/claude-3-5-sonnet-20241022",
		"fallback-local/ollama/llama3.1:8b",
	}, attemptsOf(out))

	// allowed_fails: 2 — the third failure of a deployment cools it down
	// (LiteLLM: more than allowed_fails), for cooldown_time (5 s, LiteLLM's
	// default): the next request does not call it.
	for range 2 {
		_, err = ask(t, m, r, "primary-gpt4", "hello")
		require.NoError(t, err)
	}
	before := openai.CallsFor("gpt-4-turbo-preview")
	out, err = ask(t, m, r, "primary-gpt4", "hello")
	require.NoError(t, err)
	require.Equal(t, before, openai.CallsFor("gpt-4-turbo-preview"), "cooled down")
	require.Equal(t, []string{"fallback-local/ollama/llama3.1:8b"}, attemptsOf(out), "both hosted groups are cooling down")
	clk.advance(6 * time.Second)
	_, err = ask(t, m, r, "primary-gpt4", "hello")
	require.NoError(t, err)
	require.Equal(t, before+1, openai.CallsFor("gpt-4-turbo-preview"), "back after cooldown_time")

	// Ollama down too: the last of the list, cost-effective, is OpenAI's
	// gpt-3.5-turbo, whose key works again.
	// (retry_after: 10 would make fallback-local wait 10 s before its retry;
	// the request's deadline is sooner, so the router moves on at once.)
	ollama.Always(vendortest.OpenAIUnavailable)
	openai.ForModel("gpt-3.5-turbo", vendortest.Reply{})
	clk.advance(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	g, _ := m.Resolve("primary-gpt4")
	out, err = r.Execute(ctx, &policy.Call{Group: g, Request: &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hello"}}}}, nil)
	require.NoError(t, err)
	require.Equal(t, "cost-effective", out.Group)
	require.Equal(t, "fallback-local/ollama/llama3.1:8b", attemptsOf(out)[2])
}

// model_name -> group: one NATS token, the original name an alias.
func TestLiteLLMModelNamesBecomeGroups(t *testing.T) {
	t.Parallel()
	m := parseLiteLLMFile(t, `
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/gpt-3.5-turbo, api_key: sk-1}
  - model_name: openai/gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: sk-1}
  - model_name: Claude-3
    litellm_params: {model: anthropic/claude-3-opus-20240229, api_key: sk-2}
  - model_name: gpt-3-5-turbo
    litellm_params: {model: openai/gpt-3.5-turbo-0125, api_key: sk-1}
`)
	require.Equal(t, []string{"claude-3", "gpt-3-5-turbo", "gpt-3-5-turbo-2", "openai-gpt-4o"}, m.GroupNames())
	for name, group := range map[string]string{
		"gpt-3.5-turbo": "gpt-3-5-turbo-2", // gpt-3-5-turbo is another model_name's own
		"gpt-3-5-turbo": "gpt-3-5-turbo",
		"openai/gpt-4o": "openai-gpt-4o",
		"Claude-3":      "claude-3",
	} {
		g, ok := m.Resolve(name)
		require.True(t, ok, name)
		require.Equal(t, group, g, name)
	}
}

// [configs] Quick Start: every model_name routes to its deployments, two
// azure ones make one group; the "*" catch-all is refused, naming its line.
func TestLiteLLMDocsQuickStart(t *testing.T) {
	const quickStart = `
model_list:
  - model_name: gpt-4o ### RECEIVED MODEL NAME ###
    litellm_params: # all params accepted by litellm.completion() - https://docs.litellm.ai/docs/completion/input
      model: azure/gpt-4o-eu ### MODEL NAME sent to ` + "`litellm.completion()`" + ` ###
      api_base: https://my-endpoint-europe-berri-992.openai.azure.com/
      api_key: "os.environ/AZURE_API_KEY_EU" # does os.getenv("AZURE_API_KEY_EU")
      rpm: 6      # [OPTIONAL] Rate limit for this deployment: in requests per minute (rpm)
  - model_name: bedrock-claude-v1 
    litellm_params:
      model: bedrock/anthropic.claude-instant-v1
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-ca
      api_base: https://my-endpoint-canada-berri992.openai.azure.com/
      api_key: "os.environ/AZURE_API_KEY_CA"
      rpm: 6
  - model_name: anthropic-claude
    litellm_params: 
      model: bedrock/anthropic.claude-instant-v1
      ### [OPTIONAL] SET AWS REGION ###
      aws_region_name: us-east-1
  - model_name: vllm-models
    litellm_params:
      model: openai/facebook/opt-125m # the ` + "`openai/`" + ` prefix tells litellm it's openai compatible
      api_base: http://0.0.0.0:4000/v1
      api_key: none
      rpm: 1440
    model_info: 
      version: 2
  
  # Use this if you want to make requests to ` + "`claude-3-haiku-20240307`,`claude-3-opus-20240229`,`claude-2.1`" + ` without defining them on the config.yaml
  # Default models
  # Works for ALL Providers and needs the default provider credentials in .env
  - model_name: "*" 
    litellm_params:
      model: "*"

litellm_settings: # module level litellm settings - https://github.com/BerriAI/litellm/blob/main/litellm/__init__.py
  drop_params: True
  success_callback: ["langfuse"] # OPTIONAL - if you want to start sending LLM Logs to Langfuse. Make sure to set ` + "`LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY`" + ` in your env

general_settings: 
  master_key: sk-1234 # [OPTIONAL] Only use this if you to require all calls to contain this key (Authorization: Bearer sk-1234)
  alerting: ["slack"] # [OPTIONAL] If you want Slack Alerts for Hanging LLM requests, Slow llm responses, Budget Alerts. Make sure to set ` + "`SLACK_WEBHOOK_URL`" + ` in your env
`
	t.Setenv("AZURE_API_KEY_EU", "eu-key")
	t.Setenv("AZURE_API_KEY_CA", "ca-key")
	t.Setenv("AWS_REGION", "us-west-2") // bedrock-claude-v1 names no region
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	_, err := ParseModels("config.yaml", []byte(quickStart))
	require.Error(t, err)
	require.Contains(t, err.Error(), `config.yaml:35: model_list[5].model_name: cannot be honoured: wildcard routes`)

	without := quickStart[:strings.Index(quickStart, "  # Use this if you want")] + quickStart[strings.Index(quickStart, "litellm_settings:"):]
	m := parseLiteLLMFile(t, without)
	require.Equal(t, []string{"anthropic-claude", "bedrock-claude-v1", "gpt-4o", "vllm-models"}, m.GroupNames())
	g := m.Groups["gpt-4o"]
	require.Len(t, g.Deployments, 2, "one model_name, two deployments: load balanced")
	require.Equal(t, policy.StrategyWeighted, g.Strategy, "simple-shuffle, LiteLLM's default")
	eu := g.Deployments[0]
	require.Equal(t, "azure", eu.Provider)
	require.Equal(t, "gpt-4o-eu", eu.AzureDeployment)
	require.Equal(t, "https://my-endpoint-europe-berri-992.openai.azure.com/", eu.Endpoint)
	require.Equal(t, "eu-key", eu.APIKey.Reveal())
	require.Equal(t, 6, eu.Weight, "weighted by rpm")
	require.Equal(t, 6, eu.MaxConcurrency, "LiteLLM's max parallel requests from rpm")
	require.Zero(t, eu.RPM, "rpm is a weight for simple-shuffle, not a limit")
	require.Equal(t, "bedrock", m.Groups["anthropic-claude"].Deployments[0].Provider)
	require.Equal(t, "us-east-1", m.Groups["anthropic-claude"].Deployments[0].Region)
	vllm := m.Groups["vllm-models"].Deployments[0]
	require.Equal(t, "openai", vllm.Provider)
	require.Equal(t, "facebook/opt-125m", vllm.Model)
	require.Equal(t, "http://0.0.0.0:4000/v1", vllm.BaseURL)
	// general_settings.master_key: the gateway's admin key, listed hashed.
	require.Equal(t, []APIKey{{SHA256: sha256Hex("sk-1234"), Admin: true, Name: "litellm master_key"}}, m.APIKeys)
	notices := map[string]int{}
	for _, n := range m.Notices() {
		notices[n.Key] = n.Line
	}
	require.Equal(t, map[string]int{
		"model_list[4].model_info.version":  30,
		"litellm_settings.drop_params":      33,
		"litellm_settings.success_callback": 34,
		"general_settings.alerting":         38,
	}, notices)
	_, err = m.Build(context.Background())
	require.NoError(t, err)
}

// [configs] Load Balancing, with its zephyr-beta deployments on vLLM
// servers (hosted_vllm/) instead of Hugging Face's endpoints, which
// Switchyard does not serve; the file as printed is refused for that.
const loadBalancing = `
model_list:
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8001
        rpm: 60      # Optional[int]: When rpm/tpm set - litellm uses weighted pick for load balancing. rpm = Rate limit for this deployment: in requests per minute (rpm).
        tpm: 1000   # Optional[int]: tpm = Tokens Per Minute 
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8002
        rpm: 600      
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8003
        rpm: 60000      
  - model_name: gpt-4o
    litellm_params:
        model: gpt-4o
        api_key: <my-openai-key>
        rpm: 200      
  - model_name: gpt-3.5-turbo-16k
    litellm_params:
        model: gpt-3.5-turbo-16k
        api_key: <my-openai-key>
        rpm: 100      

litellm_settings:
  num_retries: 3 # retry call 3 times on each model_name (e.g. zephyr-beta)
  request_timeout: 10 # raise Timeout error if call takes longer than 10s. Sets litellm.request_timeout 
  fallbacks: [{"zephyr-beta": ["gpt-4o"]}] # fallback to gpt-4o if call fails num_retries 
  context_window_fallbacks: [{"zephyr-beta": ["gpt-3.5-turbo-16k"]}, {"gpt-4o": ["gpt-3.5-turbo-16k"]}] # fallback to gpt-3.5-turbo-16k if context window error
  allowed_fails: 3 # cooldown model if it fails > 1 call in a minute. 

router_settings: # router_settings are optional
  routing_strategy: simple-shuffle # Literal["simple-shuffle", "least-busy", "usage-based-routing","latency-based-routing"], default="simple-shuffle"
  model_group_alias: {"gpt-4": "gpt-4o"} # all requests with ` + "`gpt-4`" + ` will be routed to models with ` + "`gpt-4o`" + `
  num_retries: 2
  timeout: 30                                  # 30 seconds
  redis_host: <your redis host>                # set this when using multiple litellm proxy deployments, load balancing state stored in redis
  redis_password: <your redis password>
  redis_port: 1992
`

func TestLiteLLMDocsLoadBalancing(t *testing.T) {
	t.Parallel()
	_, err := ParseModels("config.yaml", []byte(loadBalancing))
	require.Error(t, err)
	require.Contains(t, err.Error(), `config.yaml:5: model_list[0].litellm_params.model: cannot be honoured: provider "huggingface" is not one Switchyard serves`)

	m := parseLiteLLMFile(t, strings.ReplaceAll(loadBalancing, "huggingface/", "hosted_vllm/"))
	g := m.Groups["zephyr-beta"]
	require.Len(t, g.Deployments, 3)
	var weights []int
	for _, d := range g.Deployments {
		weights = append(weights, d.Weight)
		require.Equal(t, "vllm", d.Provider)
	}
	require.Equal(t, []int{60, 600, 60000}, weights, "simple-shuffle weighs by rpm (the first deployment sets it)")
	require.Equal(t, 2, g.Retry.MaxRetries, "router_settings wins over litellm_settings")
	require.Equal(t, 30*time.Second, g.Timeouts.TTFT, "router_settings.timeout over litellm_settings.request_timeout")
	require.Equal(t, []string{"gpt-4o"}, g.Fallbacks)
	require.Equal(t, []string{"gpt-3-5-turbo-16k"}, g.ContextWindowFallbacks)
	require.Equal(t, []string{"gpt-3-5-turbo-16k"}, m.Groups["gpt-4o"].ContextWindowFallbacks)
	require.Nil(t, g.Cooldown.AllowedFails, "allowed_fails: 3 is LiteLLM's default: its failure-rate rule holds")
	group, ok := m.Resolve("gpt-4")
	require.True(t, ok, "model_group_alias")
	require.Equal(t, "gpt-4o", group)
	group, _ = m.Resolve("gpt-3.5-turbo-16k")
	require.Equal(t, "gpt-3-5-turbo-16k", group)
	noted := map[string]bool{}
	for _, n := range m.Notices() {
		noted[n.Key] = true
	}
	for _, k := range []string{"litellm_settings.allowed_fails", "router_settings.redis_host", "router_settings.redis_password", "router_settings.redis_port"} {
		require.True(t, noted[k], k)
	}
}

// simple-shuffle spreads by weight: [routing] Weighted Deployments and
// RPM-based shuffling, on replays; the router's draws are seeded, so the
// counts are exact, and the bounds (4 standard deviations) hold for any
// fair draw.
func TestLiteLLMSimpleShuffleSpreadsByWeight(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, a, b string
		p          float64 // a's share
	}{
		{"weight", "weight: 9", "weight: 1", 0.9},
		{"rpm", "rpm: 900", "rpm: 10", 900.0 / 910},
		{"fractional weight", "weight: 0.75", "weight: 0.25", 0.75},
		{"even", "", "", 0.5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := vendortest.OpenAI(t, "a"), vendortest.OpenAI(t, "b")
			m := parseLiteLLMFile(t, `
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/chatgpt-v-2, api_base: `+a.URL+`, api_key: k, `+tt.a+`}
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/chatgpt-functioncalling, api_base: `+b.URL+`, api_key: k, `+tt.b+`}
router_settings: {routing_strategy: simple-shuffle}
`)
			r := routerOf(t, m, policy.WithRand(rand.NewPCG(15, 15)))
			const n = 1000
			for range n {
				_, err := ask(t, m, r, "gpt-3.5-turbo", "hi")
				require.NoError(t, err)
			}
			sd := 4 * math.Sqrt(n*tt.p*(1-tt.p))
			require.InDelta(t, n*tt.p, a.Calls(), sd+1)
			require.Equal(t, n, a.Calls()+b.Calls())
		})
	}
}

// [routing] Cooldowns: "cooldown model if it fails > allowed_fails", for
// cooldown_time; on the router's clock.
func TestLiteLLMCooldownAfterAllowedFails(t *testing.T) {
	t.Parallel()
	bad, good := vendortest.OpenAI(t, "bad"), vendortest.OpenAI(t, "good")
	bad.Always(vendortest.OpenAIServerError)
	m := parseLiteLLMFile(t, `
model_list:
  - model_name: gpt-4
    litellm_params: {model: openai/gpt-4-primary, api_base: `+bad.URL+`, api_key: k, order: 1}
  - model_name: gpt-4
    litellm_params: {model: openai/gpt-4-fallback, api_base: `+good.URL+`, api_key: k, order: 2}
router_settings:
  num_retries: 0
  allowed_fails: 1
  cooldown_time: 30
`)
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := routerOf(t, m, policy.WithClock(clk.now))
	for range 2 {
		_, err := ask(t, m, r, "gpt-4", "hi")
		require.Error(t, err, "order 1 first; no retries, no fallbacks")
	}
	out, err := ask(t, m, r, "gpt-4", "hi")
	require.NoError(t, err)
	require.Equal(t, "answer from good", out.Text, "two failures > allowed_fails 1: cooled down")
	clk.advance(29 * time.Second)
	_, err = ask(t, m, r, "gpt-4", "hi")
	require.NoError(t, err)
	require.Equal(t, 2, bad.Calls())
	clk.advance(2 * time.Second)
	_, err = ask(t, m, r, "gpt-4", "hi")
	require.Error(t, err)
	require.Equal(t, 3, bad.Calls(), "back after cooldown_time")
}

// [reliability] Fallbacks + Retries + Timeouts + Cooldowns: "fallback to
// gpt-3.5-turbo if call fails num_retries" — the group's retries first (each
// at once on another deployment), then its fallbacks. The zephyr-beta
// deployments are vLLM servers here (hosted_vllm/ for huggingface/).
func TestLiteLLMRetriesThenFallbacks(t *testing.T) {
	t.Parallel()
	z1, z2, z3, oa := vendortest.OpenAI(t, "z1"), vendortest.OpenAI(t, "z2"), vendortest.OpenAI(t, "z3"), vendortest.OpenAI(t, "openai")
	for _, z := range []*vendortest.Server{z1, z2, z3} {
		z.Always(vendortest.OpenAIServerError)
	}
	m := parseLiteLLMFile(t, `
model_list:
  - model_name: zephyr-beta
    litellm_params:
        model: hosted_vllm/HuggingFaceH4/zephyr-7b-beta
        api_base: `+z1.URL+`
  - model_name: zephyr-beta
    litellm_params:
        model: hosted_vllm/HuggingFaceH4/zephyr-7b-beta
        api_base: `+z2.URL+`
  - model_name: zephyr-beta
    litellm_params:
        model: hosted_vllm/HuggingFaceH4/zephyr-7b-beta
        api_base: `+z3.URL+`
  - model_name: gpt-3.5-turbo
    litellm_params:
        model: gpt-3.5-turbo
        api_key: <my-openai-key>
        api_base: `+oa.URL+`
  - model_name: gpt-3.5-turbo-16k
    litellm_params:
        model: gpt-3.5-turbo-16k
        api_key: <my-openai-key>
        api_base: `+oa.URL+`

litellm_settings:
  num_retries: 3 # retry call 3 times on each model_name (e.g. zephyr-beta)
  request_timeout: 10 # raise Timeout error if call takes longer than 10s. Sets litellm.request_timeout 
  fallbacks: [{"zephyr-beta": ["gpt-3.5-turbo"]}] # fallback to gpt-3.5-turbo if call fails num_retries 
  allowed_fails: 3 # cooldown model if it fails > 1 call in a minute. 
  cooldown_time: 30 # how long to cooldown model if fails/min > allowed_fails
`)
	r := routerOf(t, m)
	out, err := ask(t, m, r, "zephyr-beta", "hi")
	require.NoError(t, err)
	require.Equal(t, "gpt-3-5-turbo", out.Group)
	require.Equal(t, 3, out.Retries, "num_retries in the group first")
	require.Equal(t, 1, out.Fallbacks)
	require.Equal(t, 4, z1.Calls()+z2.Calls()+z3.Calls())
	for i := 1; i < 4; i++ {
		require.NotEqual(t, out.Attempts[i-1].Deployment, out.Attempts[i].Deployment, "each retry went at once to another deployment")
	}
	require.Equal(t, 10*time.Second, m.Groups["zephyr-beta"].Timeouts.TTFT, "request_timeout")
}

// [reliability] Context Window Fallbacks (Pre-Call Checks + Fallbacks),
// "Context Window Fallbacks (Different Groups)": a prompt too large for the
// group's model goes to the larger one before any call. The documented
// prompt is "What is the meaning of 42?" * 5000 (about 33k tokens); the
// small deployment's window is set with max_input_tokens, which LiteLLM's
// pre-call check reads.
func TestLiteLLMContextWindowFallbackBeforeTheCall(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-test")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-test")
	small, large, claude := vendortest.OpenAI(t, "small"), vendortest.OpenAI(t, "large"), vendortest.Anthropic(t, "claude")
	m := parseLiteLLMFile(t, `
router_settings:
  enable_pre_call_checks: true # 1. Enable pre-call checks

model_list:
  - model_name: gpt-3.5-turbo-small
    litellm_params:
      model: azure/chatgpt-v-2
      api_base: `+strings.TrimSuffix(small.URL, "/v1")+`
      api_key: azure-key
      api_version: "2023-07-01-preview"
    model_info:
      base_model: azure/gpt-4-1106-preview # 2. 👈 (azure-only) SET BASE MODEL
      max_input_tokens: 4096

  - model_name: gpt-3.5-turbo-large
    litellm_params:
      model: gpt-3.5-turbo-1106
      api_key: os.environ/OPENAI_API_KEY
      api_base: `+large.URL+`

  - model_name: claude-opus
    litellm_params:
      model: claude-3-opus-20240229
      api_key: os.environ/ANTHROPIC_API_KEY
      api_base: `+claude.URL+`

litellm_settings:
  context_window_fallbacks: [{"gpt-3.5-turbo-small": ["gpt-3.5-turbo-large", "claude-opus"]}]
`)
	r := routerOf(t, m)
	out, err := ask(t, m, r, "gpt-3.5-turbo-small", strings.Repeat("What is the meaning of 42?", 5000))
	require.NoError(t, err)
	require.Equal(t, "gpt-3-5-turbo-large", out.Group)
	require.Zero(t, small.Calls(), "decided before the call")
	require.Equal(t, 1, out.Fallbacks)
	require.Len(t, out.Attempts, 1)
	require.Equal(t, "gpt-4-1106-preview", m.Groups["gpt-3-5-turbo-small"].Deployments[0].Model, "azure: base_model is the catalogue's model")
}

// retry_policy per exception class ([routing] Custom Retries, Cooldowns
// based on Error Type; [settings] router_settings.retry_policy): a
// RateLimitError is retried RateLimitErrorRetries times, an
// AuthenticationError AuthenticationErrorRetries (0) times before the
// fallbacks.
func TestLiteLLMRetryPolicyPerExceptionClass(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		reply vendortest.Reply
		calls int
	}{
		{"RateLimitErrorRetries", vendortest.OpenAIRateLimited(""), 1 + 3},
		{"AuthenticationErrorRetries", vendortest.OpenAIAuth, 1 + 0},
		{"InternalServerErrorRetries", vendortest.OpenAIServerError, 1 + 4},
		{"num_retries for the rest", vendortest.OpenAIUnavailable, 1 + 4},
		{"BadRequestErrorRetries", vendortest.OpenAIBadRequest, 1 + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b, spare := vendortest.OpenAI(t, "a"), vendortest.OpenAI(t, "b"), vendortest.OpenAI(t, "spare")
			a.Always(tt.reply)
			b.Always(tt.reply)
			m := parseLiteLLMFile(t, `
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/a, api_base: `+a.URL+`, api_key: k}
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/b, api_base: `+b.URL+`, api_key: k}
  - model_name: spare
    litellm_params: {model: openai/spare, api_base: `+spare.URL+`, api_key: k}
router_settings:
  num_retries: 4
  disable_cooldowns: True                  # bool - Disable cooldowns for all models
  fallbacks: [{"gpt-3.5-turbo": ["spare"]}]
  retry_policy: {                          # Dict[str, int]: retry policy for different types of exceptions
    "AuthenticationErrorRetries": 0,
    "TimeoutErrorRetries": 3,
    "RateLimitErrorRetries": 3,
    "ContentPolicyViolationErrorRetries": 4,
    "InternalServerErrorRetries": 4,
    "BadRequestErrorRetries": 1
  }
`)
			r := routerOf(t, m)
			out, err := ask(t, m, r, "gpt-3.5-turbo", "hi")
			require.NoError(t, err)
			require.Equal(t, "spare", out.Group)
			require.Equal(t, tt.calls, a.Calls()+b.Calls())
		})
	}
}

// model_group_alias, both forms ([settings] router_settings reference):
// an alias routes to its group; a hidden one is not listed.
func TestLiteLLMModelGroupAlias(t *testing.T) {
	t.Parallel()
	oa := vendortest.OpenAI(t, "openai")
	m := parseLiteLLMFile(t, `
model_list:
  - model_name: claude-3-haiku-20240229
    litellm_params: {model: openai/haiku-compatible, api_base: `+oa.URL+`, api_key: k}
router_settings:
  model_group_alias:
    claude-3-haiku: claude-3-haiku-20240229
    haiku-internal: {model: claude-3-haiku-20240229, hidden: true}
`)
	r := routerOf(t, m)
	for _, name := range []string{"claude-3-haiku", "haiku-internal", "claude-3-haiku-20240229"} {
		out, err := ask(t, m, r, name, "hi")
		require.NoError(t, err, name)
		require.Equal(t, "claude-3-haiku-20240229", out.Group)
	}
	listed := map[string]bool{}
	for _, n := range m.ModelNames() {
		listed[n.Name] = !n.Hidden
	}
	require.True(t, listed["claude-3-haiku"])
	require.False(t, listed["haiku-internal"])
}

// [routing] Deployment Ordering (Priority): order 1 serves; order 2 when
// order 1 is out (here, cooled down for a bad key: LiteLLM cools a
// deployment down on a 401 even without allowed_fails). The keys come from
// the file's own environment_variables, a LiteLLM section this test adds.
func TestLiteLLMDeploymentOrder(t *testing.T) {
	t.Parallel()
	primary, fallback := vendortest.OpenAI(t, "primary"), vendortest.OpenAI(t, "fallback")
	m := parseLiteLLMFile(t, `
environment_variables: {AZURE_API_KEY: k1, AZURE_API_KEY_2: k2}
model_list:
  - model_name: gpt-4
    litellm_params:
      model: azure/gpt-4-primary
      api_key: os.environ/AZURE_API_KEY
      api_base: `+strings.TrimSuffix(primary.URL, "/v1")+`
      api_version: "2024-02-01"
      order: 1  # 👈 Highest priority

  - model_name: gpt-4
    litellm_params:
      model: azure/gpt-4-fallback
      api_key: os.environ/AZURE_API_KEY_2
      api_base: `+strings.TrimSuffix(fallback.URL, "/v1")+`
      api_version: "2024-02-01"
      order: 2  # 👈 Used when order=1 is unavailable
`)
	r := routerOf(t, m)
	for range 5 {
		out, err := ask(t, m, r, "gpt-4", "hi")
		require.NoError(t, err)
		require.Equal(t, "answer from primary", out.Text)
	}
	require.Zero(t, fallback.Calls())
	require.Equal(t, "k1", primary.Requests()[0].Auth)
	primary.Always(vendortest.OpenAIAuth)
	out, err := ask(t, m, r, "gpt-4", "hi")
	require.NoError(t, err)
	require.Equal(t, "answer from fallback", out.Text, "retried at once on order 2")
	_, err = ask(t, m, r, "gpt-4", "hi")
	require.NoError(t, err)
	require.Equal(t, 6, primary.Calls(), "cooled down after the 401")
	require.Equal(t, "k2", fallback.Requests()[0].Auth)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
