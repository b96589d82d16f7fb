package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

const person = `{"type":"object","properties":{"name":{"type":"string","minLength":1},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}`

func personCall() *policy.Call {
	return &policy.Call{Group: "g", Request: &llm.Request{
		Messages:       []llm.Message{{Role: llm.RoleUser, Content: "Invent a person"}},
		ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "person", Schema: json.RawMessage(person)},
	}}
}

func structuredChain(t *testing.T, m *mock.Provider) policy.Executor {
	t.Helper()
	r, err := policy.NewRouter([]policy.Group{{Name: "g", Deployments: []policy.Deployment{{Name: "d", Model: "m", Provider: m}}}})
	require.NoError(t, err)
	return policy.Chain(r, policy.Structured(policy.StructuredOptions{}))
}

// A pkg/policy user, with no NATS: the first two answers do not validate
// (no JSON, then JSON against the schema), each is re-asked with what was
// wrong, and the third is the validated answer.
func TestStructuredValidatesAndReasks(t *testing.T) {
	t.Parallel()
	m := mock.New(mock.Config{InvalidJSONFirst: 2})
	var events []policy.Event
	out, err := structuredChain(t, m).Execute(context.Background(), personCall(), func(e policy.Event) { events = append(events, e) })
	require.NoError(t, err)

	obj, ok := out.JSON.(map[string]any)
	require.True(t, ok, "the validated JSON value: %#v", out.JSON)
	require.NotEmpty(t, obj["name"])
	require.True(t, json.Valid([]byte(out.Text)), out.Text)
	require.Len(t, out.Attempts, 3)
	for _, a := range out.Attempts[:2] {
		require.Equal(t, "validation_failed", a.Code)
		code, _ := policy.WireCode(a.Err)
		require.Equal(t, "validation_failed", code)
	}
	require.Nil(t, out.Attempts[2].Err)

	var restarts []policy.Event
	for _, e := range events {
		if e.Type == policy.EventRestart {
			restarts = append(restarts, e)
		}
	}
	require.Len(t, restarts, 2, "one restart per re-ask")
	require.Equal(t, "validation_failed", restarts[0].Code)
	require.Contains(t, restarts[0].Reason, "not valid JSON")

	// The mock takes no schema natively: the router puts it into a system
	// message ahead of the conversation.
	reqs := m.Requests()
	require.Len(t, reqs, 3)
	require.Len(t, reqs[0].Messages, 2)
	require.Len(t, reqs[1].Messages, 4, "the invalid answer and its errors were appended")
	require.Equal(t, llm.RoleAssistant, reqs[1].Messages[2].Role)
	require.Len(t, reqs[2].Messages, 6)
}

// With no re-asks left, the call fails validation_failed with the last
// answer's violations; the caller's request is never modified.
func TestStructuredGivesUp(t *testing.T) {
	t.Parallel()
	m := mock.New(mock.Config{InvalidJSONFirst: 5})
	c := personCall()
	zero := 0
	c.ValidationRetries = &zero
	out, err := structuredChain(t, m).Execute(context.Background(), c, nil)
	ve, ok := errors.AsType[*policy.ValidationError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, 1, ve.Tries)
	require.NotEmpty(t, ve.Violations)
	code, retryable := policy.WireCode(err)
	require.Equal(t, "validation_failed", code)
	require.False(t, retryable)
	require.Len(t, out.Attempts, 1)
	require.Len(t, c.Request.Messages, 1)
	require.EqualValues(t, 1, m.Calls())
}

// A bad schema is the caller's error, before any call; plain text passes
// through untouched.
func TestStructuredContract(t *testing.T) {
	t.Parallel()
	m := mock.New(mock.Config{Text: "just text"})
	e := structuredChain(t, m)
	bad := personCall()
	bad.Request.ResponseFormat.Schema = json.RawMessage(`{"type": 12}`)
	_, err := e.Execute(context.Background(), bad, nil)
	code, _ := policy.WireCode(err)
	require.Equal(t, "invalid_request", code, "%v", err)
	require.Zero(t, m.Calls())

	out, err := e.Execute(context.Background(), &policy.Call{Group: "g", Request: &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}}, nil)
	require.NoError(t, err)
	require.Equal(t, "just text", out.Text)
	require.Nil(t, out.JSON)
}

// A call with Partials gets the object parsed so far, and the last partial
// is the answer.
func TestStructuredPartials(t *testing.T) {
	t.Parallel()
	m := mock.New(mock.Config{})
	c := personCall()
	c.Partials = true
	var partials []any
	out, err := structuredChain(t, m).Execute(context.Background(), c, func(e policy.Event) {
		if e.Type == policy.EventPartial {
			partials = append(partials, e.Partial)
		}
	})
	require.NoError(t, err)
	require.NotEmpty(t, partials)
	require.Equal(t, out.JSON, partials[len(partials)-1])
}
