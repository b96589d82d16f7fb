package llm

import "encoding/json"

// Role is the author of a Message.
type Role string

// The roles of a chat conversation.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Message is one turn of a conversation.
//
// Content holds plain text. Parts, when not empty, replace Content with a
// multimodal body (text and images); providers that take a single string join
// the text parts.
type Message struct {
	Role       Role
	Content    string
	Parts      []Part
	Name       string
	ToolCallID string     // for RoleTool: the call this message answers
	ToolCalls  []ToolCall // for RoleAssistant: the calls the model made
}

// Text returns the message's text: Content, or the text parts joined by
// newlines when the message is multimodal.
func (m *Message) Text() string {
	if len(m.Parts) == 0 {
		return m.Content
	}
	var n int
	var s string
	for _, p := range m.Parts {
		if p.Type != PartText {
			continue
		}
		if n > 0 {
			s += "\n"
		}
		s += p.Text
		n++
	}
	return s
}

// PartType says what a Part holds.
type PartType string

// Part types.
const (
	PartText  PartType = "text"
	PartImage PartType = "image_url"
)

// Part is one piece of a multimodal message.
type Part struct {
	Type PartType
	Text string
	// ImageURL is an https URL or a data URL (data:image/png;base64,...).
	ImageURL string
	// Detail is OpenAI's image detail hint (auto, low, high); others ignore it.
	Detail string
}

// ToolCall is a function call made by the model. Arguments is a complete JSON
// object.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Tool is a function the model may call. Parameters is a JSON Schema object.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
	Strict      bool
}

// ToolChoiceMode says whether and how the model must call a tool.
type ToolChoiceMode string

// Tool choice modes.
const (
	ToolChoiceAuto     ToolChoiceMode = "auto"
	ToolChoiceNone     ToolChoiceMode = "none"
	ToolChoiceRequired ToolChoiceMode = "required"
	ToolChoiceFunction ToolChoiceMode = "function" // Name must be set
)

// ToolChoice constrains tool use.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
}

// FormatType is the kind of output a request asks for.
type FormatType string

// Response formats.
const (
	FormatText       FormatType = "text"
	FormatJSONObject FormatType = "json_object"
	FormatJSONSchema FormatType = "json_schema"
)

// ResponseFormat asks for text, any JSON object, or JSON matching Schema.
type ResponseFormat struct {
	Type   FormatType
	Name   string          // schema name (json_schema only)
	Schema json.RawMessage // JSON Schema (json_schema only)
	Strict bool
}

// Request is one chat completion call to one deployment.
//
// Model is the provider's model id; the router sets it from the deployment.
// Optional numeric parameters are pointers so that "not set" differs from 0.
type Request struct {
	Model          string
	Messages       []Message
	Temperature    *float64
	TopP           *float64
	MaxTokens      int // 0: the provider's default
	Stop           []string
	Seed           *int64
	ResponseFormat *ResponseFormat
	Tools          []Tool
	ToolChoice     *ToolChoice
	// MaxOutput is the most tokens the deployment's model writes in one
	// answer, from the router's record of the model (0: unknown). It is not
	// sent: a provider that must send a max_tokens (Anthropic) keeps its
	// default within it.
	MaxOutput int
}

// HasImages reports whether any message carries an image part.
func (r *Request) HasImages() bool {
	for i := range r.Messages {
		for _, p := range r.Messages[i].Parts {
			if p.Type == PartImage {
				return true
			}
		}
	}
	return false
}

// FinishReason says why the model stopped.
type FinishReason string

// Finish reasons, normalised across vendors to OpenAI's names.
const (
	FinishStop          FinishReason = "stop"
	FinishLength        FinishReason = "length"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishContentFilter FinishReason = "content_filter"
)

// Usage counts tokens of one call.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	TotalTokens      int
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		PromptTokens:     u.PromptTokens + o.PromptTokens,
		CompletionTokens: u.CompletionTokens + o.CompletionTokens,
		TotalTokens:      u.TotalTokens + o.TotalTokens,
	}
}

// ToolCallDelta is a fragment of a streamed tool call. The first fragment of a
// call carries its Index, ID and Name; later ones with the same Index append
// to Arguments.
type ToolCallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}

// Chunk is one piece of a streamed answer. Any field may be empty; the last
// chunk of a clean stream has FinishReason set.
type Chunk struct {
	Delta        string
	ToolCalls    []ToolCallDelta
	FinishReason FinishReason
	Usage        *Usage
}
