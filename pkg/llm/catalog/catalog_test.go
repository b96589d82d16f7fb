package catalog_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		want     string // expected entry name; "" means not found
		provider string
	}{
		{in: "gpt-4o", want: "gpt-4o", provider: "openai"},
		{in: "GPT-4o", want: "gpt-4o", provider: "openai"},
		{in: "gpt-4o-2024-08-06", want: "gpt-4o", provider: "openai"},
		{in: "gpt-4o-mini-2024-07-18", want: "gpt-4o-mini", provider: "openai"},
		{in: "gpt-4.1-nano-2025-04-14", want: "gpt-4.1-nano", provider: "openai"},
		{in: "o3-2025-04-16", want: "o3", provider: "openai"},
		{in: "o3-mini-2025-01-31", want: "o3-mini", provider: "openai"},
		{in: "gpt-5-nano", want: "gpt-5-nano", provider: "openai"},
		{in: "claude-sonnet-4-20250514", want: "claude-sonnet-4", provider: "anthropic"},
		{in: "claude-sonnet-4-5-20250929", want: "claude-sonnet-4-5", provider: "anthropic"},
		{in: "claude-3-5-haiku-20241022", want: "claude-3-5-haiku", provider: "anthropic"},
		{in: "claude-3-5-haiku-latest", want: "claude-3-5-haiku", provider: "anthropic"},
		{in: "gemini-2.5-flash-lite", want: "gemini-2.5-flash-lite", provider: "gemini"},
		{in: "gemini-2.0-flash-001", want: "gemini-2.0-flash", provider: "gemini"},
		{in: "models/gemini-2.5-pro", want: "gemini-2.5-pro", provider: "gemini"},
		{in: "openai/gpt-4o-mini", want: "gpt-4o-mini", provider: "openai"},
		{in: "meta-llama/Llama-3.3-70B-Instruct-Turbo", want: "meta-llama/Llama-3.3-70B-Instruct-Turbo", provider: "together"},
		{in: "deepseek-chat", want: "deepseek-chat", provider: "deepseek"},
		// A prefix must end at a word boundary.
		{in: "o30", want: ""},
		{in: "gpt-4", want: ""},
		{in: "", want: ""},
		{in: "no-such-model", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			m, ok := catalog.Lookup(tt.in)
			if tt.want == "" {
				require.False(t, ok, "found %+v", m)
				return
			}
			require.True(t, ok)
			require.Equal(t, tt.want, m.Name)
			require.Equal(t, tt.provider, m.Provider)
		})
	}
}

func TestDefaultEntriesAreComplete(t *testing.T) {
	t.Parallel()
	required := []string{
		"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5", "gpt-5-mini",
		"claude-opus-4", "claude-sonnet-4", "claude-3-5-haiku", "claude-3-7-sonnet", "claude-haiku-4-5", "claude-sonnet-4-5",
		"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash", "llama-3.3-70b-versatile", "deepseek-chat",
	}
	for _, name := range required {
		m, ok := catalog.Default.Lookup(name)
		require.True(t, ok, name)
		require.Equal(t, name, m.Name, "exact entry expected")
	}
	for _, m := range catalog.Default.Models() {
		require.NotEmpty(t, m.Provider, m.Name)
		require.Positive(t, m.ContextWindow, m.Name)
		require.Positive(t, m.InputPerMTok, m.Name)
		require.GreaterOrEqual(t, m.OutputPerMTok, m.InputPerMTok, m.Name)
		require.Equal(t, strings.TrimSpace(m.Name), m.Name)
	}
}

func TestWithOverrides(t *testing.T) {
	t.Parallel()
	base := catalog.Default
	n := base.Len()
	c := base.With(
		catalog.Model{Provider: "openai", Name: "GPT-4o", ContextWindow: 1, InputPerMTok: 1, OutputPerMTok: 2},
		catalog.Model{Provider: "vllm", Name: "qwen2.5-7b-instruct", ContextWindow: 32_768, Tools: true},
		catalog.Model{Name: ""}, // ignored
	)
	require.Equal(t, n+1, c.Len())
	require.Equal(t, n, base.Len(), "With must not change its receiver")

	m, ok := c.Lookup("gpt-4o-2024-11-20")
	require.True(t, ok)
	require.Equal(t, 1, m.ContextWindow)
	require.InDelta(t, 2.0, m.OutputPerMTok, 1e-9)

	orig, ok := base.Lookup("gpt-4o")
	require.True(t, ok)
	require.Equal(t, 128_000, orig.ContextWindow)

	m, ok = c.Lookup("qwen2.5-7b-instruct")
	require.True(t, ok)
	require.Equal(t, "vllm", m.Provider)

	var empty catalog.Catalog
	_, ok = empty.Lookup("gpt-4o")
	require.False(t, ok)
	require.Equal(t, 1, empty.With(catalog.Model{Name: "x"}).Len())
}

func TestCost(t *testing.T) {
	t.Parallel()
	m := catalog.Model{InputPerMTok: 2.50, OutputPerMTok: 10.00}
	tests := []struct {
		name string
		u    llm.Usage
		want float64
	}{
		{"zero", llm.Usage{}, 0},
		{"million in", llm.Usage{PromptTokens: 1_000_000}, 2.50},
		{"million out", llm.Usage{CompletionTokens: 1_000_000}, 10.00},
		{"mixed", llm.Usage{PromptTokens: 1200, CompletionTokens: 300, TotalTokens: 1500}, 1200*2.5/1e6 + 300*10.0/1e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tt.want, catalog.Cost(m, tt.u), 1e-12)
		})
	}

	mini, ok := catalog.Lookup("gpt-4o-mini")
	require.True(t, ok)
	require.InDelta(t, 0.15+0.60, catalog.Cost(mini, llm.Usage{PromptTokens: 1e6, CompletionTokens: 1e6}), 1e-9)
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	m, ok := catalog.Lookup("deepseek-chat")
	require.True(t, ok)
	c := m.Capabilities()
	require.True(t, c.Tools)
	require.False(t, c.Vision)
	require.False(t, c.JSONSchema)
	require.Equal(t, 128_000, c.ContextWindow)
	require.Equal(t, 8_192, c.MaxOutput)
}

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	text400 := strings.Repeat("abcd", 100) // 400 chars -> 100 tokens
	tests := []struct {
		name string
		msgs []llm.Message
		want int
	}{
		{"empty", nil, 3},
		{"one message", []llm.Message{{Role: llm.RoleUser, Content: text400}}, 3 + 4 + 100},
		{"rounds up", []llm.Message{{Role: llm.RoleUser, Content: "hello"}}, 3 + 4 + 2},
		{"runes not bytes", []llm.Message{{Role: llm.RoleUser, Content: "héllo"}}, 3 + 4 + 2},
		{"two messages", []llm.Message{
			{Role: llm.RoleSystem, Content: text400},
			{Role: llm.RoleUser, Content: text400},
		}, 3 + 2*(4+100)},
		{"parts replace content", []llm.Message{{Role: llm.RoleUser, Content: "ignored ignored", Parts: []llm.Part{
			{Type: llm.PartText, Text: text400},
			{Type: llm.PartImage, ImageURL: "https://x/y.png"},
			{Type: llm.PartImage, ImageURL: "https://x/z.png", Detail: "low"},
		}}}, 3 + 4 + 100 + 765 + 85},
		{"tool calls", []llm.Message{{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{
			{ID: "c1", Name: "get", Arguments: `{"city":"Paris"}`}, // 3 + 16 chars
		}}}, 3 + 4 + 8 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, catalog.EstimateTokens(tt.msgs))
		})
	}
}

func TestBatchCost(t *testing.T) {
	t.Parallel()
	u := llm.Usage{PromptTokens: 2_000_000, CompletionTokens: 1_000_000}
	m := catalog.Model{InputPerMTok: 2.50, OutputPerMTok: 10.00, BatchInputPerMTok: 1.25, BatchOutputPerMTok: 5.00}
	require.InDelta(t, 2*1.25+5.00, catalog.BatchCost(m, u), 1e-12)
	m.BatchInputPerMTok, m.BatchOutputPerMTok = 0, 0
	require.InDelta(t, catalog.Cost(m, u), catalog.BatchCost(m, u), 1e-12, "no batch price known: the list price, no discount assumed")
}

// TestPricesAreSourced holds the table to what its sources say: every entry
// names a vendor with a price source, and the vendors whose batch page
// states a 50% discount have batch prices of exactly half the list price.
func TestPricesAreSourced(t *testing.T) {
	t.Parallel()
	require.Regexp(t, `^\d{4}-\d{2}-\d{2}$`, catalog.PricesAsOf)
	for _, m := range catalog.Default.Models() {
		src, ok := catalog.PriceSources(m.Provider)
		require.True(t, ok, "%s: provider %q has no price source", m.Name, m.Provider)
		require.True(t, strings.HasPrefix(src.Page, "https://"), m.Provider)
		require.NotEmpty(t, src.Note, m.Provider)
		if src.BatchPage == "" {
			require.Zero(t, m.BatchInputPerMTok+m.BatchOutputPerMTok, "%s: a batch price without a batch source", m.Name)
			continue
		}
		require.InDelta(t, m.InputPerMTok/2, m.BatchInputPerMTok, 1e-9, m.Name)
		require.InDelta(t, m.OutputPerMTok/2, m.BatchOutputPerMTok, 1e-9, m.Name)
	}
}
