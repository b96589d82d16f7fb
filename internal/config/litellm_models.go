package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// lentry is one model_list entry: a deployment of the group its model_name
// becomes, with the LiteLLM values that decide the group's options.
type lentry struct {
	n     lnode
	name  string // model_name, the client's name for the group
	group string // the group's token
	d     *Deployment

	prefix                  string // LiteLLM provider prefix (openai, azure, ...)
	rpm, tpm, maxPar, order *int
	priority, numRetries    *int
	weight                  *float64
}

// litellmProviders maps LiteLLM's provider prefixes to Switchyard's
// providers (OpenAI-compatible ones are presets of openai).
var litellmProviders = map[string]string{
	"openai":       ProviderOpenAI,
	"azure":        ProviderAzure,
	"azure_ai":     ProviderOpenAI, // Azure AI Foundry's OpenAI-compatible endpoint
	"anthropic":    ProviderAnthropic,
	"gemini":       ProviderGemini,
	"vertex_ai":    ProviderVertex,
	"bedrock":      ProviderBedrock,
	"ollama":       "ollama",
	"ollama_chat":  "ollama",
	"hosted_vllm":  "vllm",
	"groq":         "groq",
	"deepseek":     "deepseek",
	"together_ai":  "together",
	"mistral":      "mistral",
	"openrouter":   "openrouter",
	"fireworks_ai": "fireworks",
	"lm_studio":    "lmstudio",
}

// litellmKeyEnv and litellmBaseEnv are the variables LiteLLM reads a
// provider's key and base URL from when the deployment names none.
var (
	litellmKeyEnv = map[string][]string{
		"openai": {"OPENAI_API_KEY"}, "azure": {"AZURE_API_KEY"}, "azure_ai": {"AZURE_AI_API_KEY"},
		"anthropic": {"ANTHROPIC_API_KEY"}, "gemini": {"GEMINI_API_KEY"}, "groq": {"GROQ_API_KEY"},
		"deepseek": {"DEEPSEEK_API_KEY"}, "together_ai": {"TOGETHERAI_API_KEY", "TOGETHER_API_KEY"},
		"mistral": {"MISTRAL_API_KEY"}, "openrouter": {"OPENROUTER_API_KEY"},
		"fireworks_ai": {"FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"}, "hosted_vllm": {"HOSTED_VLLM_API_KEY"},
	}
	litellmBaseEnv = map[string][]string{
		"openai": {"OPENAI_BASE_URL", "OPENAI_API_BASE"}, "azure": {"AZURE_API_BASE"}, "azure_ai": {"AZURE_AI_API_BASE"},
		"anthropic": {"ANTHROPIC_API_BASE"}, "hosted_vllm": {"HOSTED_VLLM_API_BASE"}, "ollama": {"OLLAMA_API_BASE"},
		"ollama_chat": {"OLLAMA_API_BASE"},
	}
)

// modelList reads model_list into deployments, grouped by model_name in
// file order.
func (t *litellm) modelList(n lnode, set settings) []*lentry {
	l, ok := n.v.([]any)
	if !ok || len(l) == 0 {
		t.fail(n, "model_list needs at least one model")
		return nil
	}
	// A model_name that is a group name already keeps it; the others get
	// theirs (groupToken) in file order, around those.
	tokens := map[string]string{} // model_name -> group
	taken := map[string]bool{}
	for i := range l {
		if name, _ := n.index(i).key("model_name").v.(string); bus.ValidGroup(name) {
			tokens[name], taken[name] = name, true
		}
	}
	for i := range l {
		if name, _ := n.index(i).key("model_name").v.(string); name != "" && tokens[name] == "" {
			tokens[name] = groupToken(name, taken)
		}
	}
	names := map[string]bool{}
	var out []*lentry
	for i := range l {
		e := t.entry(n.index(i), tokens, names)
		if e != nil {
			out = append(out, e)
		}
	}
	t.defaultParams(out, set.get("default_litellm_params"))
	return out
}

// groupToken turns a model_name into a group name, the one way docs/litellm.md
// describes: lower case, every run of characters outside [a-z0-9_-] replaced
// by "-", "-" trimmed from both ends, at most 64 characters; a name taken by
// an earlier model_name gets "-2", "-3", ...
func groupToken(name string, taken map[string]bool) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	tok := strings.Trim(b.String(), "-")
	if tok == "" {
		tok = "model"
	}
	if len(tok) > 60 {
		tok = strings.TrimRight(tok[:60], "-")
	}
	base := tok
	for i := 2; taken[tok]; i++ {
		tok = fmt.Sprintf("%s-%d", base, i)
	}
	taken[tok] = true
	return tok
}

func (t *litellm) entry(n lnode, tokens map[string]string, names map[string]bool) *lentry {
	if _, ok := n.v.(map[string]any); !ok {
		t.fail(n, "want {model_name, litellm_params}")
		return nil
	}
	for _, k := range n.keys(t) {
		switch k {
		case "model_name", "litellm_params", "model_info", "rpm", "tpm":
		default:
			t.fail(n.key(k), "not a model_list key (model_name, litellm_params, model_info)")
		}
	}
	name, _ := n.key("model_name").v.(string)
	if name == "" {
		t.fail(n, "model_name is required")
		return nil
	}
	if strings.Contains(name, "*") {
		t.fail(n.key("model_name"), "cannot be honoured: wildcard routes pass any model name through to a provider; Switchyard serves the groups the file names")
		return nil
	}
	e := &lentry{n: n, name: name, group: tokens[name]}
	p := n.key("litellm_params")
	params, ok := p.v.(map[string]any)
	if !ok {
		t.fail(n, "litellm_params is required")
		return nil
	}
	if cn := p.key("litellm_credential_name"); cn.set() {
		t.credential(cn, params)
	}
	e.d = &Deployment{}
	for _, k := range p.keys(t) {
		if t.apply(p.key(k), ruleFor(paramKeys, "litellm_params", k)) {
			t.param(e, p, k)
		}
	}
	for _, k := range []string{"rpm", "tpm"} { // also at the entry's top level
		if v := n.key(k); v.set() && !p.key(k).set() {
			t.param(e, n, k)
		}
	}
	if t.provider(e, p) {
		t.info(e, n.key("model_info"))
		e.d.Name = t.deploymentName(e, names)
	}
	return e
}

// credential merges a credential_list entry under the deployment's own keys.
func (t *litellm) credential(n lnode, params map[string]any) {
	name, _ := n.v.(string)
	values, ok := t.creds[name]
	if !ok {
		t.fail(n, "no credential_list entry is named %q", name)
		return
	}
	for k, v := range values {
		if _, own := params[k]; !own {
			params[k] = v
		}
	}
}

func (t *litellm) intp(n lnode) *int {
	v, ok := t.count(n)
	if !ok {
		return nil
	}
	return &v
}

// param maps one litellm_params key of e.
func (t *litellm) param(e *lentry, p lnode, k string) {
	n := p.key(k)
	switch k {
	case "model", "custom_llm_provider", "api_base", "api_version", "base_model", "mock_response", "litellm_credential_name":
		// Read with the provider (provider), or above.
	default:
		if !t.credentialParam(e.d, n, k) && !t.limitParam(e, n, k) {
			t.callParam(e.d, n, k)
		}
	}
}

// credentialParam reads a litellm_params key that says how to reach the
// deployment; false when k is not one.
func (t *litellm) credentialParam(d *Deployment, n lnode, k string) bool {
	secret := func(dst *Secret) {
		if v, ok := t.str(n); ok {
			*dst = Secret(v)
		}
	}
	text := func(dst *string) {
		if v, ok := t.str(n); ok {
			*dst = v
		}
	}
	switch k {
	case "api_key":
		secret(&d.APIKey)
	case "organization":
		text(&d.Organization)
	case "aws_access_key_id":
		secret(&d.AWSAccessKeyID)
	case "aws_secret_access_key":
		secret(&d.AWSSecretAccessKey)
	case "aws_session_token":
		secret(&d.AWSSessionToken)
	case "aws_region_name":
		text(&d.Region)
	case "vertex_project":
		text(&d.Project)
	case "vertex_location":
		text(&d.Location)
	default:
		return false
	}
	return true
}

// limitParam reads a litellm_params key about the deployment's limits and
// routing; false when k is not one.
func (t *litellm) limitParam(e *lentry, n lnode, k string) bool {
	switch k {
	case "rpm":
		e.rpm = t.intp(n)
	case "tpm":
		e.tpm = t.intp(n)
	case "max_parallel_requests":
		e.maxPar = t.intp(n)
	case "order":
		e.order = t.intp(n)
	case "num_retries":
		e.numRetries = t.intp(n)
	case "weight":
		if w, ok := t.num(n); ok {
			if w < 0 {
				t.fail(n, "want a weight >= 0")
			}
			e.weight = &w
		}
	default:
		return false
	}
	return true
}

// callParam reads a litellm_params key about the calls themselves:
// timeouts, sampling defaults, headers, prices.
func (t *litellm) callParam(d *Deployment, n lnode, k string) {
	params := func() *Params {
		if d.Params == nil {
			d.Params = &Params{}
		}
		return d.Params
	}
	switch k {
	case "timeout", "stream_timeout":
		if v, ok := t.seconds(n); ok && v > 0 {
			// A LiteLLM timeout bounds each read of the answer, as an HTTP
			// client's read timeout does: the first chunk and every next one.
			if k == "timeout" && d.Timeouts.TTFT != 0 {
				break // stream_timeout wins for streams, which every call here is
			}
			d.Timeouts.TTFT, d.Timeouts.Idle = v, v
		}
	case "cooldown_time":
		if v, ok := t.seconds(n); ok {
			d.Cooldown = &v
		}
	case "temperature", "top_p":
		if v, ok := t.num(n); ok {
			if k == "temperature" {
				params().Temperature = &v
			} else {
				params().TopP = &v
			}
		}
	case "max_tokens", "max_completion_tokens":
		if v, ok := t.count(n); ok {
			params().MaxTokens = v
		}
	case "seed":
		if v, ok := t.count(n); ok {
			s := int64(v)
			params().Seed = &s
		}
	case "stop":
		params().Stop = t.strings(n)
	case "extra_headers":
		if _, ok := n.v.(map[string]any); !ok {
			t.fail(n, "want a map of header names to values")
			return
		}
		d.Headers = map[string]Secret{}
		for _, h := range n.keys(t) {
			if v, ok := t.str(n.key(h)); ok {
				d.Headers[h] = Secret(v)
			}
		}
	case "input_cost_per_token", "output_cost_per_token":
		t.price(d, n, k)
	}
}

// strings reads a string or a list of strings.
func (t *litellm) strings(n lnode) []string {
	switch v := n.v.(type) {
	case string:
		s, _ := t.str(n)
		return []string{s}
	case []any:
		out := make([]string, 0, len(v))
		for i := range v {
			if s, ok := t.str(n.index(i)); ok {
				out = append(out, s)
			}
		}
		return out
	}
	t.fail(n, "want a string or a list of strings")
	return nil
}

// price reads a per-token price into the deployment's per-million override.
func (t *litellm) price(d *Deployment, n lnode, k string) {
	v, ok := t.num(n)
	if !ok {
		return
	}
	perM := math.Round(v*1e6*1e9) / 1e9 // per million tokens, without float dust
	if strings.HasPrefix(k, "input") {
		d.InputCostPerMTok = &perM
	} else {
		d.OutputCostPerMTok = &perM
	}
}

// provider reads litellm_params.model (with custom_llm_provider, api_base,
// api_version, base_model, mock_response) into the deployment's provider.
func (t *litellm) provider(e *lentry, p lnode) bool {
	d := e.d
	mn := p.key("model")
	model, _ := mn.v.(string)
	if model == "" {
		t.fail(p, "model is required")
		return false
	}
	prefix, id, hasPrefix := strings.Cut(model, "/")
	if cp, ok := t.str(p.key("custom_llm_provider")); ok && cp != "" {
		prefix, id, hasPrefix = cp, strings.TrimPrefix(model, cp+"/"), true
	}
	if !hasPrefix {
		prefix, id = bareProvider(model), model
		if prefix == "" {
			t.fail(mn, "cannot tell the provider of %q: write it with LiteLLM's provider prefix (openai/%s, anthropic/%s, ...)", model, model, model)
			return false
		}
	}
	if strings.Contains(id, "*") {
		t.fail(mn, "cannot be honoured: wildcard routes pass any model name through to a provider; Switchyard serves the models the file names")
		return false
	}
	if mr := p.key("mock_response"); mr.set() {
		text, ok := mr.v.(string)
		if !ok {
			t.fail(mr, "want the answer's text")
			return false
		}
		// LiteLLM's test double; Switchyard's mock provider answers it.
		d.Provider, d.Model, d.Mock = ProviderMock, model, &mock.Config{Text: text}
		e.prefix = "mock"
		return t.noBase(e, p)
	}
	provider, ok := litellmProviders[prefix]
	if !ok {
		t.fail(mn, "cannot be honoured: provider %q is not one Switchyard serves (%s; an OpenAI-compatible server works as openai/<model> with api_base)", prefix, strings.Join(slices.Sorted(maps.Keys(litellmProviders)), ", "))
		return false
	}
	e.prefix, d.Provider, d.Model = prefix, provider, id
	base, _ := t.str(p.key("api_base"))
	base = cmpStr(base, t.fromEnv(litellmBaseEnv[prefix]))
	if d.APIKey == "" {
		if v := t.fromEnv(litellmKeyEnv[prefix]); v != "" {
			d.APIKey = Secret(v)
		}
	}
	apiVersion, _ := t.str(p.key("api_version"))
	if !t.place(e, p, prefix, id, base, apiVersion) {
		return false
	}
	if bm := p.key("base_model"); bm.set() && prefix != "azure" {
		t.baseModel(e, bm)
	}
	return true
}

// place reads what a provider prefix needs to reach the model: an Azure
// deployment and API version, a Bedrock or Vertex AI model, a base URL.
func (t *litellm) place(e *lentry, p lnode, prefix, id, base, apiVersion string) bool {
	d, mn := e.d, p.key("model")
	switch prefix {
	case "azure":
		d.AzureDeployment, d.Endpoint = id, base
		d.APIVersion = cmpStr(apiVersion, t.fromEnv([]string{"AZURE_API_VERSION"}))
		// The deployment's name is Azure's; the model is its base model,
		// for the catalogue (context window, prices).
		d.Model = id
		if bm, ok := t.str(p.key("base_model")); ok {
			d.Model = strings.TrimPrefix(bm, "azure/")
		}
		apiVersion = ""
	case "azure_ai":
		if base == "" {
			t.fail(p, "api_base is required for azure_ai (https://<resource>.services.ai.azure.com/models)")
			return false
		}
		d.BaseURL = base
	case "bedrock":
		id = strings.TrimPrefix(strings.TrimPrefix(id, "converse/"), "invoke/")
		if !strings.Contains(id, "anthropic.") {
			t.fail(mn, "cannot be honoured: Switchyard serves Claude models on Bedrock (anthropic.* ids), not %q", id)
			return false
		}
		d.Model, d.BaseURL = id, base
		if d.Region == "" {
			d.Region = t.fromEnv([]string{"AWS_REGION_NAME"})
		}
	case "vertex_ai":
		if strings.Contains(id, "claude") {
			t.fail(mn, "cannot be honoured: Claude on Vertex AI is not a provider of the model file yet")
			return false
		}
		d.BaseURL = base
		d.Project = cmpStr(d.Project, t.fromEnv([]string{"VERTEXAI_PROJECT", "VERTEX_PROJECT"}))
		d.Location = cmpStr(d.Location, t.fromEnv([]string{"VERTEXAI_LOCATION", "VERTEX_LOCATION"}))
	case "ollama", "ollama_chat":
		// LiteLLM calls Ollama's own API at api_base; Switchyard calls its
		// OpenAI-compatible one, under /v1.
		if base != "" && !strings.HasSuffix(strings.TrimRight(base, "/"), "/v1") {
			base = strings.TrimRight(base, "/") + "/v1"
		}
		d.BaseURL = base
	default:
		d.BaseURL = base
	}
	if apiVersion != "" {
		t.fail(p.key("api_version"), "api_version is Azure OpenAI's; provider %q takes none", prefix)
	}
	return true
}

// noBase refuses endpoint keys on a mock_response deployment.
func (t *litellm) noBase(e *lentry, p lnode) bool {
	for _, k := range []string{"api_base", "api_version"} {
		if p.key(k).set() {
			t.notice(p.key(k), "unused: the deployment answers mock_response")
		}
	}
	e.d.APIKey = ""
	return true
}

// fromEnv returns ${NAME} for the first of names that is set.
func (t *litellm) fromEnv(names []string) string {
	for _, name := range names {
		if _, ok := t.lookup(name); ok {
			return "${" + name + "}"
		}
	}
	return ""
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// bareProvider guesses the provider of a model name without a prefix, as
// LiteLLM does from its model map: "" when it cannot tell.
func bareProvider(model string) string {
	if m, ok := catalog.Lookup(model); ok {
		for prefix, p := range litellmProviders {
			if p == m.Provider && !strings.Contains(prefix, "_") {
				return prefix
			}
		}
		if m.Provider == "together" {
			return "together_ai"
		}
	}
	l := strings.ToLower(model)
	for _, p := range []string{"gpt-", "o1", "o3", "o4", "chatgpt-", "text-davinci", "ft:gpt"} {
		if strings.HasPrefix(l, p) {
			return "openai"
		}
	}
	switch {
	case strings.HasPrefix(l, "claude"):
		return "anthropic"
	case strings.HasPrefix(l, "gemini"):
		return "gemini"
	}
	return ""
}

// baseModel takes the catalogue's facts of base_model for a deployment whose
// own model id is not in the catalogue (LiteLLM uses base_model for the
// context window and prices).
func (t *litellm) baseModel(e *lentry, n lnode) {
	name, _ := t.str(n)
	m, ok := catalog.Lookup(name)
	if !ok {
		t.notice(n, fmt.Sprintf("the catalogue does not know %q; set model_info.max_input_tokens and the prices instead", name))
		return
	}
	d := e.d
	if d.ContextWindow == 0 {
		d.ContextWindow = m.ContextWindow
	}
	if d.MaxOutput == 0 {
		d.MaxOutput = m.MaxOutput
	}
	if d.InputCostPerMTok == nil && m.InputPerMTok+m.OutputPerMTok > 0 {
		in, out := m.InputPerMTok, m.OutputPerMTok
		d.InputCostPerMTok, d.OutputCostPerMTok = &in, &out
	}
}

// info reads model_info.
func (t *litellm) info(e *lentry, n lnode) {
	if !t.mapping(n, "a map") {
		return
	}
	d := e.d
	yes := func(k string) *bool {
		b, ok := t.boolean(n.key(k))
		if !ok {
			return nil
		}
		return &b
	}
	for _, k := range n.keys(t) {
		kn := n.key(k)
		if !infoKeys[k] {
			t.notice(kn, "model_info metadata Switchyard does not read")
			continue
		}
		switch k {
		case "id":
			// deploymentName
		case "mode":
			if m, _ := kn.v.(string); m != "" && m != "chat" && m != "completion" && m != "responses" {
				t.fail(kn, "cannot be honoured: mode %q: %s", m, whyChatOnly)
			}
		case "max_input_tokens":
			if v, ok := t.count(kn); ok {
				d.ContextWindow = v
			}
		case "max_tokens":
			// LiteLLM's legacy field: in a config's model_info it is the
			// model's window; max_input_tokens, when given, is more precise.
			if v, ok := t.count(kn); ok && !n.key("max_input_tokens").set() {
				d.ContextWindow = v
			}
		case "max_output_tokens":
			if v, ok := t.count(kn); ok {
				d.MaxOutput = v
			}
		case "input_cost_per_token", "output_cost_per_token":
			t.price(d, kn, k)
		case "supports_vision":
			d.SupportsVision = yes(k)
		case "supports_function_calling":
			d.SupportsTools = yes(k)
		case "supports_response_schema":
			d.SupportsJSONSchema = yes(k)
		case "base_model":
			if e.prefix != "azure" {
				t.baseModel(e, kn)
			} else if bm, ok := t.str(kn); ok {
				d.Model = strings.TrimPrefix(bm, "azure/")
			}
		case "priority":
			e.priority = t.intp(kn)
		case "order":
			if e.order == nil {
				e.order = t.intp(kn)
			}
		}
	}
}

// deploymentName is model_info.id, else the LiteLLM model string; names are
// unique across the file, since the fleet's state is kept by name.
func (t *litellm) deploymentName(e *lentry, names map[string]bool) string {
	name, _ := t.str(e.n.key("model_info").key("id"))
	if name != "" {
		if names[name] {
			t.fail(e.n.key("model_info").key("id"), "model_info.id %q is used twice", name)
		}
		names[name] = true
		return name
	}
	base, _ := e.n.key("litellm_params").key("model").v.(string)
	name = base
	for i := 2; names[name]; i++ {
		name = fmt.Sprintf("%s#%d", base, i)
	}
	names[name] = true
	return name
}

// defaultParams gives every deployment the router's default_litellm_params
// it does not set itself.
func (t *litellm) defaultParams(entries []*lentry, n lnode) {
	if !t.mapping(n, "a map of request parameters") {
		return
	}
	probe := &lentry{d: &Deployment{}}
	for _, k := range n.keys(t) {
		switch k {
		case "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed":
			t.param(probe, n, k)
		default:
			t.fail(n.key(k), "not a parameter Switchyard sends (temperature, top_p, max_tokens, stop, seed)")
		}
	}
	def := probe.d.Params
	if def == nil {
		return
	}
	for _, e := range entries {
		if e.d == nil {
			continue
		}
		if e.d.Params == nil {
			e.d.Params = &Params{}
		}
		p := e.d.Params
		if p.Temperature == nil {
			p.Temperature = def.Temperature
		}
		if p.TopP == nil {
			p.TopP = def.TopP
		}
		if p.MaxTokens == 0 {
			p.MaxTokens = def.MaxTokens
		}
		if p.Stop == nil {
			p.Stop = def.Stop
		}
		if p.Seed == nil {
			p.Seed = def.Seed
		}
	}
}

// nativeKey names, for each native deployment key, the LiteLLM key it
// comes from, so that native errors name the LiteLLM line.
var nativeKey = map[string]string{
	"provider": "litellm_params.model", "model": "litellm_params.model", "api_key": "litellm_params.api_key",
	"base_url": "litellm_params.api_base", "endpoint": "litellm_params.api_base",
	"azure_deployment": "litellm_params.model", "api_version": "litellm_params.api_version",
	"organization": "litellm_params.organization", "headers": "litellm_params.extra_headers",
	"region": "litellm_params.aws_region_name", "aws_access_key_id": "litellm_params.aws_access_key_id",
	"aws_secret_access_key": "litellm_params.aws_secret_access_key", "aws_session_token": "litellm_params.aws_session_token",
	"project": "litellm_params.vertex_project", "location": "litellm_params.vertex_location",
	"mock": "litellm_params.mock_response", "params": "litellm_params",
	"context_window": "model_info", "max_output": "model_info",
}

// placeRemaps records, once the groups are built, each native deployment
// path's LiteLLM origin.
func (t *litellm) placeRemaps(entries []*lentry) {
	index := map[string]int{}
	for _, e := range entries {
		if e.d == nil {
			continue
		}
		i := index[e.group]
		index[e.group] = i + 1
		np := fmt.Sprintf("$.groups.%s.deployments[%d]", e.group, i)
		t.remap[np] = e.n.path
		for nk, lk := range nativeKey {
			t.remap[np+"."+nk] = e.n.path + "." + lk
		}
		if _, ok := t.remap["$.groups."+e.group]; !ok {
			t.remap["$.groups."+e.group] = e.n.key("model_name").path
		}
	}
}
