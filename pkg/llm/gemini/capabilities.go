package gemini

import (
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// capTable is a small, local table of Gemini model families, matched by
// prefix in order (longest first where prefixes overlap). The shared model
// catalogue (pkg/llm/catalog) is the richer source; this table keeps the
// package usable on its own.
var capTable = []struct {
	prefix string
	caps   llm.Capabilities
}{
	{"gemini-2.5-flash-lite", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 1_048_576, MaxOutput: 65_536}},
	{"gemini-2.5-flash", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 1_048_576, MaxOutput: 65_536}},
	{"gemini-2.5-pro", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 1_048_576, MaxOutput: 65_536}},
	{"gemini-3", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 1_048_576, MaxOutput: 65_536}},
	{"gemini-2.0-flash", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 1_048_576, MaxOutput: 8192}},
	{"gemini-1.5-pro", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 2_097_152, MaxOutput: 8192}},
	{"gemini-1.5-flash", llm.Capabilities{Tools: true, Vision: true, JSONSchema: true, ContextWindow: 1_048_576, MaxOutput: 8192}},
}

// Capabilities implements llm.CapabilityReporter: the shared model catalogue
// first, then a small built-in table
// of Gemini families; an unknown model gets the zero value (unknown).
func (c *Client) Capabilities(model string) llm.Capabilities {
	if m, ok := catalog.Lookup(model); ok {
		return m.Capabilities()
	}
	m := strings.TrimPrefix(model, "models/")
	for _, e := range capTable {
		if strings.HasPrefix(m, e.prefix) {
			return e.caps
		}
	}
	return llm.Capabilities{}
}
