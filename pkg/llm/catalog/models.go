package catalog

// builtin holds the default entries.
//
// Prices are the vendors' public list prices in USD per million tokens at the
// time of writing (standard tier, no batch or cached-input discounts; Gemini
// 2.5 Pro at its <=200k-token prompt rate). They change: override them with
// Catalog.With from configuration rather than editing this table in a hurry.
// Entries that exist only to stop a prefix match from picking a wrongly priced
// sibling (gpt-5-nano under gpt-5, o3-mini under o3, ...) are listed as well.
var builtin = []Model{
	// OpenAI
	{Provider: "openai", Name: "gpt-4o", ContextWindow: 128_000, MaxOutput: 16_384, InputPerMTok: 2.50, OutputPerMTok: 10.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4o-mini", ContextWindow: 128_000, MaxOutput: 16_384, InputPerMTok: 0.15, OutputPerMTok: 0.60, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4.1", ContextWindow: 1_047_576, MaxOutput: 32_768, InputPerMTok: 2.00, OutputPerMTok: 8.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4.1-mini", ContextWindow: 1_047_576, MaxOutput: 32_768, InputPerMTok: 0.40, OutputPerMTok: 1.60, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4.1-nano", ContextWindow: 1_047_576, MaxOutput: 32_768, InputPerMTok: 0.10, OutputPerMTok: 0.40, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "o3", ContextWindow: 200_000, MaxOutput: 100_000, InputPerMTok: 2.00, OutputPerMTok: 8.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "o3-mini", ContextWindow: 200_000, MaxOutput: 100_000, InputPerMTok: 1.10, OutputPerMTok: 4.40, Tools: true, Vision: false, JSONSchema: true},
	{Provider: "openai", Name: "o4-mini", ContextWindow: 200_000, MaxOutput: 100_000, InputPerMTok: 1.10, OutputPerMTok: 4.40, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-5", ContextWindow: 400_000, MaxOutput: 128_000, InputPerMTok: 1.25, OutputPerMTok: 10.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-5-mini", ContextWindow: 400_000, MaxOutput: 128_000, InputPerMTok: 0.25, OutputPerMTok: 2.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-5-nano", ContextWindow: 400_000, MaxOutput: 128_000, InputPerMTok: 0.05, OutputPerMTok: 0.40, Tools: true, Vision: true, JSONSchema: true},

	// Anthropic. Native JSON-schema output is not assumed: the anthropic
	// provider emulates structured output with a forced tool call.
	{Provider: "anthropic", Name: "claude-opus-4", ContextWindow: 200_000, MaxOutput: 32_000, InputPerMTok: 15.00, OutputPerMTok: 75.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-opus-4-1", ContextWindow: 200_000, MaxOutput: 32_000, InputPerMTok: 15.00, OutputPerMTok: 75.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-opus-4-5", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 5.00, OutputPerMTok: 25.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-sonnet-4", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 3.00, OutputPerMTok: 15.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-sonnet-4-5", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 3.00, OutputPerMTok: 15.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-3-7-sonnet", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 3.00, OutputPerMTok: 15.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-3-5-haiku", ContextWindow: 200_000, MaxOutput: 8_192, InputPerMTok: 0.80, OutputPerMTok: 4.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-haiku-4-5", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 1.00, OutputPerMTok: 5.00, Tools: true, Vision: true},

	// Google Gemini
	{Provider: "gemini", Name: "gemini-2.5-pro", ContextWindow: 1_048_576, MaxOutput: 65_536, InputPerMTok: 1.25, OutputPerMTok: 10.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.5-flash", ContextWindow: 1_048_576, MaxOutput: 65_536, InputPerMTok: 0.30, OutputPerMTok: 2.50, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.5-flash-lite", ContextWindow: 1_048_576, MaxOutput: 65_536, InputPerMTok: 0.10, OutputPerMTok: 0.40, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.0-flash", ContextWindow: 1_048_576, MaxOutput: 8_192, InputPerMTok: 0.10, OutputPerMTok: 0.40, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.0-flash-lite", ContextWindow: 1_048_576, MaxOutput: 8_192, InputPerMTok: 0.075, OutputPerMTok: 0.30, Tools: true, Vision: true, JSONSchema: true},

	// Open models on OpenAI-compatible hosts.
	{Provider: "groq", Name: "llama-3.3-70b-versatile", ContextWindow: 131_072, MaxOutput: 32_768, InputPerMTok: 0.59, OutputPerMTok: 0.79, Tools: true},
	{Provider: "groq", Name: "llama-3.1-8b-instant", ContextWindow: 131_072, InputPerMTok: 0.05, OutputPerMTok: 0.08, Tools: true},
	{Provider: "together", Name: "meta-llama/Llama-3.3-70B-Instruct-Turbo", ContextWindow: 131_072, InputPerMTok: 0.88, OutputPerMTok: 0.88, Tools: true},
	{Provider: "deepseek", Name: "deepseek-chat", ContextWindow: 128_000, MaxOutput: 8_192, InputPerMTok: 0.28, OutputPerMTok: 0.42, Tools: true},
}
