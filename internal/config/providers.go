package config

import (
	"cmp"
	"context"
	"fmt"
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

// family groups providers by the package that serves them.
func family(provider string) string {
	switch provider {
	case ProviderMock, ProviderAnthropic:
		return provider
	case ProviderBedrock:
		return ProviderAnthropic
	case ProviderGemini, ProviderVertex:
		return ProviderGemini
	}
	if _, ok := openai.Preset(provider); ok || provider == ProviderOpenAI || provider == ProviderAzure {
		return ProviderOpenAI
	}
	return ""
}

// ProviderNames lists every accepted provider name.
func ProviderNames() []string {
	names := []string{ProviderMock, ProviderOpenAI, ProviderAzure, ProviderAnthropic, ProviderGemini, ProviderVertex, ProviderBedrock}
	for _, p := range openai.PresetNames() {
		if !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	return names
}

// check refuses keys that the deployment's provider does not use, and
// missing required ones.
func (d *Deployment) check() *keyErr {
	fam := family(d.Provider)
	if d.Provider == "" {
		return &keyErr{"provider", "required (one of " + strings.Join(ProviderNames(), ", ") + ")"}
	}
	if fam == "" {
		return &keyErr{"provider", fmt.Sprintf("unknown provider %q (want one of %s)", d.Provider, strings.Join(ProviderNames(), ", "))}
	}
	if d.Model == "" && fam != ProviderMock {
		return &keyErr{"model", "required"}
	}
	set := map[string]bool{
		"api_key": d.APIKey != "", "base_url": d.BaseURL != "", "organization": d.Organization != "",
		"project": d.Project != "", "headers": len(d.Headers) > 0, "endpoint": d.Endpoint != "",
		"azure_deployment": d.AzureDeployment != "", "api_version": d.APIVersion != "",
		"location": d.Location != "", "max_tokens": d.MaxTokens != 0, "mock": d.Mock != nil,
		"region": d.Region != "", "aws_access_key_id": d.AWSAccessKeyID != "",
		"aws_secret_access_key": d.AWSSecretAccessKey != "", "aws_session_token": d.AWSSessionToken != "",
	}
	allowed := map[string][]string{
		ProviderMock:      {"mock"},
		ProviderOpenAI:    {"api_key", "base_url", "organization", "project", "headers"},
		ProviderAzure:     {"api_key", "endpoint", "azure_deployment", "api_version", "headers"},
		ProviderAnthropic: {"api_key", "base_url", "headers", "max_tokens"},
		ProviderGemini:    {"api_key", "base_url", "headers"},
		ProviderVertex:    {"api_key", "project", "location", "base_url", "headers"},
		ProviderBedrock: {"region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
			"base_url", "headers", "max_tokens"},
	}
	key := d.Provider
	if fam == ProviderOpenAI && d.Provider != ProviderAzure {
		key = ProviderOpenAI
	}
	for _, k := range slices.Sorted(mapsKeys(set)) {
		if set[k] && !slices.Contains(allowed[key], k) {
			return &keyErr{k, fmt.Sprintf("not used by provider %q", d.Provider)}
		}
	}
	switch d.Provider {
	case ProviderAzure:
		if d.Endpoint == "" {
			return &keyErr{"endpoint", "required for azure (https://<resource>.openai.azure.com)"}
		}
	case ProviderVertex:
		if d.Project == "" || d.Location == "" {
			return &keyErr{"project", "project and location are required for vertex"}
		}
	case ProviderBedrock:
		if d.awsRegion() == "" {
			return &keyErr{"region", "required for bedrock (or set AWS_REGION)"}
		}
		if d.AWSAccessKeyID == "" && d.AWSSecretAccessKey != "" {
			return &keyErr{"aws_access_key_id", "required with aws_secret_access_key"}
		}
	case ProviderMock:
		if d.Mock != nil {
			if err := d.Mock.Validate(); err != nil {
				return &keyErr{"mock", err.Error()}
			}
		}
	}
	if d.MaxTokens < 0 {
		return &keyErr{"max_tokens", "must not be negative"}
	}
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// defaultKeyEnv names the variable a provider's key is read from when the
// deployment names no api_key.
func defaultKeyEnv(provider string) []string {
	switch provider {
	case ProviderOpenAI:
		return []string{"OPENAI_API_KEY"}
	case ProviderAzure:
		return []string{"AZURE_OPENAI_API_KEY"}
	case ProviderAnthropic:
		return []string{"ANTHROPIC_API_KEY"}
	case ProviderGemini:
		return []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"}
	}
	if p, ok := openai.Preset(provider); ok && p.KeyEnv != "" {
		return []string{p.KeyEnv}
	}
	return nil
}

func (d *Deployment) apiKey() string {
	if d.APIKey != "" {
		return d.APIKey.Reveal()
	}
	for _, name := range defaultKeyEnv(d.Provider) {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return ""
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

func (d *Deployment) build(ctx context.Context) (llm.Provider, error) {
	switch family(d.Provider) {
	case ProviderMock:
		var c mock.Config
		if d.Mock != nil {
			c = *d.Mock
		}
		return mock.New(c), nil
	case ProviderOpenAI:
		o := openai.Options{
			APIKey: d.apiKey(), BaseURL: d.BaseURL, Organization: d.Organization, Project: d.Project,
			Headers: d.headers(),
		}
		if d.Provider == ProviderAzure {
			o.AzureEndpoint, o.AzureDeployment, o.AzureAPIVersion = d.Endpoint, d.AzureDeployment, d.APIVersion
		} else if d.Provider != ProviderOpenAI {
			o.Preset = d.Provider
		}
		return openai.New(o)
	case ProviderAnthropic:
		if d.Provider == ProviderBedrock {
			return anthropic.New(anthropic.Options{Bedrock: d.bedrockOptions(), Headers: d.headers(), MaxTokensDefault: d.MaxTokens})
		}
		return anthropic.New(anthropic.Options{APIKey: d.apiKey(), BaseURL: d.BaseURL, Headers: d.headers(), MaxTokensDefault: d.MaxTokens})
	case ProviderGemini:
		o := gemini.Options{APIKey: d.apiKey(), BaseURL: d.BaseURL, Headers: d.headers()}
		if d.Provider == ProviderVertex {
			o.Backend, o.Project, o.Location = "vertex", d.Project, d.Location
		}
		return gemini.New(ctx, o)
	}
	return nil, fmt.Errorf("unknown provider %q", d.Provider)
}
