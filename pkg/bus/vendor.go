package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The vendors' HTTP shapes of a job: OpenAI's chat completions and
// Anthropic's Messages. Batch output files (MarshalBatchLine) and the HTTP
// gateway render results with these functions, so that a batch line's body
// and an HTTP response are byte for byte the same object, and both map a
// failure code to the same status.

// VendorError is how OpenAI's and Anthropic's HTTP APIs answer a failure of
// one code: the status and error type (and OpenAI's error code) that their
// SDKs decode.
type VendorError struct {
	// Status is the HTTP status of OpenAI-compatible answers.
	Status int
	// Type and Code are OpenAI's error.type and error.code.
	Type, Code string
	// AnthropicStatus and AnthropicType are Anthropic's status and
	// error.type.
	AnthropicStatus int
	AnthropicType   string
}

// vendorErrors is the one table of HTTP statuses per code. An upstream
// auth failure is the operator's key, never the caller's: it is a 502, so
// that a client does not discard its own valid key. A cancelled job has no
// vendor equivalent; 499 is the de-facto "client closed request".
var vendorErrors = map[ErrorCode]VendorError{
	CodeInvalidRequest:        {400, "invalid_request_error", "invalid_request", 400, "invalid_request_error"},
	CodeUnknownGroup:          {404, "invalid_request_error", "model_not_found", 404, "not_found_error"},
	CodeTooLarge:              {413, "invalid_request_error", "request_too_large", 413, "request_too_large"},
	CodeContextWindowExceeded: {400, "invalid_request_error", "context_length_exceeded", 400, "invalid_request_error"},
	CodeContentPolicy:         {400, "invalid_request_error", "content_policy_violation", 400, "invalid_request_error"},
	CodeRateLimited:           {429, "requests", "rate_limit_exceeded", 429, "rate_limit_error"},
	CodeBudgetExceeded:        {429, "insufficient_quota", "insufficient_quota", 402, "billing_error"},
	CodeProviderUnavailable:   {503, "server_error", "provider_unavailable", 529, "overloaded_error"},
	CodeTimeout:               {504, "server_error", "timeout", 504, "timeout_error"},
	CodeDeadlineExceeded:      {504, "server_error", "deadline_exceeded", 504, "timeout_error"},
	CodeValidationFailed:      {502, "server_error", "validation_failed", 502, "api_error"},
	CodeAuth:                  {502, "server_error", "upstream_auth_failed", 502, "api_error"},
	CodeCancelled:             {499, "invalid_request_error", "cancelled", 499, "invalid_request_error"},
	CodeInternal:              {500, "server_error", "internal", 500, "api_error"},
}

// VendorErrorOf returns the vendors' answer to a failure with code c; an
// unknown code is answered as internal.
func VendorErrorOf(c ErrorCode) VendorError {
	if v, ok := vendorErrors[c]; ok {
		return v
	}
	return vendorErrors[CodeInternal]
}

// ChatCompletion is OpenAI's chat.completion object.
type ChatCompletion struct {
	ID                string                 `json:"id"`
	Object            string                 `json:"object"`
	Created           int64                  `json:"created"`
	Model             string                 `json:"model"`
	Choices           []ChatCompletionChoice `json:"choices"`
	Usage             *Usage                 `json:"usage,omitempty"`
	SystemFingerprint *string                `json:"system_fingerprint"`
}

// ChatCompletionChoice is one choice of a chat.completion (always index 0:
// n > 1 is not supported).
type ChatCompletionChoice struct {
	Index        int                   `json:"index"`
	Message      ChatCompletionMessage `json:"message"`
	Logprobs     *struct{}             `json:"logprobs"`
	FinishReason string                `json:"finish_reason"`
}

// ChatCompletionMessage is the assistant's message of a choice. Content is
// null when the answer is tool calls only.
type ChatCompletionMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	Refusal   *string    `json:"refusal"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// AnswerText is a result's answer as text: the validated JSON of a
// structured-output result (re-encoded, so that a fenced or chatty answer
// becomes plain JSON), else its text.
func AnswerText(r *Result) string {
	if r.JSON != nil {
		if b, err := json.Marshal(r.JSON); err == nil {
			return string(b)
		}
	}
	return r.Text
}

// OpenAIChatCompletion renders a successful result as OpenAI's
// chat.completion, created at the given Unix time; model is the model the
// caller named (the result's own model when empty).
func OpenAIChatCompletion(r *Result, model string, created int64) *ChatCompletion {
	text := AnswerText(r)
	content := &text
	if text == "" && len(r.ToolCalls) > 0 {
		content = nil
	}
	finish := r.FinishReason
	if finish == "" {
		finish = "stop"
	}
	if model == "" {
		model = r.Model
	}
	return &ChatCompletion{
		ID: "chatcmpl-" + r.ID, Object: "chat.completion", Created: created, Model: model,
		Choices: []ChatCompletionChoice{{Message: ChatCompletionMessage{Role: "assistant", Content: content, ToolCalls: r.ToolCalls}, FinishReason: finish}},
		Usage:   r.Usage,
	}
}

// OpenAIErrorBody is OpenAI's error object, {"error": {...}}.
type OpenAIErrorBody struct {
	Error OpenAIError `json:"error"`
}

// OpenAIError is the inside of an OpenAI error body. Param names the
// offending request field, when there is one.
type OpenAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// OpenAIErrorOf renders a failure as OpenAI's error body, with its status.
func OpenAIErrorOf(e *Error) (int, *OpenAIErrorBody) {
	v := VendorErrorOf(e.Code)
	code := v.Code
	return v.Status, &OpenAIErrorBody{Error: OpenAIError{Message: e.Message, Type: v.Type, Code: &code}}
}

// AnthropicMessage is Anthropic's Messages API message object.
type AnthropicMessage struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []map[string]any `json:"content"`
	StopReason   string           `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        AnthropicUsage   `json:"usage"`
}

// AnthropicUsage counts a message's tokens.
type AnthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// AnthropicStopReason maps a finish reason to Anthropic's stop_reason.
func AnthropicStopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls":
		return "tool_use"
	case "content_filter":
		return "refusal"
	case "stop", "":
		return "end_turn"
	}
	return finish
}

// ToolInput decodes a tool call's JSON arguments as Anthropic's tool_use
// input (an object; {} when the arguments are not one).
func ToolInput(arguments string) any {
	var input any = map[string]any{}
	if err := json.Unmarshal([]byte(arguments), &input); err != nil {
		return map[string]any{}
	}
	if _, ok := input.(map[string]any); !ok {
		return map[string]any{}
	}
	return input
}

// AnthropicMessageOf renders a successful result as Anthropic's message;
// model is the model the caller named (the result's own when empty).
func AnthropicMessageOf(r *Result, model string) *AnthropicMessage {
	content := []map[string]any{}
	if text := AnswerText(r); text != "" {
		content = append(content, map[string]any{"type": "text", "text": text})
	}
	for _, tc := range r.ToolCalls {
		content = append(content, map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Function.Name, "input": ToolInput(tc.Function.Arguments)})
	}
	if model == "" {
		model = r.Model
	}
	m := &AnthropicMessage{ID: "msg_" + r.ID, Type: "message", Role: "assistant", Model: model, Content: content, StopReason: AnthropicStopReason(r.FinishReason)}
	if r.Usage != nil {
		m.Usage = AnthropicUsage{InputTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens}
	}
	return m
}

// AnthropicErrorBody is Anthropic's error object, {"type": "error",
// "error": {...}}.
type AnthropicErrorBody struct {
	Type  string         `json:"type"` // "error"
	Error AnthropicError `json:"error"`
}

// AnthropicError is the inside of an Anthropic error body.
type AnthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// AnthropicErrorOf renders a failure as Anthropic's error body, with its
// status.
func AnthropicErrorOf(e *Error) (int, *AnthropicErrorBody) {
	v := VendorErrorOf(e.Code)
	return v.AnthropicStatus, &AnthropicErrorBody{Type: "error", Error: AnthropicError{Type: v.AnthropicType, Message: e.Message}}
}

// AnthropicRequest is the subset of a Messages API request that a job can
// carry. Fields a job cannot honour are kept raw so that a caller can refuse
// them by name (see Unsupported).
type AnthropicRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	System        json.RawMessage    `json:"system"`
	Messages      []anthropicMessage `json:"messages"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	StopSequences []string           `json:"stop_sequences"`
	Stream        bool               `json:"stream"`
	Tools         []anthropicTool    `json:"tools"`
	ToolChoice    *anthropicChoice   `json:"tool_choice"`
	Metadata      map[string]any     `json:"metadata"`

	TopK     json.RawMessage `json:"top_k"`
	Thinking json.RawMessage `json:"thinking"`
}

// Unsupported names the first field set in r that a job cannot honour, or
// "".
func (r *AnthropicRequest) Unsupported() string {
	switch {
	case isSet(r.TopK):
		return "top_k"
	case isSet(r.Thinking) && !bytes.Contains(r.Thinking, []byte(`"disabled"`)):
		return "thinking"
	}
	return ""
}

func isSet(raw json.RawMessage) bool { return len(raw) > 0 && !bytes.Equal(raw, jsonNull) }

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicTool struct {
	Type        string `json:"type"` // "" or "custom" for client tools
	Name        string `json:"name"`
	Description string `json:"description"`
	InputSchema any    `json:"input_schema"`
}

type anthropicChoice struct {
	Type string `json:"type"` // auto | any | tool | none
	Name string `json:"name"`
}

type anthropicBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Source *struct {
		Type      string `json:"type"` // base64 | url
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
	// tool_use (assistant) and tool_result (user)
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
}

// Job converts the request to a job request. Errors name the offending
// field.
func (r *AnthropicRequest) Job() (*Request, error) {
	req := &Request{Model: r.Model, MaxTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP, Stop: r.StopSequences}
	if isSet(r.System) {
		c, err := anthropicText(r.System)
		if err != nil {
			return nil, fmt.Errorf("system: %w", err)
		}
		req.Messages = append(req.Messages, Message{Role: "system", Content: Text(c)})
	}
	if len(r.Messages) == 0 {
		return nil, errors.New("messages: at least one message is required")
	}
	for i, m := range r.Messages {
		msgs, err := anthropicTurn(m)
		if err != nil {
			return nil, fmt.Errorf("messages.%d.content: %w", i, err)
		}
		req.Messages = append(req.Messages, msgs...)
	}
	for i, t := range r.Tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, fmt.Errorf("tools.%d.type: server tool %q is not supported", i, t.Type)
		}
		req.Tools = append(req.Tools, Tool{Type: "function", Function: FunctionSpec{Name: t.Name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if c := r.ToolChoice; c != nil {
		switch c.Type {
		case "auto", "":
			req.ToolChoice = &ToolChoice{Mode: "auto"}
		case "any":
			req.ToolChoice = &ToolChoice{Mode: "required"}
		case "none":
			req.ToolChoice = &ToolChoice{Mode: "none"}
		case "tool":
			req.ToolChoice = &ToolChoice{Mode: "function", Function: c.Name}
		default:
			return nil, fmt.Errorf("tool_choice.type: %q is not auto, any, tool or none", c.Type)
		}
	}
	return req, nil
}

// anthropicTurn converts one message; a user turn with tool results becomes
// one tool message per result, then the rest of the turn.
func anthropicTurn(m anthropicMessage) ([]Message, error) {
	raw := bytes.TrimSpace(m.Content)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return []Message{{Role: m.Role, Content: Text(s)}}, err
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, errors.New("want a string or an array of content blocks")
	}
	var out []Message
	msg := Message{Role: m.Role}
	var parts []Part
	for i, b := range blocks {
		switch {
		case b.Type == "text":
			parts = append(parts, Part{Type: "text", Text: b.Text})
		case b.Type == "image" && b.Source != nil && b.Source.Type == "base64":
			parts = append(parts, Part{Type: "image_url", ImageURL: &ImageURL{URL: "data:" + b.Source.MediaType + ";base64," + b.Source.Data}})
		case b.Type == "image" && b.Source != nil && b.Source.Type == "url":
			parts = append(parts, Part{Type: "image_url", ImageURL: &ImageURL{URL: b.Source.URL}})
		case b.Type == "tool_use":
			args := "{}"
			if isSet(b.Input) {
				args = string(b.Input)
			}
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: b.ID, Type: "function", Function: FunctionCall{Name: b.Name, Arguments: args}})
		case b.Type == "tool_result":
			text := ""
			if isSet(b.Content) {
				var err error
				if text, err = anthropicText(b.Content); err != nil {
					return nil, fmt.Errorf("%d.content: %w", i, err)
				}
			}
			out = append(out, Message{Role: "tool", ToolCallID: b.ToolUseID, Content: Text(text)})
		default:
			return nil, fmt.Errorf("%d.type: content block type %q is not supported (text, image, tool_use, tool_result)", i, b.Type)
		}
	}
	switch {
	case len(parts) == 1 && parts[0].Type == "text":
		msg.Content = Text(parts[0].Text)
	case len(parts) > 0:
		msg.Content = Content{Parts: parts}
	}
	if len(parts) > 0 || len(msg.ToolCalls) > 0 || len(out) == 0 {
		out = append(out, msg)
	}
	return out, nil
}

// anthropicText reads a string or an array of text blocks as one string.
func anthropicText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", errors.New("want a string or an array of text blocks")
	}
	var b strings.Builder
	for i, bl := range blocks {
		if bl.Type != "text" {
			return "", fmt.Errorf("%d.type: %q here must be text", i, bl.Type)
		}
		b.WriteString(bl.Text)
	}
	return b.String(), nil
}
