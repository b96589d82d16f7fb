package anthropic

import (
	"encoding/json"
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

	var system []string
	var turns []sdk.MessageParam
	for i := range req.Messages {
		m := &req.Messages[i]
		var role sdk.MessageParamRole
		var blocks []sdk.ContentBlockParamUnion
		switch m.Role {
		case llm.RoleSystem:
			if t := m.Text(); t != "" {
				system = append(system, t)
			}
			continue
		case llm.RoleUser:
			role = sdk.MessageParamRoleUser
			b, err := contentBlocks(m)
			if err != nil {
				return p, badRequest("message %d: %v", i, err)
			}
			blocks = b
		case llm.RoleAssistant:
			role = sdk.MessageParamRoleAssistant
			b, err := contentBlocks(m)
			if err != nil {
				return p, badRequest("message %d: %v", i, err)
			}
			blocks = b
			for _, tc := range m.ToolCalls {
				blocks = append(blocks, sdk.NewToolUseBlock(tc.ID, toolInput(tc.Arguments), tc.Name))
			}
		case llm.RoleTool:
			// Tool results travel in a user turn, as tool_result blocks.
			role = sdk.MessageParamRoleUser
			if m.ToolCallID == "" {
				return p, badRequest("message %d: tool message without tool_call_id", i)
			}
			tr := sdk.ToolResultBlockParam{ToolUseID: m.ToolCallID}
			if t := m.Text(); t != "" {
				tr.Content = []sdk.ToolResultBlockParamContentUnion{{OfText: &sdk.TextBlockParam{Text: t}}}
			}
			blocks = []sdk.ContentBlockParamUnion{{OfToolResult: &tr}}
		default:
			return p, badRequest("message %d: unknown role %q", i, m.Role)
		}
		if len(blocks) == 0 {
			continue // Anthropic rejects empty turns and empty text blocks.
		}
		// Anthropic wants user and assistant to alternate: merge runs.
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Content = append(turns[n-1].Content, blocks...)
			continue
		}
		turns = append(turns, sdk.MessageParam{Role: role, Content: blocks})
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

	for _, t := range req.Tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return p, badRequest("tool %q: %v", t.Name, err)
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
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case llm.ToolChoiceAuto, "":
			p.ToolChoice = sdk.ToolChoiceUnionParam{OfAuto: &sdk.ToolChoiceAutoParam{}}
		case llm.ToolChoiceRequired:
			p.ToolChoice = sdk.ToolChoiceUnionParam{OfAny: &sdk.ToolChoiceAnyParam{}}
		case llm.ToolChoiceNone:
			p.ToolChoice = sdk.ToolChoiceUnionParam{OfNone: &sdk.ToolChoiceNoneParam{}}
		case llm.ToolChoiceFunction:
			if tc.Name == "" {
				return p, badRequest("tool_choice function without a name")
			}
			p.ToolChoice = sdk.ToolChoiceParamOfTool(tc.Name)
		default:
			return p, badRequest("unknown tool_choice %q", tc.Mode)
		}
	}
	return p, nil
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
