package policy

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

func TestNewContract(t *testing.T) {
	t.Parallel()
	n := func(i int) *int { return &i }
	schema := &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object"}`)}
	cases := []struct {
		name    string
		req     llm.Request
		retries *int
		def     int
		want    *Contract // nil with wantErr == "": no contract
		wantErr string
	}{
		{name: "plain text pays nothing", req: llm.Request{}},
		{name: "text format pays nothing", req: llm.Request{ResponseFormat: &llm.ResponseFormat{Type: llm.FormatText}}},
		{name: "json_object", req: llm.Request{ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONObject}}, def: 2, want: &Contract{retries: 2}},
		{name: "request retries win", req: llm.Request{ResponseFormat: schema}, retries: n(0), def: 2, want: &Contract{retries: 0}},
		{name: "negative default is none", req: llm.Request{ResponseFormat: schema}, def: -1, want: &Contract{retries: 0}},
		{name: "retries too high", req: llm.Request{ResponseFormat: schema}, retries: n(11), wantErr: "validation_retries: 11 is outside [0, 10]"},
		{name: "retries negative", req: llm.Request{ResponseFormat: schema}, retries: n(-1), wantErr: "validation_retries: -1"},
		{name: "schema not JSON", req: llm.Request{ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: json.RawMessage(`{`)}}, wantErr: "response_format.json_schema.schema: bad JSON schema: not valid JSON"},
		{name: "tool without parameters", req: llm.Request{Tools: []llm.Tool{{Name: "now"}}}, def: 1, want: &Contract{retries: 1}},
		{name: "second tool broken", req: llm.Request{Tools: []llm.Tool{{Name: "a"}, {Name: "b", Parameters: json.RawMessage(`{"minLength":"x"}`)}}}, wantErr: "tools[1].function.parameters: bad JSON schema: invalid schema"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewContract(&tc.req, tc.retries, tc.def)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				_, isInvalid := errors.AsType[*RequestError](err)
				require.True(t, isInvalid, "a bad schema is the requester's fault")
				return
			}
			require.NoError(t, err)
			if tc.want == nil {
				require.Nil(t, c)
				return
			}
			require.NotNil(t, c)
			require.Equal(t, tc.want.retries, c.retries)
			require.Equal(t, len(tc.req.Tools), len(c.tools))
		})
	}
}

func TestContractCheck(t *testing.T) {
	t.Parallel()
	req := &llm.Request{
		ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONObject},
		Tools: []llm.Tool{
			{Name: "now"},
			{Name: "add", Parameters: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)},
			{Name: "ping", Parameters: json.RawMessage(`{"type":"object"}`)},
		},
	}
	c, err := NewContract(req, nil, 2)
	require.NoError(t, err)
	call := func(id, name, args string) llm.ToolCall { return llm.ToolCall{ID: id, Name: name, Arguments: args} }
	cases := []struct {
		name       string
		out        Outcome
		ok         bool
		value      any
		args       []string // cleaned arguments, when ok
		violations []Violation
		reask      []string // contents of the re-ask messages
	}{
		{name: "object", out: Outcome{Text: ` {"x": 1} `}, ok: true, value: map[string]any{"x": 1.0}},
		{name: "array is not an object", out: Outcome{Text: `[1, 2]`},
			violations: []Violation{{Message: "got array, want object"}}},
		{name: "no JSON", out: Outcome{Text: `I cannot help with that.`},
			violations: []Violation{{Message: "no JSON found in the answer"}}},
		{name: "tool calls: text not checked, arguments cleaned", out: Outcome{Text: "calling", ToolCalls: []llm.ToolCall{
			call("c1", "now", ""), call("c2", "add", "```json\n{\"a\": 1, \"b\": 2}\n```"), call("c3", "ping", ""),
		}}, ok: true, args: []string{"", `{"a": 1, "b": 2}`, "{}"}},
		{name: "bad and unknown calls", out: Outcome{ToolCalls: []llm.ToolCall{
			call("c1", "add", `{"a": "one"}`), call("c2", "now", ""), call("c3", "sub", `{}`),
		}}, violations: []Violation{
			{Path: "", Message: "missing property 'b'", ToolCall: "c1"},
			{Path: "/a", Message: "got string, want number", ToolCall: "c1"},
			{Message: `there is no tool named "sub"; the tools are "add", "now", "ping"`, ToolCall: "c3"},
		}, reask: []string{"", `Errors (JSON pointer path: problem):`, "Not executed: other tool calls", `no tool named "sub"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := c.check(&tc.out)
			require.Equal(t, tc.ok, v.ok, v.summary)
			if tc.ok {
				require.Equal(t, tc.value, v.value)
				for i, a := range tc.args {
					if a == "" {
						require.Equal(t, tc.out.ToolCalls[i].Arguments, v.toolCalls[i].Arguments)
						continue
					}
					require.Equal(t, a, v.toolCalls[i].Arguments)
				}
				return
			}
			require.Equal(t, tc.violations, v.violations)
			require.NotEmpty(t, v.summary)
			require.NotEmpty(t, v.reason)
			if tc.reask == nil {
				require.Len(t, v.reask, 2, "the answer and the errors")
				return
			}
			require.Len(t, v.reask, len(tc.reask))
			require.Equal(t, llm.RoleAssistant, v.reask[0].Role)
			require.Equal(t, tc.out.ToolCalls, v.reask[0].ToolCalls)
			for i := 1; i < len(tc.reask); i++ {
				require.Equal(t, llm.RoleTool, v.reask[i].Role)
				require.Equal(t, tc.out.ToolCalls[i-1].ID, v.reask[i].ToolCallID)
				require.Contains(t, v.reask[i].Content, tc.reask[i])
			}
		})
	}
}
