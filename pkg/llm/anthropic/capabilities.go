package anthropic

import (
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// capTable is a small, local table of Claude model families, matched by
// prefix, longest first. The shared model catalogue (pkg/llm/catalog) is the
// richer source; this table keeps the package usable on its own.
var capTable = []struct {
	prefix string
	caps   llm.Capabilities
}{
	{"claude-opus-4", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 200_000, MaxOutput: 32_000}},
	{"claude-sonnet-4", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 200_000, MaxOutput: 64_000}},
	{"claude-haiku-4", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 200_000, MaxOutput: 64_000}},
	{"claude-3-7-sonnet", llm.Capabilities{Tools: true, Vision: true, ContextWindow: 200_000, MaxOutput: 64_000}},
	{"claude-3-5-sonnet", llm.Capabilities{Tools: true, Vision: true, ContextWindow: 200_000, MaxOutput: 8192}},
	{"claude-3-5-haiku", llm.Capabilities{Tools: true, Vision: true, ContextWindow: 200_000, MaxOutput: 8192}},
	{"claude-3-opus", llm.Capabilities{Tools: true, Vision: true, ContextWindow: 200_000, MaxOutput: 4096}},
	{"claude-3-haiku", llm.Capabilities{Tools: true, Vision: true, ContextWindow: 200_000, MaxOutput: 4096}},
}

// Capabilities implements llm.CapabilityReporter: the shared model catalogue
// first, then a small built-in table
// of Claude families; an unknown model gets the zero value (unknown).
func (c *Client) Capabilities(model string) llm.Capabilities {
	if m, ok := catalog.Lookup(model); ok {
		return m.Capabilities()
	}
	// Bedrock/Vertex style ids ("anthropic.claude-...", inference profiles
	// "us.anthropic.claude-..." or "claude-...@date") carry the same family
	// name.
	m := model
	if _, after, ok := strings.Cut(model, "anthropic."); ok {
		m = after
	}
	for _, e := range capTable {
		if strings.HasPrefix(m, e.prefix) {
			return e.caps
		}
	}
	return llm.Capabilities{}
}
