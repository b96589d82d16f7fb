package worker_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

const (
	weatherParams = `{"type":"object","properties":{"city":{"type":"string","minLength":1},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}`
	timeParams    = `{"type":"object","properties":{"tz":{"type":"string","minLength":1}},"required":["tz"],"additionalProperties":false}`
)

// toolsEnv is one worker serving the groups of the tool and image tests,
// each on its own mocks.
type toolsEnv struct {
	*fleetEnv
	mocks map[string]*mock.Provider // by deployment name
}

func TestToolsAndImagesEndToEnd(t *testing.T) {
	t.Parallel()
	no := false
	blind := &mock.Capabilities{Vision: &no}
	te := &toolsEnv{fleetEnv: newFleetEnv(t), mocks: map[string]*mock.Provider{
		"one":            mock.New(mock.Config{}),
		"parallel":       mock.New(mock.Config{ParallelToolCalls: 3}),
		"conv":           mock.New(mock.Config{ParallelToolCalls: 2}),
		"blind":          mock.New(mock.Config{Capabilities: blind}),
		"seeing":         mock.New(mock.Config{Capabilities: &mock.Capabilities{}}),
		"blind-only":     mock.New(mock.Config{Capabilities: blind}),
		"tool-less-only": mock.New(mock.Config{Capabilities: &mock.Capabilities{Tools: &no}}),
	}}
	single := func(group, deployment string) policy.Group {
		return policy.Group{Name: group, Options: quick(1, policy.BreakerOptions{}), Deployments: []policy.Deployment{{Name: deployment, Model: "mock-1", Provider: te.mocks[deployment]}}}
	}
	groups := []policy.Group{
		single("tools", "one"),
		single("tools-parallel", "parallel"),
		single("tools-conv", "conv"),
		// The first deployment is preferred, but cannot see.
		{Name: "vision", Options: quick(1, policy.BreakerOptions{}), Deployments: []policy.Deployment{
			{Name: "blind", Model: "mock-1", Provider: te.mocks["blind"]},
			{Name: "seeing", Model: "mock-1", Provider: te.mocks["seeing"], Options: policy.DeploymentOptions{Priority: 1}},
		}},
		single("blind-only", "blind-only"),
		single("tool-less-only", "tool-less-only"),
	}
	te.run(te.newWorker(groups, false), worker.Config{})

	for _, tc := range []struct {
		name string
		run  func(*testing.T, *toolsEnv)
	}{
		{"streamed tool call", testStreamedToolCall},
		{"parallel tool calls", testParallelToolCalls},
		{"tool results complete the conversation", testToolConversation},
		{"image skips the deployment without vision", testImageRouting},
		{"no capable deployment anywhere", testMissingCapability},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, te)
		})
	}
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

func toolJob(t *testing.T, id string) *bus.Request {
	t.Helper()
	r := userReq(id, "What is the weather in Oslo, and the time there?")
	r.Tools = []bus.Tool{
		{Type: "function", Function: bus.FunctionSpec{Name: "get_weather", Description: "Current weather in a city", Parameters: jsonValue(t, weatherParams)}},
		{Type: "function", Function: bus.FunctionSpec{Name: "get_time", Description: "Local time in a zone", Parameters: jsonValue(t, timeParams)}},
	}
	r.ToolChoice = &bus.ToolChoice{Mode: "required"}
	return r
}

// requireArgsValid checks that arguments is one complete JSON object valid
// against the named tool's parameter schema.
func requireArgsValid(t *testing.T, tool, arguments string) {
	t.Helper()
	schema := map[string]string{"get_weather": weatherParams, "get_time": timeParams}[tool]
	require.NotEmpty(t, schema, "unknown tool %q", tool)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("mem://"+tool+".json", doc))
	sch, err := c.Compile("mem://" + tool + ".json")
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(arguments))
	require.NoError(t, err, "arguments %q are not one JSON value", arguments)
	require.NoError(t, sch.Validate(v), "arguments %s", arguments)
}

// assembled joins the tool_call events of evs by index, checking that each
// call's first fragment carries its id and name and later ones only
// arguments; it returns the calls in index order and the number of argument
// fragments.
func assembled(t *testing.T, evs []bus.Event) ([]bus.ToolCall, int) {
	t.Helper()
	var calls []bus.ToolCall
	frags := 0
	for _, ev := range evs {
		require.NotEqual(t, bus.EventChunk, ev.Type, "a tool call answer streams no text")
		if ev.Type != bus.EventToolCall {
			continue
		}
		d := ev.ToolCall
		require.NotNil(t, d, "tool_call event %d without tool_call", ev.Seq)
		switch {
		case d.Index == len(calls):
			require.NotEmpty(t, d.ID, "the first fragment of call %d carries its id", d.Index)
			require.NotEmpty(t, d.Name, "the first fragment of call %d carries its name", d.Index)
			calls = append(calls, bus.ToolCall{ID: d.ID, Type: "function", Function: bus.FunctionCall{Name: d.Name, Arguments: d.Arguments}})
		case d.Index >= 0 && d.Index < len(calls):
			require.Empty(t, d.ID, "only the first fragment carries the id")
			calls[d.Index].Function.Arguments += d.Arguments
		default:
			t.Fatalf("tool_call index %d out of order (have %d calls)", d.Index, len(calls))
		}
		if d.Arguments != "" {
			frags++
		}
	}
	return calls, frags
}

func testStreamedToolCall(t *testing.T, te *toolsEnv) {
	ctx := ctxT(t, 10*time.Second)
	job, err := te.client.Publish(ctx, "tools", toolJob(t, "tool-one"))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	requireOK(t, res)
	require.Equal(t, "tool_calls", res.FinishReason)
	require.Empty(t, res.Text)
	require.Equal(t, bus.EventStart, evs[0].Type)

	streamed, frags := assembled(t, evs)
	require.Len(t, streamed, 1)
	require.Greater(t, frags, 1, "the arguments arrive in fragments")
	require.Equal(t, streamed, res.ToolCalls, "the result carries what the events assembled")
	tc := res.ToolCalls[0]
	require.Equal(t, "function", tc.Type)
	require.Equal(t, "get_weather", tc.Function.Name)
	requireArgsValid(t, tc.Function.Name, tc.Function.Arguments)

	// The model got the tools and the choice.
	got := te.mocks["one"].Requests()
	require.Len(t, got, 1)
	require.Len(t, got[0].Tools, 2)
	require.JSONEq(t, weatherParams, string(got[0].Tools[0].Parameters))
	require.Equal(t, &llm.ToolChoice{Mode: llm.ToolChoiceRequired}, got[0].ToolChoice)
}

func testParallelToolCalls(t *testing.T, te *toolsEnv) {
	ctx := ctxT(t, 10*time.Second)
	job, err := te.client.Publish(ctx, "tools-parallel", toolJob(t, "tool-parallel"))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	requireOK(t, res)
	require.Equal(t, "tool_calls", res.FinishReason)

	streamed, _ := assembled(t, evs)
	require.Len(t, streamed, 3)
	require.Equal(t, streamed, res.ToolCalls)
	ids := map[string]bool{}
	for i, tc := range res.ToolCalls {
		ids[tc.ID] = true
		require.Equal(t, []string{"get_weather", "get_time", "get_weather"}[i], tc.Function.Name)
		requireArgsValid(t, tc.Function.Name, tc.Function.Arguments)
	}
	require.Len(t, ids, 3, "every call has its own id")
}

func testToolConversation(t *testing.T, te *toolsEnv) {
	ctx := ctxT(t, 10*time.Second)
	first := toolJob(t, "conv-1")
	job, err := te.client.Publish(ctx, "tools-conv", first)
	require.NoError(t, err)
	_, res := collect(t, ctx, job)
	requireOK(t, res)
	require.Len(t, res.ToolCalls, 2)

	// The client runs the tools and sends a second job: the conversation so
	// far, the assistant's calls and one tool message per call.
	second := toolJob(t, "conv-2")
	second.ToolChoice = &bus.ToolChoice{Mode: "auto"}
	second.Messages = append(second.Messages, bus.Message{Role: "assistant", ToolCalls: res.ToolCalls})
	for i, tc := range res.ToolCalls {
		second.Messages = append(second.Messages, bus.Message{Role: "tool", ToolCallID: tc.ID, Content: bus.Text(fmt.Sprintf(`{"result": %d}`, i))})
	}
	job, err = te.client.Publish(ctx, "tools-conv", second)
	require.NoError(t, err)
	evs, res2 := collect(t, ctx, job)
	requireOK(t, res2)
	require.Equal(t, "stop", res2.FinishReason)
	require.Empty(t, res2.ToolCalls)
	require.NotEmpty(t, res2.Text)
	require.Equal(t, res2.Text, text(evs))
	for _, ev := range evs {
		require.NotEqual(t, bus.EventToolCall, ev.Type)
	}

	// The model saw the calls and their results, paired by id.
	got := te.mocks["conv"].Requests()
	require.Len(t, got, 2)
	msgs := got[1].Messages
	require.Len(t, msgs, 4)
	require.Equal(t, llm.RoleAssistant, msgs[1].Role)
	for i, tc := range res.ToolCalls {
		require.Equal(t, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}, msgs[1].ToolCalls[i])
		require.Equal(t, llm.RoleTool, msgs[2+i].Role)
		require.Equal(t, tc.ID, msgs[2+i].ToolCallID)
		require.JSONEq(t, fmt.Sprintf(`{"result": %d}`, i), msgs[2+i].Content)
	}
}

func imageJob(id string) *bus.Request {
	return &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Content{Parts: []bus.Part{
		{Type: "text", Text: "What is in this picture?"},
		{Type: "image_url", ImageURL: &bus.ImageURL{URL: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", Detail: "low"}},
	}}}}}
}

func testImageRouting(t *testing.T, te *toolsEnv) {
	ctx := ctxT(t, 10*time.Second)
	res := te.submit(ctx, "vision", imageJob("img-1"))[0]
	requireOK(t, res)
	require.Equal(t, "seeing", res.Deployment)
	require.Len(t, res.Attempts, 1)
	require.NotEmpty(t, res.Text)
	got := te.mocks["seeing"].Requests()
	require.Len(t, got, 1)
	require.True(t, got[0].HasImages(), "the image part reaches the model")
	require.Equal(t, "low", got[0].Messages[0].Parts[1].Detail)

	// Text still goes to the preferred deployment: routing is per request.
	res = te.submit(ctx, "vision", userReq("img-2", "no picture this time"))[0]
	requireOK(t, res)
	require.Equal(t, "blind", res.Deployment)
	require.EqualValues(t, 1, te.mocks["blind"].Calls(), "only the text job reached it")
}

func testMissingCapability(t *testing.T, te *toolsEnv) {
	ctx := ctxT(t, 10*time.Second)
	tests := []struct {
		group, deployment string
		req               *bus.Request
		capability        string
	}{
		{"blind-only", "blind-only", imageJob("missing-vision"), "vision"},
		{"tool-less-only", "tool-less-only", toolJob(t, "missing-tools"), "tools"},
	}
	for _, tt := range tests {
		res := te.submit(ctx, tt.group, tt.req)[0]
		require.Equal(t, bus.StatusError, res.Status)
		require.Equal(t, bus.CodeInvalidRequest, res.Error.Code, "%+v", res.Error)
		require.False(t, res.Error.Retryable)
		require.Contains(t, res.Error.Message, tt.capability)
		require.Contains(t, res.Error.Message, "missing capability")
		require.Empty(t, res.Attempts)
		require.EqualValues(t, 0, te.mocks[tt.deployment].Calls(), "nothing is sent to a model that cannot take it")
	}
}
