package config

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/anthropic"
	"github.com/switchyard/switchyard/pkg/llm/gemini"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

// Provider names accepted in the model file, besides the OpenAI-compatible
// presets (openai.PresetNames).
const (
	ProviderMock      = "mock"
	ProviderOpenAI    = "openai"
	ProviderAzure     = "azure"
	ProviderAnthropic = "anthropic"
	ProviderGemini    = "gemini"
	ProviderVertex    = "vertex"  // Gemini on Vertex AI
	ProviderBedrock   = "bedrock" // Claude on Amazon Bedrock
)

// provider is one entry of the registry: everything the model file knows of
// a provider. Adding a provider is its package plus one entry here.
type provider struct {
	// keys are the provider-specific deployment keys it uses; the others
	// (see providerKeys) are refused on its deployments.
	keys []string
	// keyEnv are the variables its API key is read from, in order, when a
	// deployment names no api_key.
	keyEnv []string
	// needsKey: it cannot be built without an API key (the OpenAI-compatible
	// ones can: a local server needs none, a hosted one answers auth).
	needsKey bool
	// anyModel: a deployment may leave model out.
	anyModel bool
	// require checks what the provider needs beyond its keys (may be nil).
	require func(d *Deployment) *keyErr
	// build creates the provider of a checked deployment with its API key
	// (from api_key or keyEnv); it makes no network call.
	build func(ctx context.Context, d *Deployment, key string) (llm.Provider, error)
}

var registry = map[string]provider{
	ProviderMock:      {keys: []string{"mock"}, anyModel: true, require: requireMock, build: buildMock},
	ProviderOpenAI:    {keys: openAIKeys, keyEnv: []string{"OPENAI_API_KEY"}, build: buildOpenAI},
	ProviderAzure:     {keys: []string{"api_key", "endpoint", "azure_deployment", "api_version", "headers"}, keyEnv: []string{"AZURE_OPENAI_API_KEY"}, require: requireAzure, build: buildOpenAI},
	ProviderAnthropic: {keys: []string{"api_key", "base_url", "headers", "max_tokens"}, keyEnv: []string{"ANTHROPIC_API_KEY"}, needsKey: true, build: buildAnthropic},
	ProviderBedrock:   {keys: []string{"region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "base_url", "headers", "max_tokens"}, require: requireBedrock, build: buildBedrock},
	ProviderGemini:    {keys: []string{"api_key", "base_url", "headers"}, keyEnv: []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"}, needsKey: true, build: buildGemini},
	ProviderVertex:    {keys: []string{"api_key", "project", "location", "base_url", "headers"}, require: requireVertex, build: buildGemini},
}

var openAIKeys = []string{"api_key", "base_url", "organization", "project", "headers"}

// lookupProvider returns the registry's entry for name, or that of an
// OpenAI-compatible preset (openai's keys and builder, the preset's key
// variable).
func lookupProvider(name string) (provider, bool) {
	if p, ok := registry[name]; ok {
		return p, true
	}
	if pr, ok := openai.Preset(name); ok {
		p := provider{keys: openAIKeys, build: buildOpenAI}
		if pr.KeyEnv != "" {
			p.keyEnv = []string{pr.KeyEnv}
		}
		return p, true
	}
	return provider{}, false
}

// ProviderNames lists every accepted provider name.
func ProviderNames() []string {
	names := slices.Collect(maps.Keys(registry))
	for _, p := range openai.PresetNames() {
		if !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	return names
}

// providerKeys says, for each provider-specific key, whether d sets it.
func (d *Deployment) providerKeys() map[string]bool {
	return map[string]bool{
		"api_key": d.APIKey != "", "base_url": d.BaseURL != "", "organization": d.Organization != "",
		"project": d.Project != "", "headers": len(d.Headers) > 0, "endpoint": d.Endpoint != "",
		"azure_deployment": d.AzureDeployment != "", "api_version": d.APIVersion != "",
		"location": d.Location != "", "max_tokens": d.MaxTokens != 0, "mock": d.Mock != nil,
		"region": d.Region != "", "aws_access_key_id": d.AWSAccessKeyID != "",
		"aws_secret_access_key": d.AWSSecretAccessKey != "", "aws_session_token": d.AWSSessionToken != "",
	}
}

// check refuses keys that the deployment's provider does not use, and
// missing required ones.
func (d *Deployment) check() *keyErr {
	if d.Provider == "" {
		return &keyErr{"provider", "required (one of " + strings.Join(ProviderNames(), ", ") + ")"}
	}
	p, ok := lookupProvider(d.Provider)
	if !ok {
		return &keyErr{"provider", fmt.Sprintf("unknown provider %q (want one of %s)", d.Provider, strings.Join(ProviderNames(), ", "))}
	}
	if d.Model == "" && !p.anyModel {
		return &keyErr{"model", "required"}
	}
	set := d.providerKeys()
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if set[k] && !slices.Contains(p.keys, k) {
			return &keyErr{k, fmt.Sprintf("not used by provider %q", d.Provider)}
		}
	}
	if p.require != nil {
		if err := p.require(d); err != nil {
			return err
		}
	}
	if d.MaxTokens < 0 {
		return &keyErr{"max_tokens", "must not be negative"}
	}
	return nil
}

// build creates the deployment's provider.
func (d *Deployment) build(ctx context.Context) (llm.Provider, error) {
	p, ok := lookupProvider(d.Provider)
	if !ok {
		return nil, fmt.Errorf("unknown provider %q", d.Provider)
	}
	return p.build(ctx, d, d.apiKey(p))
}

// missingKey names the variable to set when a deployment whose provider
// cannot be built without an API key (anthropic, gemini) has none, instead
// of the provider's "no API key configured" on the provider line.
func (d *Deployment) missingKey() string {
	p, ok := lookupProvider(d.Provider)
	if !ok || !p.needsKey || d.apiKey(p) != "" {
		return ""
	}
	return fmt.Sprintf("no API key: set %s, or name the variable that holds it (api_key: ${MY_KEY})", strings.Join(p.keyEnv, " or "))
}

// apiKey is the deployment's api_key, else the first set variable of its
// provider's keyEnv.
func (d *Deployment) apiKey(p provider) string {
	if d.APIKey != "" {
		return d.APIKey.Reveal()
	}
	for _, name := range p.keyEnv {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return ""
}

func requireMock(d *Deployment) *keyErr {
	if d.Mock != nil {
		if err := d.Mock.Validate(); err != nil {
			return &keyErr{"mock", err.Error()}
		}
	}
	return nil
}

func requireAzure(d *Deployment) *keyErr {
	if d.Endpoint == "" {
		return &keyErr{"endpoint", "required for azure (https://<resource>.openai.azure.com)"}
	}
	return nil
}

func requireVertex(d *Deployment) *keyErr {
	if d.Project == "" || d.Location == "" {
		return &keyErr{"project", "project and location are required for vertex"}
	}
	return nil
}

func requireBedrock(d *Deployment) *keyErr {
	if d.awsRegion() == "" {
		return &keyErr{"region", "required for bedrock (or set AWS_REGION)"}
	}
	if d.AWSAccessKeyID == "" && d.AWSSecretAccessKey != "" {
		return &keyErr{"aws_access_key_id", "required with aws_secret_access_key"}
	}
	return nil
}

func buildMock(_ context.Context, d *Deployment, _ string) (llm.Provider, error) {
	var c mock.Config
	if d.Mock != nil {
		c = *d.Mock
	}
	return mock.New(c), nil
}

// buildOpenAI serves openai, azure and the OpenAI-compatible presets.
func buildOpenAI(_ context.Context, d *Deployment, key string) (llm.Provider, error) {
	o := openai.Options{
		APIKey: key, BaseURL: d.BaseURL, Organization: d.Organization, Project: d.Project,
		Headers: d.headers(),
	}
	switch d.Provider {
	case ProviderOpenAI:
	case ProviderAzure:
		o.AzureEndpoint, o.AzureDeployment, o.AzureAPIVersion = d.Endpoint, d.AzureDeployment, d.APIVersion
	default:
		o.Preset = d.Provider
	}
	return openai.New(o)
}

func buildAnthropic(_ context.Context, d *Deployment, key string) (llm.Provider, error) {
	return anthropic.New(anthropic.Options{APIKey: key, BaseURL: d.BaseURL, Headers: d.headers(), MaxTokensDefault: d.MaxTokens})
}

func buildBedrock(_ context.Context, d *Deployment, _ string) (llm.Provider, error) {
	return anthropic.New(anthropic.Options{Bedrock: d.bedrockOptions(), Headers: d.headers(), MaxTokensDefault: d.MaxTokens})
}

// buildGemini serves gemini and vertex.
func buildGemini(ctx context.Context, d *Deployment, key string) (llm.Provider, error) {
	o := gemini.Options{APIKey: key, BaseURL: d.BaseURL, Headers: d.headers()}
	if d.Provider == ProviderVertex {
		o.Backend, o.Project, o.Location = "vertex", d.Project, d.Location
	}
	return gemini.New(ctx, o)
}

func (d *Deployment) awsRegion() string {
	return cmp.Or(d.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
}

// bedrockOptions takes the credentials from the deployment when it names an
// access key id, else all of them from the AWS_* variables: a key pair and a
// session token from two different sources would never sign.
func (d *Deployment) bedrockOptions() *anthropic.BedrockOptions {
	b := &anthropic.BedrockOptions{Region: d.awsRegion(), BaseURL: d.BaseURL}
	if d.AWSAccessKeyID != "" {
		b.AccessKeyID, b.SecretAccessKey, b.SessionToken = d.AWSAccessKeyID.Reveal(), d.AWSSecretAccessKey.Reveal(), d.AWSSessionToken.Reveal()
	} else {
		b.AccessKeyID, b.SecretAccessKey, b.SessionToken = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
	}
	return b
}

func (d *Deployment) headers() map[string]string {
	if len(d.Headers) == 0 {
		return nil
	}
	h := make(map[string]string, len(d.Headers))
	for k, v := range d.Headers {
		h[k] = v.Reveal()
	}
	return h
}
