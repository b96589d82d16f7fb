package openai

import (
	"cmp"
	"encoding/json"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/switchyard/switchyard/pkg/llm"
)

// params maps an llm.Request onto the SDK's request. Errors are
// KindBadRequest: a request this package cannot express would fail the same
// way on every deployment.
func (c *Client) params(req *llm.Request) (oai.ChatCompletionNewParams, error) {
	p := oai.ChatCompletionNewParams{Model: req.Model}
	if len(req.Messages) == 0 {
		return p, c.errorf(llm.KindBadRequest, "no messages")
	}
	p.Messages = make([]oai.ChatCompletionMessageParamUnion, 0, len(req.Messages))
	for i := range req.Messages {
		m, err := c.message(&req.Messages[i])
		if err != nil {
			return p, err
		}
		p.Messages = append(p.Messages, m)
	}

	c.sampling(&p, req)
	if err := c.responseFormat(&p, req.ResponseFormat); err != nil {
		return p, err
	}
	if err := c.tools(&p, req); err != nil {
		return p, err
	}
	if !c.noStreamUsage {
		p.StreamOptions.IncludeUsage = oai.Bool(true)
	}
	return p, nil
}

func (c *Client) message(m *llm.Message) (oai.ChatCompletionMessageParamUnion, error) {
	var u oai.ChatCompletionMessageParamUnion
	switch m.Role {
	case llm.RoleSystem:
		s := &oai.ChatCompletionSystemMessageParam{}
		s.Content.OfString = oai.String(m.Text())
		if m.Name != "" {
			s.Name = oai.String(m.Name)
		}
		u.OfSystem = s
	case llm.RoleUser:
		um := &oai.ChatCompletionUserMessageParam{}
		if len(m.Parts) == 0 {
			um.Content.OfString = oai.String(m.Content)
		} else {
			parts := make([]oai.ChatCompletionContentPartUnionParam, 0, len(m.Parts))
			for _, pt := range m.Parts {
				switch pt.Type {
				case llm.PartText:
					parts = append(parts, oai.TextContentPart(pt.Text))
				case llm.PartImage:
					if pt.ImageURL == "" {
						return u, c.errorf(llm.KindBadRequest, "image part without a URL")
					}
					parts = append(parts, oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{
						URL:    pt.ImageURL,
						Detail: pt.Detail,
					}))
				default:
					return u, c.errorf(llm.KindBadRequest, "unsupported content part type %q", pt.Type)
				}
			}
			um.Content.OfArrayOfContentParts = parts
		}
		if m.Name != "" {
			um.Name = oai.String(m.Name)
		}
		u.OfUser = um
	case llm.RoleAssistant:
		a := &oai.ChatCompletionAssistantMessageParam{}
		// Content may be absent when the turn is only tool calls.
		if text := m.Text(); text != "" || len(m.ToolCalls) == 0 {
			a.Content.OfString = oai.String(text)
		}
		for _, tc := range m.ToolCalls {
			a.ToolCalls = append(a.ToolCalls, oai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &oai.ChatCompletionMessageFunctionToolCallParam{
					ID: tc.ID,
					Function: oai.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name:      tc.Name,
						Arguments: cmp.Or(tc.Arguments, "{}"),
					},
				},
			})
		}
		if m.Name != "" {
			a.Name = oai.String(m.Name)
		}
		u.OfAssistant = a
	case llm.RoleTool:
		if m.ToolCallID == "" {
			return u, c.errorf(llm.KindBadRequest, "tool message without tool_call_id")
		}
		u = oai.ToolMessage(m.Text(), m.ToolCallID)
	default:
		return u, c.errorf(llm.KindBadRequest, "unknown message role %q", m.Role)
	}
	return u, nil
}

// sampling sets the sampling parameters: temperature, top_p, the output
// limit (max_completion_tokens, or max_tokens for servers that only know
// that), stop and seed.
func (c *Client) sampling(p *oai.ChatCompletionNewParams, req *llm.Request) {
	if req.Temperature != nil {
		p.Temperature = oai.Float(*req.Temperature)
	}
	if req.TopP != nil {
		p.TopP = oai.Float(*req.TopP)
	}
	if req.MaxTokens > 0 {
		if c.legacyMaxTokens {
			p.MaxTokens = oai.Int(int64(req.MaxTokens))
		} else {
			p.MaxCompletionTokens = oai.Int(int64(req.MaxTokens))
		}
	}
	if len(req.Stop) > 0 {
		p.Stop = oai.ChatCompletionNewParamsStopUnion{OfStringArray: req.Stop}
	}
	if req.Seed != nil {
		p.Seed = oai.Int(*req.Seed)
	}
}

// responseFormat sets the response format: text, any JSON object, or a
// JSON Schema (named "response" when the request names none: OpenAI
// requires a name).
func (c *Client) responseFormat(p *oai.ChatCompletionNewParams, rf *llm.ResponseFormat) error {
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case llm.FormatText, "":
		p.ResponseFormat.OfText = &shared.ResponseFormatTextParam{}
	case llm.FormatJSONObject:
		p.ResponseFormat.OfJSONObject = &shared.ResponseFormatJSONObjectParam{}
	case llm.FormatJSONSchema:
		if len(rf.Schema) == 0 || !json.Valid(rf.Schema) {
			return c.errorf(llm.KindBadRequest, "response_format json_schema needs a valid JSON schema")
		}
		js := shared.ResponseFormatJSONSchemaJSONSchemaParam{
			Name:   cmp.Or(rf.Name, "response"), // OpenAI requires a name
			Schema: json.RawMessage(rf.Schema),
		}
		if rf.Strict {
			js.Strict = oai.Bool(true)
		}
		p.ResponseFormat.OfJSONSchema = &shared.ResponseFormatJSONSchemaParam{JSONSchema: js}
	default:
		return c.errorf(llm.KindBadRequest, "unknown response_format type %q", rf.Type)
	}
	return nil
}

// tools sets the tools and the tool choice.
func (c *Client) tools(p *oai.ChatCompletionNewParams, req *llm.Request) error {
	for _, t := range req.Tools {
		fd := shared.FunctionDefinitionParam{Name: t.Name}
		if t.Name == "" {
			return c.errorf(llm.KindBadRequest, "tool without a name")
		}
		if t.Description != "" {
			fd.Description = oai.String(t.Description)
		}
		if len(t.Parameters) > 0 {
			var params shared.FunctionParameters
			if err := json.Unmarshal(t.Parameters, &params); err != nil {
				return c.errorf(llm.KindBadRequest, "tool %q: parameters are not a JSON object: %v", t.Name, err)
			}
			fd.Parameters = params
		}
		if t.Strict {
			fd.Strict = oai.Bool(true)
		}
		p.Tools = append(p.Tools, oai.ChatCompletionFunctionTool(fd))
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case llm.ToolChoiceAuto, llm.ToolChoiceNone, llm.ToolChoiceRequired:
			p.ToolChoice.OfAuto = oai.String(string(tc.Mode))
		case llm.ToolChoiceFunction:
			if tc.Name == "" {
				return c.errorf(llm.KindBadRequest, "tool_choice function without a name")
			}
			p.ToolChoice = oai.ToolChoiceOptionFunctionToolChoice(oai.ChatCompletionNamedToolChoiceFunctionParam{Name: tc.Name})
		case "":
		default:
			return c.errorf(llm.KindBadRequest, "unknown tool_choice mode %q", tc.Mode)
		}
	}
	return nil
}
