package mock

import (
	"encoding/json"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

func imageReq() *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{
		{Type: llm.PartText, Text: "what is this?"},
		{Type: llm.PartImage, ImageURL: "data:image/png;base64,iVBORw0KGgo="},
	}}}}
}

func toolReq() *llm.Request {
	r := userReq("weather?")
	r.Tools = []llm.Tool{{Name: "weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}
	r.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceRequired}
	return r
}

func TestCapabilitiesYAMLAndDefaults(t *testing.T) {
	t.Parallel()
	no := false
	tests := []struct {
		name string
		yaml string
		want llm.Capabilities
	}{
		{"unset reports unknown", `text: hi`, llm.Capabilities{}},
		{"empty block defaults to capable", "capabilities: {}", llm.Capabilities{Tools: true, Vision: true}},
		{"no vision", "capabilities: {vision: false}", llm.Capabilities{Tools: true, Vision: false}},
		{"no tools", "capabilities: {tools: false, vision: true}", llm.Capabilities{Tools: false, Vision: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			require.NoError(t, yaml.Unmarshal([]byte(tt.yaml), &c))
			require.NoError(t, c.Validate())
			require.Equal(t, tt.want, New(c).Capabilities("any-model"))
		})
	}
	// The Go form says the same as the YAML one.
	require.Equal(t, llm.Capabilities{Tools: true}, New(Config{Capabilities: &Capabilities{Vision: &no}}).Capabilities("m"))
}

func TestRefusesWhatItLacks(t *testing.T) {
	t.Parallel()
	no := false
	tests := []struct {
		name    string
		caps    *Capabilities
		req     *llm.Request
		refused bool
	}{
		{"image to a model without vision", &Capabilities{Vision: &no}, imageReq(), true},
		{"tools to a model without tools", &Capabilities{Tools: &no}, toolReq(), true},
		{"image to a model without tools", &Capabilities{Tools: &no}, imageReq(), false},
		{"tools to a model without vision", &Capabilities{Vision: &no}, toolReq(), false},
		{"image, nothing declared", nil, imageReq(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := New(Config{Capabilities: tt.caps})
			r := run(t, t.Context(), p, tt.req)
			require.EqualValues(t, 1, p.Calls(), "a refused call is still a call")
			if !tt.refused {
				require.NoError(t, r.err)
				return
			}
			require.ErrorIs(t, r.err, llm.ErrBadRequest)
			require.EqualValues(t, 0, p.CallsOK())
		})
	}
}

func TestToolResultIsAnsweredWithText(t *testing.T) {
	t.Parallel()
	p := New(Config{ParallelToolCalls: 2})
	first := run(t, t.Context(), p, toolReq())
	require.NoError(t, first.err)
	require.Equal(t, llm.FinishToolCalls, first.finish)
	require.Len(t, first.tools, 2)

	// The client runs the tools and sends their results back, keeping
	// tool_choice required as many clients do: the loop must still end.
	req := toolReq()
	asst := llm.Message{Role: llm.RoleAssistant}
	for i := range 2 {
		asst.ToolCalls = append(asst.ToolCalls, *first.tools[i])
	}
	req.Messages = append(req.Messages, asst)
	for _, tc := range asst.ToolCalls {
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleTool, ToolCallID: tc.ID, Content: `{"temp_c": 21}`})
	}
	second := run(t, t.Context(), p, req)
	require.NoError(t, second.err)
	require.Equal(t, llm.FinishStop, second.finish)
	require.Empty(t, second.tools)
	require.NotEmpty(t, second.text)
}
