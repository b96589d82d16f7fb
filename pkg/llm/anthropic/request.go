package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/switchyard/switchyard/pkg/llm"
)

// jsonObjectInstruction is appended to the system prompt for
// response_format json_object, which Anthropic has no switch for.
const jsonObjectInstruction = "Respond with a single valid JSON object only, with no text before or after it."

// buildParams maps a provider-neutral request onto the Messages API.
//
// Structured output (response_format json_schema) is sent natively as
// output_config.format {type: json_schema, schema}; the answer then streams
// as ordinary text deltas holding the JSON document.
func (c *Client) buildParams(req *llm.Request) (sdk.MessageNewParams, error) {
	p := sdk.MessageNewParams{
		Model:     sdk.Model(req.Model),
		MaxTokens: c.maxTokens(req),
	}
	if req.Temperature != nil {
		p.Temperature = sdk.Float(*req.Temperature)
	}
	if req.TopP != nil {
		p.TopP = sdk.Float(*req.TopP)
	}
	if len(req.Stop) > 0 {
		p.StopSequences = req.Stop
	}
	// Seed has no Anthropic equivalent: ignored.

	system, turns, err := conversation(req.Messages)
	if err != nil {
		return p, err
	}
	p.Messages = turns
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case llm.FormatJSONObject:
			system = append(system, jsonObjectInstruction)
		case llm.FormatJSONSchema:
			var schema map[string]any
			if err := json.Unmarshal(rf.Schema, &schema); err != nil || schema == nil {
				return p, badRequest("response_format json_schema: schema is not a JSON object")
			}
			p.OutputConfig = sdk.OutputConfigParam{Format: sdk.JSONOutputFormatParam{Schema: schema}}
		}
	}
	if len(system) > 0 {
		p.System = []sdk.TextBlockParam{{Text: strings.Join(system, "\n\n")}}
	}
	return p, tools(&p, req)
}

// conversation splits the messages into the system prompt's parts and the
// user / assistant turns: tool results travel in user turns, and runs of
// one role are merged (Anthropic wants the roles to alternate).
func conversation(msgs []llm.Message) (system []string, turns []sdk.MessageParam, err error) {
	for i := range msgs {
		m := &msgs[i]
		if m.Role == llm.RoleSystem {
			if t := m.Text(); t != "" {
				system = append(system, t)
			}
			continue
		}
		role, blocks, err := turn(m)
		if err != nil {
			return nil, nil, badRequest("message %d: %v", i, err)
		}
		if len(blocks) == 0 {
			continue // Anthropic rejects empty turns and empty text blocks.
		}
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Content = append(turns[n-1].Content, blocks...)
			continue
		}
		turns = append(turns, sdk.MessageParam{Role: role, Content: blocks})
	}
	return system, turns, nil
}

// turn maps one message that is not a system prompt.
func turn(m *llm.Message) (sdk.MessageParamRole, []sdk.ContentBlockParamUnion, error) {
	switch m.Role {
	case llm.RoleUser:
		b, err := contentBlocks(m)
		return sdk.MessageParamRoleUser, b, err
	case llm.RoleAssistant:
		b, err := contentBlocks(m)
		for _, tc := range m.ToolCalls {
			b = append(b, sdk.NewToolUseBlock(tc.ID, toolInput(tc.Arguments), tc.Name))
		}
		return sdk.MessageParamRoleAssistant, b, err
	case llm.RoleTool:
		if m.ToolCallID == "" {
			return "", nil, errors.New("tool message without tool_call_id")
		}
		tr := sdk.ToolResultBlockParam{ToolUseID: m.ToolCallID}
		if t := m.Text(); t != "" {
			tr.Content = []sdk.ToolResultBlockParamContentUnion{{OfText: &sdk.TextBlockParam{Text: t}}}
		}
		return sdk.MessageParamRoleUser, []sdk.ContentBlockParamUnion{{OfToolResult: &tr}}, nil
	}
	return "", nil, fmt.Errorf("unknown role %q", m.Role)
}

// tools sets the tools and the tool choice.
func tools(p *sdk.MessageNewParams, req *llm.Request) error {
	for _, t := range req.Tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return badRequest("tool %q: %v", t.Name, err)
		}
		tp := sdk.ToolParam{Name: t.Name, InputSchema: schema}
		if t.Description != "" {
			tp.Description = sdk.String(t.Description)
		}
		if t.Strict {
			tp.Strict = sdk.Bool(true)
		}
		p.Tools = append(p.Tools, sdk.ToolUnionParam{OfTool: &tp})
	}
	tc := req.ToolChoice
	if tc == nil {
		return nil
	}
	switch tc.Mode {
	case llm.ToolChoiceAuto, "":
		p.ToolChoice = sdk.ToolChoiceUnionParam{OfAuto: &sdk.ToolChoiceAutoParam{}}
	case llm.ToolChoiceRequired:
		p.ToolChoice = sdk.ToolChoiceUnionParam{OfAny: &sdk.ToolChoiceAnyParam{}}
	case llm.ToolChoiceNone:
		p.ToolChoice = sdk.ToolChoiceUnionParam{OfNone: &sdk.ToolChoiceNoneParam{}}
	case llm.ToolChoiceFunction:
		if tc.Name == "" {
			return badRequest("tool_choice function without a name")
		}
		p.ToolChoice = sdk.ToolChoiceParamOfTool(tc.Name)
	default:
		return badRequest("unknown tool_choice %q", tc.Mode)
	}
	return nil
}

// contentBlocks returns the text and image blocks of a user or assistant
// message, skipping empty text (which Anthropic rejects).
func contentBlocks(m *llm.Message) ([]sdk.ContentBlockParamUnion, error) {
	if len(m.Parts) == 0 {
		if m.Content == "" {
			return nil, nil
		}
		return []sdk.ContentBlockParamUnion{sdk.NewTextBlock(m.Content)}, nil
	}
	var out []sdk.ContentBlockParamUnion
	for _, part := range m.Parts {
		switch part.Type {
		case llm.PartText:
			if part.Text != "" {
				out = append(out, sdk.NewTextBlock(part.Text))
			}
		case llm.PartImage:
			b, err := imageBlock(part.ImageURL)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		default:
			return nil, fmt.Errorf("unsupported part type %q", part.Type)
		}
	}
	return out, nil
}

// imageBlock maps a data URL to a base64 source and an http(s) URL to a url
// source.
func imageBlock(u string) (sdk.ContentBlockParamUnion, error) {
	if mediaType, data, ok := parseDataURL(u); ok {
		return sdk.NewImageBlockBase64(mediaType, data), nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return sdk.NewImageBlock(sdk.URLImageSourceParam{URL: u}), nil
	}
	return sdk.ContentBlockParamUnion{}, fmt.Errorf("image_url must be an https or base64 data URL")
}

// parseDataURL splits "data:image/png;base64,AAAA" into its media type and
// base64 payload.
func parseDataURL(u string) (mediaType, data string, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return "", "", false
	}
	meta, data, found := strings.Cut(rest, ",")
	if !found {
		return "", "", false
	}
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if !isBase64 || mediaType == "" {
		return "", "", false
	}
	return mediaType, data, true
}

// toolInput returns a tool call's arguments as the JSON object Anthropic
// wants in tool_use.input; empty or invalid arguments become {}.
func toolInput(args string) json.RawMessage {
	args = strings.TrimSpace(args)
	if args == "" || !json.Valid([]byte(args)) || args[0] != '{' {
		return json.RawMessage("{}")
	}
	return json.RawMessage(args)
}

// inputSchema maps a JSON Schema object onto the SDK's input_schema, keeping
// every keyword besides properties and required as an extra field.
func inputSchema(raw json.RawMessage) (sdk.ToolInputSchemaParam, error) {
	// input_schema is required: a tool without parameters gets an empty
	// object schema (a zero value would be omitted from the body).
	s := sdk.ToolInputSchemaParam{Properties: map[string]any{}}
	if len(raw) == 0 {
		return s, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return s, fmt.Errorf("parameters is not a JSON Schema object")
	}
	if props, ok := m["properties"]; ok {
		s.Properties = props
	}
	if req, ok := m["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				s.Required = append(s.Required, name)
			}
		}
	}
	delete(m, "properties")
	delete(m, "required")
	delete(m, "type")
	if len(m) > 0 {
		s.ExtraFields = m
	}
	return s, nil
}

func badRequest(format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindBadRequest, format, args...)
	e.Provider = ProviderName
	return e
}
