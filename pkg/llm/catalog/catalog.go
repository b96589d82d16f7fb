package catalog

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Model describes one model. Zero numbers mean unknown.
type Model struct {
	Provider      string  // "openai", "anthropic", "gemini", "groq", ...
	Name          string  // the vendor's model id, or a prefix of dated ids
	ContextWindow int     // tokens the prompt and the answer share
	MaxOutput     int     // tokens the model may generate in one answer
	InputPerMTok  float64 // USD per million prompt tokens
	OutputPerMTok float64 // USD per million completion tokens
	// BatchInputPerMTok and BatchOutputPerMTok are the prices through the
	// vendor's batch API (OpenAI Batch, Anthropic Message Batches, Gemini
	// batch mode); both 0: unknown, and BatchCost charges the list price.
	BatchInputPerMTok  float64
	BatchOutputPerMTok float64
	Tools              bool // function calling
	Vision             bool // image input
	JSONSchema         bool // native structured output (json_schema response format)
}

// Capabilities returns the model's capabilities in pkg/llm's terms.
func (m Model) Capabilities() llm.Capabilities {
	return llm.Capabilities{
		Tools:         m.Tools,
		Vision:        m.Vision,
		JSONSchema:    m.JSONSchema,
		ContextWindow: m.ContextWindow,
		MaxOutput:     m.MaxOutput,
	}
}

// Catalog is an immutable set of models keyed by lower-cased name. The zero
// value is an empty catalogue. A Catalog is safe for concurrent use: With
// returns a new Catalog and never changes its receiver.
type Catalog struct {
	models map[string]Model
}

// New returns a catalogue of the given models; a later model with the same
// name (case-insensitively) replaces an earlier one.
func New(models ...Model) Catalog {
	return Catalog{}.With(models...)
}

// Default is the built-in catalogue (see models.go). Replace it only during
// program initialisation; prefer passing a Catalog built with
// Default.With(...) to the components that need one.
var Default = New(builtin...)

// With returns a copy of c in which each override replaces (entirely) the
// entry of the same name, or is added. Names are matched case-insensitively.
func (c Catalog) With(overrides ...Model) Catalog {
	m := make(map[string]Model, len(c.models)+len(overrides))
	maps.Copy(m, c.models)
	for _, o := range overrides {
		if o.Name == "" {
			continue
		}
		m[strings.ToLower(o.Name)] = o
	}
	return Catalog{models: m}
}

// Len returns the number of entries.
func (c Catalog) Len() int { return len(c.models) }

// Models returns the entries sorted by name.
func (c Catalog) Models() []Model {
	out := slices.Collect(maps.Values(c.models))
	slices.SortFunc(out, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup finds a model by exact name (case-insensitive), then by the longest
// entry that is a prefix of name ending at a word boundary (the next character
// is not a letter or digit), so "gpt-4o-2024-08-06" finds "gpt-4o" but
// "gpt-4o-mini-2024-07-18" finds "gpt-4o-mini". A name with a routing prefix
// such as "openai/gpt-4o" or "models/gemini-2.5-pro" is retried without it.
func (c Catalog) Lookup(name string) (Model, bool) {
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" {
		return Model{}, false
	}
	if m, ok := c.lookup(key); ok {
		return m, true
	}
	if i := strings.LastIndexByte(key, '/'); i >= 0 && i < len(key)-1 {
		return c.lookup(key[i+1:])
	}
	return Model{}, false
}

func (c Catalog) lookup(key string) (Model, bool) {
	if m, ok := c.models[key]; ok {
		return m, true
	}
	var best Model
	bestLen := 0
	for k, m := range c.models {
		if len(k) <= bestLen || !strings.HasPrefix(key, k) {
			continue
		}
		if r, _ := utf8.DecodeRuneInString(key[len(k):]); isAlnum(r) {
			continue // "o3" must not match "o30"
		}
		best, bestLen = m, len(k)
	}
	return best, bestLen > 0
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
}

// Lookup finds a model in the Default catalogue.
func Lookup(name string) (Model, bool) { return Default.Lookup(name) }

// Cost returns the list price in USD of a call with usage u on model m.
func Cost(m Model, u llm.Usage) float64 {
	return (float64(u.PromptTokens)*m.InputPerMTok + float64(u.CompletionTokens)*m.OutputPerMTok) / 1e6
}

// BatchCost returns the price in USD of a call with usage u made through
// m's vendor's batch API: at m's batch prices, or at its list prices when
// the batch prices are unknown (no discount is assumed).
func BatchCost(m Model, u llm.Usage) float64 {
	if m.BatchInputPerMTok == 0 && m.BatchOutputPerMTok == 0 {
		return Cost(m, u)
	}
	return (float64(u.PromptTokens)*m.BatchInputPerMTok + float64(u.CompletionTokens)*m.BatchOutputPerMTok) / 1e6
}

// Token estimate constants, after OpenAI's published accounting for chat
// models: every message costs a few tokens of framing, every reply is primed
// with a few more, and an image costs a fixed amount that depends on its
// detail level (85 tokens at "low", up to 765 for a 1024x1024 image at
// "high"/"auto").
const (
	perMessageTokens = 4
	replyTokens      = 3
	perToolCall      = 8
	charsPerToken    = 4
	imageLowTokens   = 85
	imageTokens      = 765
)

// EstimateTokens returns a cheap estimate of the prompt tokens of msgs:
// about one token per four characters of text, plus a per-message overhead,
// plus a fixed cost per image. It is an estimate, not a tokenizer: it
// undercounts scripts with many tokens per character (CJK) and is meant for
// decisions with a safety margin, such as a context-window fallback before the
// call.
func EstimateTokens(msgs []llm.Message) int {
	n := replyTokens
	for i := range msgs {
		m := &msgs[i]
		n += perMessageTokens
		chars := utf8.RuneCountInString(m.Name) + utf8.RuneCountInString(m.ToolCallID)
		if len(m.Parts) == 0 {
			chars += utf8.RuneCountInString(m.Content)
		}
		for _, p := range m.Parts {
			switch p.Type {
			case llm.PartImage:
				if p.Detail == "low" {
					n += imageLowTokens
				} else {
					n += imageTokens
				}
			default:
				chars += utf8.RuneCountInString(p.Text)
			}
		}
		for _, tc := range m.ToolCalls {
			n += perToolCall
			chars += utf8.RuneCountInString(tc.Name) + utf8.RuneCountInString(tc.Arguments)
		}
		n += (chars + charsPerToken - 1) / charsPerToken
	}
	return n
}
