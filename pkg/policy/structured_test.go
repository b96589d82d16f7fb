package policy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/llm/structured"
)

// reporting is a mock that reports whether its model has native structured
// output.
type reporting struct {
	*mock.Provider
	jsonSchema bool
}

func (r reporting) Capabilities(string) llm.Capabilities {
	return llm.Capabilities{JSONSchema: r.jsonSchema}
}

func TestSchemaInstructionOnlyForNonNativeDeployments(t *testing.T) {
	t.Parallel()
	schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	schemaReq := func() *llm.Request {
		q := req("weather?")
		q.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "weather", Schema: schema}
		return q
	}
	cases := []struct {
		name        string
		provider    func(*mock.Provider) llm.Provider
		req         func() *llm.Request
		instruction bool
	}{
		{"native support", func(m *mock.Provider) llm.Provider { return reporting{m, true} }, schemaReq, false},
		{"reported without support", func(m *mock.Provider) llm.Provider { return reporting{m, false} }, schemaReq, true},
		{"no capability reporter", func(m *mock.Provider) llm.Provider { return m }, schemaReq, true},
		{"json_object is left alone", func(m *mock.Provider) llm.Provider { return m }, func() *llm.Request {
			q := req("anything")
			q.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONObject}
			return q
		}, false},
		{"text is left alone", func(m *mock.Provider) llm.Provider { return m }, func() *llm.Request { return req("hi") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := mock.New(mock.Config{})
			r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{{Name: "d", Model: "m", Provider: tc.provider(m)}}})
			in := tc.req()
			before := len(in.Messages)
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: in}, nil)
			require.NoError(t, err)
			require.Len(t, in.Messages, before, "the caller's request is not modified")
			sent := m.Requests()
			require.Len(t, sent, 1)
			got := sent[0]
			require.Equal(t, in.ResponseFormat, got.ResponseFormat, "the response format is passed on either way")
			if !tc.instruction {
				require.Equal(t, in.Messages, got.Messages)
				return
			}
			require.Len(t, got.Messages, before+1)
			require.Equal(t, llm.RoleSystem, got.Messages[0].Role)
			require.Equal(t, structured.Instruction(in.ResponseFormat), got.Messages[0].Content)
			require.Contains(t, got.Messages[0].Content, `"required":["city"]`)
			require.Equal(t, in.Messages, got.Messages[1:])
		})
	}
}

// Within one group, each deployment gets the form it needs: a retry that
// moves from a non-native deployment to a native one drops the instruction.
func TestSchemaInstructionPerDeployment(t *testing.T) {
	t.Parallel()
	plain := mock.New(mock.Config{Script: []mock.Step{{Error: "unavailable"}}})
	native := mock.New(mock.Config{})
	o := fast()
	o.OnError = map[string]Action{"unavailable": ActionFallback} // off to the other deployment at once
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
		{Name: "plain", Model: "m", Provider: plain, Options: DeploymentOptions{Priority: 1}},
		{Name: "native", Model: "m", Provider: reporting{native, true}, Options: DeploymentOptions{Priority: 2}},
	}})
	q := req("x")
	q.Messages = append([]llm.Message{{Role: llm.RoleSystem, Content: "Be brief."}}, q.Messages...)
	q.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object"}`)}
	out, err := r.Execute(t.Context(), &Call{Group: "g", Request: q}, nil)
	require.NoError(t, err)
	require.Equal(t, "native", out.Deployment)
	require.Len(t, plain.Requests(), 1)
	sys := plain.Requests()[0].Messages[0]
	require.Equal(t, llm.RoleSystem, sys.Role)
	require.Equal(t, "Be brief.\n\n"+structured.Instruction(q.ResponseFormat), sys.Content, "appended to the existing system prompt")
	require.Len(t, native.Requests(), 1)
	require.Equal(t, "Be brief.", native.Requests()[0].Messages[0].Content)
}
