package gemini

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"path"
	"strings"

	"google.golang.org/genai"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Tool call ids.
//
// Gemini sends whole function calls, often without an id; the provider then
// makes one up (generatedIDPrefix) and never sends a made-up id back. Gemini
// 2.5+/3 also attach a thoughtSignature to function calls that must be
// returned with them in the follow-up request; the neutral ToolCall has no
// field for it, so it rides in the id after sigSep (base64url) and is split
// off again when the conversation comes back.
const (
	generatedIDPrefix = "call_gen_"
	sigSep            = "~sig~"
)

func newCallID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return generatedIDPrefix + hex.EncodeToString(b[:])
}

// encodeCallID joins a call id and its thought signature.
func encodeCallID(id string, sig []byte) string {
	if len(sig) == 0 {
		return id
	}
	return id + sigSep + base64.RawURLEncoding.EncodeToString(sig)
}

// decodeCallID splits what encodeCallID joined. wireID is the id to send to
// Gemini: empty for ids the provider made up.
func decodeCallID(id string) (wireID string, sig []byte) {
	base, enc, found := strings.Cut(id, sigSep)
	if found {
		sig, _ = base64.RawURLEncoding.DecodeString(enc)
	}
	if strings.HasPrefix(base, generatedIDPrefix) {
		base = ""
	}
	return base, sig
}

// buildRequest maps a provider-neutral request onto contents and a config.
//
// Structured output (response_format json_schema) is native:
// responseMimeType application/json plus responseJsonSchema.
func buildRequest(req *llm.Request) ([]*genai.Content, *genai.GenerateContentConfig, error) {
	cfg := &genai.GenerateContentConfig{
		// Continuation reconnects are retries; the policy layer owns those.
		AutomaticContinuation: genai.Ptr(false),
	}
	if req.Temperature != nil {
		cfg.Temperature = genai.Ptr(float32(*req.Temperature))
	}
	if req.TopP != nil {
		cfg.TopP = genai.Ptr(float32(*req.TopP))
	}
	if req.MaxTokens > 0 {
		cfg.MaxOutputTokens = int32(min(req.MaxTokens, math.MaxInt32))
	}
	if len(req.Stop) > 0 {
		cfg.StopSequences = req.Stop
	}
	if req.Seed != nil {
		cfg.Seed = genai.Ptr(int32(max(math.MinInt32, min(*req.Seed, math.MaxInt32))))
	}
	system, contents, err := conversation(req.Messages)
	if err != nil {
		return nil, nil, err
	}
	if len(system) > 0 {
		cfg.SystemInstruction = &genai.Content{Parts: system}
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case llm.FormatJSONObject:
			cfg.ResponseMIMEType = "application/json"
		case llm.FormatJSONSchema:
			var schema map[string]any
			if err := json.Unmarshal(rf.Schema, &schema); err != nil || schema == nil {
				return nil, nil, badRequest("response_format json_schema: schema is not a JSON object")
			}
			cfg.ResponseMIMEType = "application/json"
			cfg.ResponseJsonSchema = schema
		}
	}
	if err := tools(cfg, req); err != nil {
		return nil, nil, err
	}
	return contents, cfg, nil
}

// conversation splits the messages into the system instruction's parts and
// the user / model turns. Runs of one role are merged: parallel function
// responses belong in one turn, and the turns keep alternating.
func conversation(msgs []llm.Message) (system []*genai.Part, contents []*genai.Content, err error) {
	callNames := map[string]string{} // tool call id -> function name
	for i := range msgs {
		m := &msgs[i]
		if m.Role == llm.RoleSystem {
			if t := m.Text(); t != "" {
				system = append(system, &genai.Part{Text: t})
			}
			continue
		}
		role, parts, err := turn(m, callNames)
		if err != nil {
			return nil, nil, badRequest("message %d: %v", i, err)
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(contents); n > 0 && contents[n-1].Role == role {
			contents[n-1].Parts = append(contents[n-1].Parts, parts...)
			continue
		}
		contents = append(contents, &genai.Content{Role: role, Parts: parts})
	}
	return system, contents, nil
}

// turn maps one message that is not a system prompt; callNames remembers
// the function name of each tool call, which a function response must name.
func turn(m *llm.Message, callNames map[string]string) (string, []*genai.Part, error) {
	switch m.Role {
	case llm.RoleUser, llm.RoleAssistant:
		role := genai.RoleUser
		if m.Role == llm.RoleAssistant {
			role = genai.RoleModel
		}
		parts, err := contentParts(m)
		if err != nil {
			return "", nil, err
		}
		for _, tc := range m.ToolCalls {
			wireID, sig := decodeCallID(tc.ID)
			callNames[tc.ID] = tc.Name
			parts = append(parts, &genai.Part{
				FunctionCall:     &genai.FunctionCall{ID: wireID, Name: tc.Name, Args: callArgs(tc.Arguments)},
				ThoughtSignature: sig,
			})
		}
		return role, parts, nil
	case llm.RoleTool:
		name := cmp.Or(callNames[m.ToolCallID], m.Name)
		if name == "" {
			return "", nil, fmt.Errorf("tool result for unknown call %q", m.ToolCallID)
		}
		wireID, _ := decodeCallID(m.ToolCallID)
		return genai.RoleUser, []*genai.Part{{FunctionResponse: &genai.FunctionResponse{
			ID: wireID, Name: name, Response: toolResponse(m.Text()),
		}}}, nil
	}
	return "", nil, fmt.Errorf("unknown role %q", m.Role)
}

// tools sets the function declarations and the tool choice.
func tools(cfg *genai.GenerateContentConfig, req *llm.Request) error {
	if len(req.Tools) > 0 {
		decls := make([]*genai.FunctionDeclaration, 0, len(req.Tools))
		for _, t := range req.Tools {
			d := &genai.FunctionDeclaration{Name: t.Name, Description: t.Description}
			if len(t.Parameters) > 0 {
				var schema map[string]any
				if err := json.Unmarshal(t.Parameters, &schema); err != nil || schema == nil {
					return badRequest("tool %q: parameters is not a JSON Schema object", t.Name)
				}
				d.ParametersJsonSchema = schema
			}
			decls = append(decls, d)
		}
		cfg.Tools = []*genai.Tool{{FunctionDeclarations: decls}}
	}
	tc := req.ToolChoice
	if tc == nil {
		return nil
	}
	fc := &genai.FunctionCallingConfig{}
	switch tc.Mode {
	case llm.ToolChoiceAuto, "":
		fc.Mode = genai.FunctionCallingConfigModeAuto
	case llm.ToolChoiceRequired:
		fc.Mode = genai.FunctionCallingConfigModeAny
	case llm.ToolChoiceNone:
		fc.Mode = genai.FunctionCallingConfigModeNone
	case llm.ToolChoiceFunction:
		if tc.Name == "" {
			return badRequest("tool_choice function without a name")
		}
		fc.Mode = genai.FunctionCallingConfigModeAny
		fc.AllowedFunctionNames = []string{tc.Name}
	default:
		return badRequest("unknown tool_choice %q", tc.Mode)
	}
	cfg.ToolConfig = &genai.ToolConfig{FunctionCallingConfig: fc}
	return nil
}

// contentParts returns the text and image parts of a user or model message.
func contentParts(m *llm.Message) ([]*genai.Part, error) {
	if len(m.Parts) == 0 {
		if m.Content == "" {
			return nil, nil
		}
		return []*genai.Part{{Text: m.Content}}, nil
	}
	var out []*genai.Part
	for _, p := range m.Parts {
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				out = append(out, &genai.Part{Text: p.Text})
			}
		case llm.PartImage:
			ip, err := imagePart(p.ImageURL)
			if err != nil {
				return nil, err
			}
			out = append(out, ip)
		default:
			return nil, fmt.Errorf("unsupported part type %q", p.Type)
		}
	}
	return out, nil
}

// imagePart maps a base64 data URL to inline data and an http(s) URL to file
// data (fileUri); the MIME type of a URL is guessed from its extension,
// image/jpeg when unknown.
func imagePart(u string) (*genai.Part, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, found := strings.Cut(rest, ",")
		mimeType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !found || !isBase64 || mimeType == "" {
			return nil, fmt.Errorf("image data URL must be base64 with a media type")
		}
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("image data URL: %w", err)
		}
		return &genai.Part{InlineData: &genai.Blob{MIMEType: mimeType, Data: raw}}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "gs://") {
		mt := "image/jpeg"
		clean, _, _ := strings.Cut(u, "?")
		if t := mime.TypeByExtension(path.Ext(clean)); strings.HasPrefix(t, "image/") {
			mt, _, _ = strings.Cut(t, ";")
		}
		return &genai.Part{FileData: &genai.FileData{FileURI: u, MIMEType: mt}}, nil
	}
	return nil, fmt.Errorf("image_url must be an https, gs:// or base64 data URL")
}

// callArgs decodes a tool call's JSON arguments; empty or invalid arguments
// become an empty object.
func callArgs(args string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(args), &m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// toolResponse is a tool message's content as a FunctionResponse.response:
// a JSON object as is, anything else wrapped as {"result": ...} (a JSON value
// decoded, other text as a string).
func toolResponse(content string) map[string]any {
	var v any
	if err := json.Unmarshal([]byte(content), &v); err == nil {
		if m, ok := v.(map[string]any); ok {
			return m
		}
		if v != nil {
			return map[string]any{"result": v}
		}
	}
	return map[string]any{"result": content}
}

func badRequest(format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindBadRequest, format, args...)
	e.Provider = ProviderName
	return e
}
