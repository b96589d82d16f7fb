package openai

import (
	"maps"
	"slices"
	"strings"
)

// PresetInfo describes an OpenAI-compatible vendor.
type PresetInfo struct {
	// BaseURL is the vendor's documented chat completions base URL (the
	// SDK appends "chat/completions"). Empty for azure, whose URL is built
	// from Options.AzureEndpoint.
	BaseURL string
	// KeyEnv names the environment variable the vendor's own tools read the
	// API key from; empty for local servers, which need no key. This package
	// never reads it: the caller resolves the key and sets Options.APIKey.
	KeyEnv string
	// LegacyMaxTokens is set for servers that take "max_tokens" rather than
	// "max_completion_tokens"; see Options.LegacyMaxTokens.
	LegacyMaxTokens bool
	// Local is set for servers that usually run next to the worker.
	Local bool
}

var presets = map[string]PresetInfo{
	"openai":     {BaseURL: "https://api.openai.com/v1", KeyEnv: "OPENAI_API_KEY"},
	"azure":      {KeyEnv: "AZURE_OPENAI_API_KEY"},
	"groq":       {BaseURL: "https://api.groq.com/openai/v1", KeyEnv: "GROQ_API_KEY"},
	"deepseek":   {BaseURL: "https://api.deepseek.com/v1", KeyEnv: "DEEPSEEK_API_KEY", LegacyMaxTokens: true},
	"together":   {BaseURL: "https://api.together.xyz/v1", KeyEnv: "TOGETHER_API_KEY", LegacyMaxTokens: true},
	"mistral":    {BaseURL: "https://api.mistral.ai/v1", KeyEnv: "MISTRAL_API_KEY", LegacyMaxTokens: true},
	"openrouter": {BaseURL: "https://openrouter.ai/api/v1", KeyEnv: "OPENROUTER_API_KEY", LegacyMaxTokens: true},
	"fireworks":  {BaseURL: "https://api.fireworks.ai/inference/v1", KeyEnv: "FIREWORKS_API_KEY", LegacyMaxTokens: true},
	"vllm":       {BaseURL: "http://localhost:8000/v1", LegacyMaxTokens: true, Local: true},
	"ollama":     {BaseURL: "http://localhost:11434/v1", LegacyMaxTokens: true, Local: true},
	"lmstudio":   {BaseURL: "http://localhost:1234/v1", LegacyMaxTokens: true, Local: true},
}

// Preset returns the settings of a known OpenAI-compatible vendor by name
// (case-insensitive): openai, azure, groq, deepseek, together, mistral,
// openrouter, fireworks, vllm, ollama, lmstudio.
func Preset(name string) (PresetInfo, bool) {
	p, ok := presets[strings.ToLower(strings.TrimSpace(name))]
	return p, ok
}

// PresetNames returns the names Preset knows, sorted.
func PresetNames() []string {
	return slices.Sorted(maps.Keys(presets))
}
