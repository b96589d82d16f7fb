package worker

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
)

// invalid is a bad-input error: the job is answered invalid_request and
// never retried.
type invalid struct{ msg string }

func (e *invalid) Error() string { return e.msg }

func invalidf(format string, args ...any) error { return &invalid{fmt.Sprintf(format, args...)} }

// toLLM checks a wire request and converts it to the provider-neutral form.
func toLLM(r *bus.Request) (*llm.Request, error) {
	if len(r.Messages) == 0 {
		return nil, invalidf("messages: at least one message is required")
	}
	out := &llm.Request{
		Messages:    make([]llm.Message, 0, len(r.Messages)),
		Temperature: r.Temperature,
		TopP:        r.TopP,
		Stop:        r.Stop,
		Seed:        r.Seed,
	}
	if t := r.Temperature; t != nil && (*t < 0 || *t > 2) {
		return nil, invalidf("temperature: %v is outside [0, 2]", *t)
	}
	if p := r.TopP; p != nil && (*p < 0 || *p > 1) {
		return nil, invalidf("top_p: %v is outside [0, 1]", *p)
	}
	maxTok := r.MaxTokens
	if maxTok == nil {
		maxTok = r.MaxCompletionTokens
	}
	if maxTok != nil {
		if *maxTok < 1 {
			return nil, invalidf("max_tokens: %d must be at least 1", *maxTok)
		}
		out.MaxTokens = *maxTok
	}
	if len(r.Stop) > 4 {
		return nil, invalidf("stop: at most 4 sequences, got %d", len(r.Stop))
	}
	for i := range r.Messages {
		m, err := toMessage(&r.Messages[i])
		if err != nil {
			return nil, invalidf("messages[%d].%v", i, err)
		}
		out.Messages = append(out.Messages, m)
	}
	if rf := r.ResponseFormat; rf != nil {
		f, err := toFormat(rf)
		if err != nil {
			return nil, invalidf("response_format: %v", err)
		}
		out.ResponseFormat = f
	}
	if err := toTools(r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// toTools converts the request's tools and tool choice into out.
func toTools(r *bus.Request, out *llm.Request) error {
	for i, t := range r.Tools {
		if t.Type != "" && t.Type != "function" {
			return invalidf("tools[%d].type: %q is not supported (want function)", i, t.Type)
		}
		if t.Function.Name == "" {
			return invalidf("tools[%d].function.name: required", i)
		}
		tool := llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Strict: t.Function.Strict}
		if t.Function.Parameters != nil {
			p, err := toJSON(t.Function.Parameters)
			if err != nil {
				return invalidf("tools[%d].function.parameters: %v", i, err)
			}
			tool.Parameters = p
		}
		out.Tools = append(out.Tools, tool)
	}
	if tc := r.ToolChoice; tc != nil {
		switch tc.Mode {
		case "auto", "none", "required":
			out.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceMode(tc.Mode)}
		case "function":
			found := false
			for _, t := range out.Tools {
				found = found || t.Name == tc.Function
			}
			if !found {
				return invalidf("tool_choice: function %q is not among the tools", tc.Function)
			}
			out.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceFunction, Name: tc.Function}
		default:
			return invalidf("tool_choice: %q is not auto, none, required or a function", tc.Mode)
		}
		if tc.Mode != "none" && len(out.Tools) == 0 {
			return invalidf("tool_choice: set without tools")
		}
	}
	return nil
}

func toMessage(m *bus.Message) (llm.Message, error) {
	out := llm.Message{Name: m.Name, ToolCallID: m.ToolCallID, Content: m.Content.Text}
	switch m.Role {
	case "system", "developer":
		out.Role = llm.RoleSystem
	case "user":
		out.Role = llm.RoleUser
	case "assistant":
		out.Role = llm.RoleAssistant
	case "tool":
		out.Role = llm.RoleTool
		if m.ToolCallID == "" {
			return out, fmt.Errorf("tool_call_id: required on tool messages")
		}
	case "":
		return out, fmt.Errorf("role: required")
	default:
		return out, fmt.Errorf("role: %q is not system, user, assistant or tool", m.Role)
	}
	for i, p := range m.Content.Parts {
		switch p.Type {
		case "text":
			out.Parts = append(out.Parts, llm.Part{Type: llm.PartText, Text: p.Text})
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return out, fmt.Errorf("content[%d].image_url.url: required", i)
			}
			u := p.ImageURL.URL
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "data:image/") {
				return out, fmt.Errorf("content[%d].image_url.url: want an http(s) URL or a data:image/... URL", i)
			}
			out.Parts = append(out.Parts, llm.Part{Type: llm.PartImage, ImageURL: u, Detail: p.ImageURL.Detail})
		default:
			return out, fmt.Errorf("content[%d].type: %q is not text or image_url", i, p.Type)
		}
	}
	if len(m.ToolCalls) > 0 && out.Role != llm.RoleAssistant {
		return out, fmt.Errorf("tool_calls: only assistant messages carry tool calls")
	}
	for i, tc := range m.ToolCalls {
		if tc.ID == "" || tc.Function.Name == "" {
			return out, fmt.Errorf("tool_calls[%d]: id and function.name are required", i)
		}
		out.ToolCalls = append(out.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	return out, nil
}

func toFormat(rf *bus.ResponseFormat) (*llm.ResponseFormat, error) {
	switch rf.Type {
	case "", "text":
		return nil, nil
	case "json_object":
		return &llm.ResponseFormat{Type: llm.FormatJSONObject}, nil
	case "json_schema":
		if rf.JSONSchema == nil || rf.JSONSchema.Schema == nil {
			return nil, fmt.Errorf("json_schema.schema: required")
		}
		s, err := toJSON(rf.JSONSchema.Schema)
		if err != nil {
			return nil, fmt.Errorf("json_schema.schema: %w", err)
		}
		return &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: rf.JSONSchema.Name, Schema: s, Strict: rf.JSONSchema.Strict}, nil
	}
	return nil, fmt.Errorf("type: %q is not text, json_object or json_schema", rf.Type)
}

// toJSON turns a decoded JSON or msgpack value (maps, slices, scalars) into
// JSON text.
func toJSON(v any) (json.RawMessage, error) {
	b, err := json.Marshal(normalize(v))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// normalize turns msgpack's map[any]any into map[string]any so that
// encoding/json can encode it.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	}
	return v
}

// deadlineOf returns the job's deadline: the earlier of its deadline field
// and its publication time plus timeout_ms. The zero time means none. A
// timeout_ms outside [1, bus.MaxTimeout] or a deadline later than
// publication plus bus.MaxTimeout is invalid; a deadline in the past is a deadline (the job
// is answered deadline_exceeded).
func deadlineOf(r *bus.Request, published time.Time) (time.Time, error) {
	var d time.Time
	latest := published.Add(bus.MaxTimeout)
	if r.Deadline != "" {
		t, err := time.Parse(time.RFC3339Nano, r.Deadline)
		if err != nil {
			return d, invalidf("deadline: %q is not an RFC 3339 time", r.Deadline)
		}
		if t.After(latest) {
			return d, invalidf("deadline: %s is more than 7 days after the job was published; the latest allowed is %s", r.Deadline, latest.UTC().Format(time.RFC3339))
		}
		d = t
	}
	// Compared in milliseconds, before any conversion to a time.Duration
	// can overflow (10^13 ms once became a deadline in 1759).
	if r.TimeoutMS != 0 {
		if r.TimeoutMS < 1 || r.TimeoutMS > bus.MaxTimeout.Milliseconds() {
			return d, invalidf("timeout_ms: %d is outside [1, %d] (1 ms to 7 days)", r.TimeoutMS, bus.MaxTimeout.Milliseconds())
		}
		t := published.Add(time.Duration(r.TimeoutMS) * time.Millisecond)
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d, nil
}
