package structured

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

func TestFormatViolations(t *testing.T) {
	t.Parallel()
	vs := []Violation{
		{Path: "", Message: "missing property 'age'"},
		{Path: "/tags/1", Message: "got number, want string"},
		{Path: "/name", Message: "minLength: got 0, want 1"},
	}
	require.Empty(t, FormatViolations(nil, 5))
	require.Equal(t, "- at root: missing property 'age'\n- at \"/tags/1\": got number, want string\n- at \"/name\": minLength: got 0, want 1", FormatViolations(vs, 0))
	require.Equal(t, "- at root: missing property 'age'\n- ... and 2 more", FormatViolations(vs, 1))
	require.Equal(t, FormatViolations(vs, 0), FormatViolations(vs, 3))
}

func TestReaskMessages(t *testing.T) {
	t.Parallel()
	answer := `{"name": ""}`
	t.Run("violations", func(t *testing.T) {
		t.Parallel()
		vs := []Violation{{Path: "/name", Message: "minLength: got 0, want 1"}, {Message: "missing property 'age'"}}
		msgs := ReaskMessages(answer, vs, nil)
		require.Len(t, msgs, 2)
		require.Equal(t, llm.Message{Role: llm.RoleAssistant, Content: answer}, msgs[0])
		require.Equal(t, llm.RoleUser, msgs[1].Role)
		require.Contains(t, msgs[1].Content, "did not match the required JSON Schema")
		require.Contains(t, msgs[1].Content, `- at "/name": minLength: got 0, want 1`)
		require.Contains(t, msgs[1].Content, "- at root: missing property 'age'")
		require.Contains(t, msgs[1].Content, "only the corrected JSON")
	})
	t.Run("parse error", func(t *testing.T) {
		t.Parallel()
		msgs := ReaskMessages("not json", nil, errors.New("invalid character 'o' in literal null"))
		require.Len(t, msgs, 2)
		require.Equal(t, "not json", msgs[0].Content)
		require.Contains(t, msgs[1].Content, "did not contain valid JSON: invalid character 'o' in literal null")
		require.NotContains(t, msgs[1].Content, "Errors")
	})
	t.Run("many violations are capped", func(t *testing.T) {
		t.Parallel()
		var vs []Violation
		for i := range 50 {
			vs = append(vs, Violation{Path: fmt.Sprintf("/items/%d", i), Message: "bad"})
		}
		msgs := ReaskMessages(answer, vs, nil)
		require.Equal(t, MaxReaskViolations, strings.Count(msgs[1].Content, ": bad"))
		require.Contains(t, msgs[1].Content, "... and 30 more")
	})
}

func TestInstruction(t *testing.T) {
	t.Parallel()
	require.Empty(t, Instruction(nil))
	require.Empty(t, Instruction(&llm.ResponseFormat{Type: llm.FormatText}))
	require.Contains(t, Instruction(&llm.ResponseFormat{Type: llm.FormatJSONObject}), "valid JSON object")

	got := Instruction(&llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "person", Schema: json.RawMessage("{\n  \"type\": \"object\"\n}")})
	require.True(t, strings.HasPrefix(got, "Respond only with a JSON object that conforms to this JSON Schema"), got)
	require.Contains(t, got, `"person"`)
	require.True(t, strings.HasSuffix(got, `{"type":"object"}`), "schema compacted at the end: %q", got)
}

func TestWithInstruction(t *testing.T) {
	t.Parallel()
	format := &llm.ResponseFormat{Type: llm.FormatJSONObject}
	instr := Instruction(format)
	tests := []struct {
		name string
		msgs []llm.Message
		want []llm.Message
	}{
		{
			name: "no system message",
			msgs: []llm.Message{{Role: llm.RoleUser, Content: "hi"}},
			want: []llm.Message{{Role: llm.RoleSystem, Content: instr}, {Role: llm.RoleUser, Content: "hi"}},
		},
		{
			name: "appended to system message",
			msgs: []llm.Message{{Role: llm.RoleSystem, Content: "Be brief."}, {Role: llm.RoleUser, Content: "hi"}},
			want: []llm.Message{{Role: llm.RoleSystem, Content: "Be brief.\n\n" + instr}, {Role: llm.RoleUser, Content: "hi"}},
		},
		{
			name: "multimodal system message",
			msgs: []llm.Message{{Role: llm.RoleSystem, Parts: []llm.Part{{Type: llm.PartText, Text: "Be brief."}}}},
			want: []llm.Message{{Role: llm.RoleSystem, Parts: []llm.Part{{Type: llm.PartText, Text: "Be brief."}, {Type: llm.PartText, Text: instr}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := &llm.Request{Model: "m", Messages: tt.msgs, ResponseFormat: format}
			before := fmt.Sprintf("%#v", req.Messages)
			got := WithInstruction(req)
			require.Equal(t, tt.want, got.Messages)
			require.Equal(t, "m", got.Model)
			require.Same(t, format, got.ResponseFormat)
			require.Equal(t, before, fmt.Sprintf("%#v", req.Messages), "the original request was modified")
		})
	}
	t.Run("text format unchanged", func(t *testing.T) {
		t.Parallel()
		req := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
		got := WithInstruction(req)
		require.NotSame(t, req, got)
		require.Equal(t, req.Messages, got.Messages)
	})
}
