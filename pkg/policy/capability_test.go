package policy

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func imageRequest() *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{
		{Type: llm.PartText, Text: "describe"},
		{Type: llm.PartImage, ImageURL: "https://example.com/cat.png"},
	}}}}
}

func toolRequest() *llm.Request {
	q := req("weather in Oslo?")
	q.Tools = []llm.Tool{{Name: "weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}
	q.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceRequired}
	return q
}

// lacking returns a mock declared without the named capability ("vision",
// "tools" or "both").
func lacking(capability string) *mock.Provider {
	no := false
	c := &mock.Capabilities{}
	switch capability {
	case "vision":
		c.Vision = &no
	case "tools":
		c.Tools = &no
	case "both":
		c.Vision, c.Tools = &no, &no
	}
	return mock.New(mock.Config{Capabilities: c})
}

// without is the deployment name on p, with the options that make the
// router know p lacks capability. A mock declaring neither capability
// reports the zero llm.Capabilities, which means unknown, so "both" needs
// the deployment's own override.
func without(name string, p *mock.Provider, capability string) Deployment {
	var o DeploymentOptions
	if capability == "both" {
		o.SupportsTools, o.SupportsVision = ptr(false), ptr(false)
	}
	return dep(name, p, o)
}

func ptr[T any](v T) *T { return &v }

func TestCapabilityRoutingWithinGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first Deployment // priority 0: preferred when capable
		req   *llm.Request
		want  string // the deployment that answers
	}{
		{"image skips a deployment without vision", dep("a", lacking("vision"), DeploymentOptions{}), imageRequest(), "b"},
		{"tools skip a deployment without tools", dep("a", lacking("tools"), DeploymentOptions{}), toolRequest(), "b"},
		{"text goes to a deployment without vision", dep("a", lacking("vision"), DeploymentOptions{}), req("x"), "a"},
		{"tools go to a deployment without vision", dep("a", lacking("vision"), DeploymentOptions{}), toolRequest(), "a"},
		{"image goes to a deployment without tools", dep("a", lacking("tools"), DeploymentOptions{}), imageRequest(), "a"},
		{"deployment override says no vision", dep("a", mock.New(mock.Config{}), DeploymentOptions{SupportsVision: ptr(false)}), imageRequest(), "b"},
		{"deployment override says no tools", dep("a", mock.New(mock.Config{}), DeploymentOptions{SupportsTools: ptr(false)}), toolRequest(), "b"},
		{"deployment override wins over the catalogue", Deployment{Name: "a", Model: "o3-mini", Provider: mock.New(mock.Config{}), Options: DeploymentOptions{SupportsVision: ptr(true)}}, imageRequest(), "a"},
		{"catalogue says no vision", Deployment{Name: "a", Model: "o3-mini", Provider: mock.New(mock.Config{})}, imageRequest(), "b"},
		{"catalogue says vision", Deployment{Name: "a", Model: "gpt-4o", Provider: mock.New(mock.Config{})}, imageRequest(), "a"},
		{"unknown model is assumed capable", Deployment{Name: "a", Model: "brand-new-model", Provider: mock.New(mock.Config{})}, imageRequest(), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := mock.New(mock.Config{Capabilities: &mock.Capabilities{}})
			second := dep("b", b, DeploymentOptions{Priority: 1})
			r := newRouter(t, Group{Name: "g", Options: fast(), Deployments: []Deployment{tt.first, second}})
			out, err := r.Execute(t.Context(), &Call{Group: "g", Request: tt.req}, nil)
			require.NoError(t, err)
			require.Equal(t, tt.want, out.Deployment)
			require.Len(t, out.Attempts, 1, "the skipped deployment is never called")
			a := tt.first.Provider.(*mock.Provider)
			if tt.want == "b" {
				require.EqualValues(t, 0, a.Calls())
				require.EqualValues(t, 1, b.Calls())
			} else {
				require.EqualValues(t, 1, a.Calls())
				require.EqualValues(t, 0, b.Calls())
			}
		})
	}
}

func TestCapabilityFallsToFallbackGroup(t *testing.T) {
	t.Parallel()
	for _, capability := range []string{"vision", "tools"} {
		t.Run(capability, func(t *testing.T) {
			t.Parallel()
			q := imageRequest()
			if capability == "tools" {
				q = toolRequest()
			}
			a1, a2 := lacking(capability), lacking(capability)
			backup := mock.New(mock.Config{})
			o := fast()
			o.Fallbacks = []string{"backup"}
			r := newRouter(t,
				Group{Name: "main", Options: o, Deployments: []Deployment{dep("a1", a1, DeploymentOptions{}), dep("a2", a2, DeploymentOptions{})}},
				Group{Name: "backup", Options: fast(), Deployments: []Deployment{dep("b", backup, DeploymentOptions{})}},
			)
			rec := &recorder{}
			out, err := r.Execute(t.Context(), &Call{Group: "main", Request: q}, rec.emit)
			require.NoError(t, err)
			require.Equal(t, "backup", out.Group)
			require.Equal(t, "b", out.Deployment)
			require.EqualValues(t, 0, a1.Calls()+a2.Calls())
			require.EqualValues(t, 1, backup.Calls())
			require.Equal(t, 1, out.Fallbacks)
			require.Len(t, out.Attempts, 1)
			require.Equal(t, []EventType{EventFallback, EventStart}, rec.types()[:2])
			fb := rec.events[0]
			require.Equal(t, "backup", fb.Group)
			require.Contains(t, fb.Reason, capability)
			require.Contains(t, fb.Reason, `"main"`)
		})
	}
}

func TestCapabilityMissingEverywhere(t *testing.T) {
	t.Parallel()
	both := toolRequest()
	both.Messages = imageRequest().Messages
	tests := []struct {
		name                   string
		req                    *llm.Request
		mainLacks, backupLacks string
		names                  []string // capabilities the message must name
		absent                 []string // and must not
	}{
		{"vision", imageRequest(), "vision", "vision", []string{"vision"}, []string{"tools"}},
		{"tools", toolRequest(), "tools", "tools", []string{"tools"}, []string{"vision"}},
		{"both", both, "both", "both", []string{"tools", "vision"}, nil},
		{"tools in one group, vision in the other", both, "vision", "tools", []string{"tools", "vision"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mainP, backupP := lacking(tt.mainLacks), lacking(tt.backupLacks)
			o := fast()
			o.Fallbacks = []string{"backup"}
			r := newRouter(t,
				Group{Name: "main", Options: o, Deployments: []Deployment{without("a", mainP, tt.mainLacks)}},
				Group{Name: "backup", Options: fast(), Deployments: []Deployment{without("b", backupP, tt.backupLacks)}},
			)
			out, err := r.Execute(t.Context(), &Call{Group: "main", Request: tt.req}, nil)
			require.Error(t, err)
			require.ErrorIs(t, err, llm.ErrBadRequest, "the worker maps bad_request to invalid_request")
			le, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok)
			require.Equal(t, CodeMissingCapability, le.Code)
			for _, c := range tt.names {
				require.Contains(t, le.Message, c)
			}
			for _, c := range tt.absent {
				require.NotContains(t, le.Message, c)
			}
			require.Contains(t, le.Message, `"main"`)
			require.Contains(t, le.Message, `"backup"`)
			require.Empty(t, out.Attempts)
			require.EqualValues(t, 0, mainP.Calls()+backupP.Calls(), "nothing is sent to a model that cannot take it")
		})
	}
}

// A capable group that fails keeps its own error: the missing capability of
// a fallback group is not the reason the request failed.
func TestCapabilityDoesNotHideTheRealFailure(t *testing.T) {
	t.Parallel()
	down := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
	blind := lacking("vision")
	o := fast()
	o.Retry.MaxRetries = 1
	o.Fallbacks = []string{"backup"}
	r := newRouter(t,
		Group{Name: "main", Options: o, Deployments: []Deployment{dep("a", down, DeploymentOptions{})}},
		Group{Name: "backup", Options: fast(), Deployments: []Deployment{dep("b", blind, DeploymentOptions{})}},
	)
	out, err := r.Execute(t.Context(), &Call{Group: "main", Request: imageRequest()}, nil)
	require.ErrorIs(t, err, llm.ErrUnavailable)
	require.EqualValues(t, 2, down.Calls())
	require.EqualValues(t, 0, blind.Calls())
	require.Len(t, out.Attempts, 2)
}

// Mid-stream continue carries text on; a tool call cut mid-stream is always
// restarted, so the client never assembles arguments from two answers.
func TestContinueNeverUsedForToolCalls(t *testing.T) {
	t.Parallel()
	p := mock.New(mock.Config{ParallelToolCalls: 2, Script: []mock.Step{{FailAfter: 3}}})
	o := fast()
	o.MidStream = MidStreamContinue
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
	rec := &recorder{}
	out, err := r.Execute(t.Context(), &Call{Group: "g", Request: toolRequest()}, rec.emit)
	require.NoError(t, err)
	require.Equal(t, []EventType{EventStart, EventToolCall, EventToolCall, EventToolCall, EventRetry, EventRestart, EventStart}, rec.types()[:7])
	reqs := p.Requests()
	require.Len(t, reqs, 2)
	require.Len(t, reqs[1].Messages, 1, "no assistant prefix for a tool call")
	require.Len(t, out.ToolCalls, 2)
	for _, tc := range out.ToolCalls {
		require.True(t, json.Valid([]byte(tc.Arguments)), tc.Arguments)
	}
}
