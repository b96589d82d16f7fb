package catalog

// PricesAsOf is the day the built-in prices below were last transcribed and
// checked against their sources (see PriceSources). They were copied by
// hand: nothing here fetches a price, and a vendor that changed a price
// since is not reflected until someone edits this table.
const PricesAsOf = "2026-12-01"

// PriceSource says where the prices of one vendor's entries come from, and
// how far they were checked.
type PriceSource struct {
	// Page is the vendor's page the list prices are from.
	Page string
	// BatchPage is the vendor's page that states the batch API's discount
	// (the Batch* prices); "" when the vendor has no batch API here.
	BatchPage string
	// Checked is the day the prices were compared with Page, "" when they
	// were not (see Note).
	Checked string
	// Note says what was and was not checked.
	Note string
}

// priceSources are the sources of the built-in table, by Provider.
var priceSources = map[string]PriceSource{
	"anthropic": {
		Page:      "https://platform.claude.com/docs/zh-CN/about-claude/pricing",
		BatchPage: "https://docs.anthropic.com/en/docs/build-with-claude/batch-processing",
		Checked:   "2026-12-01",
		Note: "list prices compared with the pricing page's model table (its zh-CN copy, the one read) and the batch prices with the " +
			"batch-processing page's 'Batch input / Batch output' table (Opus 4/4.1 $7.50/$37.50, Sonnet 4 and 3.7 " +
			"$1.50/$7.50, Haiku 3.5 $0.40/$2), as held in the reference corpus read on 2026-12-01; the other " +
			"batch prices are the 50% discount the model pages state",
	},
	"openai": {
		Page:      "https://openai.com/api/pricing",
		BatchPage: "https://developers.openai.com/api/docs/guides/batch",
		Note: "list prices carried over from this table's first version (2026-11-25), which did not record " +
			"its source; NOT re-checked on 2026-12-01: neither page was readable from this build (no network; the " +
			"reference corpus held no copy). The batch prices are the Batch API's documented 50% discount on " +
			"input and output",
	},
	"gemini": {
		Page:      "https://ai.google.dev/gemini-api/docs/pricing",
		BatchPage: "https://ai.google.dev/gemini-api/docs/batch-mode",
		Note: "list prices carried over from this table's first version (2026-11-25; Gemini 2.5 Pro at its " +
			"<=200k-token prompt rate); NOT re-checked against the pricing page on 2026-12-01. The batch prices " +
			"are the batch-mode page's '50% of the standard cost', read in the reference corpus on 2026-12-01",
	},
	"groq":     {Page: "https://groq.com/pricing", Note: "carried over from the first version; not re-checked"},
	"together": {Page: "https://www.together.ai/pricing", Note: "carried over from the first version; not re-checked"},
	"deepseek": {Page: "https://api-docs.deepseek.com/quick_start/pricing", Note: "carried over from the first version; not re-checked"},
}

// PriceSources returns where the built-in prices of provider's entries
// come from.
func PriceSources(provider string) (PriceSource, bool) {
	s, ok := priceSources[provider]
	return s, ok
}

// builtin holds the default entries.
//
// Prices are the vendors' public list prices in USD per million tokens
// (standard tier, no cached-input discounts; Gemini 2.5 Pro at its
// <=200k-token prompt rate) as of PricesAsOf, from the pages PriceSources
// names, with the batch APIs' prices beside them. They change: override
// them per deployment in the model file (input_cost_per_mtok, ...) rather
// than editing this table in a hurry. Entries that exist only to stop a
// prefix match from picking a wrongly priced sibling (gpt-5-nano under
// gpt-5, o3-mini under o3, ...) are listed as well.
var builtin = []Model{
	// OpenAI
	{Provider: "openai", Name: "gpt-4o", ContextWindow: 128_000, MaxOutput: 16_384, InputPerMTok: 2.50, OutputPerMTok: 10.00, BatchInputPerMTok: 1.25, BatchOutputPerMTok: 5.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4o-mini", ContextWindow: 128_000, MaxOutput: 16_384, InputPerMTok: 0.15, OutputPerMTok: 0.60, BatchInputPerMTok: 0.075, BatchOutputPerMTok: 0.30, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4.1", ContextWindow: 1_047_576, MaxOutput: 32_768, InputPerMTok: 2.00, OutputPerMTok: 8.00, BatchInputPerMTok: 1.00, BatchOutputPerMTok: 4.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4.1-mini", ContextWindow: 1_047_576, MaxOutput: 32_768, InputPerMTok: 0.40, OutputPerMTok: 1.60, BatchInputPerMTok: 0.20, BatchOutputPerMTok: 0.80, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-4.1-nano", ContextWindow: 1_047_576, MaxOutput: 32_768, InputPerMTok: 0.10, OutputPerMTok: 0.40, BatchInputPerMTok: 0.05, BatchOutputPerMTok: 0.20, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "o3", ContextWindow: 200_000, MaxOutput: 100_000, InputPerMTok: 2.00, OutputPerMTok: 8.00, BatchInputPerMTok: 1.00, BatchOutputPerMTok: 4.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "o3-mini", ContextWindow: 200_000, MaxOutput: 100_000, InputPerMTok: 1.10, OutputPerMTok: 4.40, BatchInputPerMTok: 0.55, BatchOutputPerMTok: 2.20, Tools: true, Vision: false, JSONSchema: true},
	{Provider: "openai", Name: "o4-mini", ContextWindow: 200_000, MaxOutput: 100_000, InputPerMTok: 1.10, OutputPerMTok: 4.40, BatchInputPerMTok: 0.55, BatchOutputPerMTok: 2.20, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-5", ContextWindow: 400_000, MaxOutput: 128_000, InputPerMTok: 1.25, OutputPerMTok: 10.00, BatchInputPerMTok: 0.625, BatchOutputPerMTok: 5.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-5-mini", ContextWindow: 400_000, MaxOutput: 128_000, InputPerMTok: 0.25, OutputPerMTok: 2.00, BatchInputPerMTok: 0.125, BatchOutputPerMTok: 1.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "openai", Name: "gpt-5-nano", ContextWindow: 400_000, MaxOutput: 128_000, InputPerMTok: 0.05, OutputPerMTok: 0.40, BatchInputPerMTok: 0.025, BatchOutputPerMTok: 0.20, Tools: true, Vision: true, JSONSchema: true},

	// Anthropic. Native JSON-schema output is not assumed: the anthropic
	// provider emulates structured output with a forced tool call.
	{Provider: "anthropic", Name: "claude-opus-4", ContextWindow: 200_000, MaxOutput: 32_000, InputPerMTok: 15.00, OutputPerMTok: 75.00, BatchInputPerMTok: 7.50, BatchOutputPerMTok: 37.50, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-opus-4-1", ContextWindow: 200_000, MaxOutput: 32_000, InputPerMTok: 15.00, OutputPerMTok: 75.00, BatchInputPerMTok: 7.50, BatchOutputPerMTok: 37.50, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-opus-4-5", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 5.00, OutputPerMTok: 25.00, BatchInputPerMTok: 2.50, BatchOutputPerMTok: 12.50, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-sonnet-4", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 3.00, OutputPerMTok: 15.00, BatchInputPerMTok: 1.50, BatchOutputPerMTok: 7.50, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-sonnet-4-5", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 3.00, OutputPerMTok: 15.00, BatchInputPerMTok: 1.50, BatchOutputPerMTok: 7.50, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-3-7-sonnet", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 3.00, OutputPerMTok: 15.00, BatchInputPerMTok: 1.50, BatchOutputPerMTok: 7.50, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-3-5-haiku", ContextWindow: 200_000, MaxOutput: 8_192, InputPerMTok: 0.80, OutputPerMTok: 4.00, BatchInputPerMTok: 0.40, BatchOutputPerMTok: 2.00, Tools: true, Vision: true},
	{Provider: "anthropic", Name: "claude-haiku-4-5", ContextWindow: 200_000, MaxOutput: 64_000, InputPerMTok: 1.00, OutputPerMTok: 5.00, BatchInputPerMTok: 0.50, BatchOutputPerMTok: 2.50, Tools: true, Vision: true},

	// Google Gemini
	{Provider: "gemini", Name: "gemini-2.5-pro", ContextWindow: 1_048_576, MaxOutput: 65_536, InputPerMTok: 1.25, OutputPerMTok: 10.00, BatchInputPerMTok: 0.625, BatchOutputPerMTok: 5.00, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.5-flash", ContextWindow: 1_048_576, MaxOutput: 65_536, InputPerMTok: 0.30, OutputPerMTok: 2.50, BatchInputPerMTok: 0.15, BatchOutputPerMTok: 1.25, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.5-flash-lite", ContextWindow: 1_048_576, MaxOutput: 65_536, InputPerMTok: 0.10, OutputPerMTok: 0.40, BatchInputPerMTok: 0.05, BatchOutputPerMTok: 0.20, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.0-flash", ContextWindow: 1_048_576, MaxOutput: 8_192, InputPerMTok: 0.10, OutputPerMTok: 0.40, BatchInputPerMTok: 0.05, BatchOutputPerMTok: 0.20, Tools: true, Vision: true, JSONSchema: true},
	{Provider: "gemini", Name: "gemini-2.0-flash-lite", ContextWindow: 1_048_576, MaxOutput: 8_192, InputPerMTok: 0.075, OutputPerMTok: 0.30, BatchInputPerMTok: 0.0375, BatchOutputPerMTok: 0.15, Tools: true, Vision: true, JSONSchema: true},

	// Open models on OpenAI-compatible hosts.
	{Provider: "groq", Name: "llama-3.3-70b-versatile", ContextWindow: 131_072, MaxOutput: 32_768, InputPerMTok: 0.59, OutputPerMTok: 0.79, Tools: true},
	{Provider: "groq", Name: "llama-3.1-8b-instant", ContextWindow: 131_072, InputPerMTok: 0.05, OutputPerMTok: 0.08, Tools: true},
	{Provider: "together", Name: "meta-llama/Llama-3.3-70B-Instruct-Turbo", ContextWindow: 131_072, InputPerMTok: 0.88, OutputPerMTok: 0.88, Tools: true},
	{Provider: "deepseek", Name: "deepseek-chat", ContextWindow: 128_000, MaxOutput: 8_192, InputPerMTok: 0.28, OutputPerMTok: 0.42, Tools: true},
}
