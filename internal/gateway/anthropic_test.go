package gateway_test

import (
	"errors"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/stretchr/testify/require"
)

func TestAnthropicMessagesStreamedAndWhole(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.anthropic()
	params := anthropic.MessageNewParams{
		Model: "claude-haiku-4-5", MaxTokens: 100, System: []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("tell me"))},
	}
	s := c.Messages.NewStreaming(ctx, params)
	var msg anthropic.Message
	var types []string
	for s.Next() {
		ev := s.Current()
		types = append(types, string(ev.Type))
		require.NoError(t, msg.Accumulate(ev))
	}
	require.NoError(t, s.Err())
	require.Equal(t, "message_start", types[0])
	require.Equal(t, "content_block_start", types[1])
	require.Equal(t, "content_block_delta", types[2])
	require.Equal(t, []string{"content_block_stop", "message_delta", "message_stop"}, types[len(types)-3:])
	require.Len(t, types, 2+8+3) // message_start, block start, 8 deltas, block stop, message_delta, message_stop
	require.Len(t, msg.Content, 1)
	require.NotEmpty(t, msg.Content[0].Text)
	require.EqualValues(t, "end_turn", msg.StopReason)
	require.EqualValues(t, 8, msg.Usage.OutputTokens)

	whole, err := c.Messages.New(ctx, params)
	require.NoError(t, err)
	require.Equal(t, msg.Content[0].Text, whole.Content[0].Text)
	require.EqualValues(t, "end_turn", whole.StopReason)
	require.EqualValues(t, "message", whole.Type)
}

func TestAnthropicToolUseStreamed(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.anthropic()
	s := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
		Model: "tools", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Oslo?"))},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}}}}},
	})
	var msg anthropic.Message
	for s.Next() {
		require.NoError(t, msg.Accumulate(s.Current()))
	}
	require.NoError(t, s.Err())
	require.EqualValues(t, "tool_use", msg.StopReason)
	var tool *anthropic.ToolUseBlock
	for _, b := range msg.Content {
		if b.Type == "tool_use" {
			tu := b.AsToolUse()
			tool = &tu
		}
	}
	require.NotNil(t, tool)
	require.Equal(t, "get_weather", tool.Name)
	require.NotEmpty(t, tool.ID)
	require.NotEmpty(t, tool.Input)
}

func TestAnthropicErrors(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.anthropic()
	for _, tc := range []struct {
		model  string
		status int
		typ    string
	}{
		{"no-such-model", 404, "not_found_error"},
		{"err-rate-limited", 429, "rate_limit_error"},
		{"err-unavailable", 529, "overloaded_error"},
		{"err-auth", 502, "api_error"},
		{"err-context-window-exceeded", 400, "invalid_request_error"},
	} {
		_, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: anthropic.Model(tc.model), MaxTokens: 10,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
		var e *anthropic.Error
		require.True(t, errors.As(err, &e), "%s: %v", tc.model, err)
		require.Equal(t, tc.status, e.StatusCode, tc.model)
		require.Contains(t, e.RawJSON(), `"type":"`+tc.typ+`"`, tc.model)
		require.Contains(t, e.RawJSON(), `"type":"error"`, tc.model)
	}
}
