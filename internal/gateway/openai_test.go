package gateway_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"
)

func userMsg(s string) []openai.ChatCompletionMessageParamUnion {
	return []openai.ChatCompletionMessageParamUnion{openai.UserMessage(s)}
}

func TestOpenAIStreamedChatCompletion(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.openai()
	s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: userMsg("tell me"),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	var chunks []openai.ChatCompletionChunk
	for s.Next() {
		chunks = append(chunks, s.Current())
		require.True(t, acc.AddChunk(s.Current()))
	}
	require.NoError(t, s.Err())
	require.NoError(t, s.Close())
	// role delta, 8 content deltas, finish, usage
	require.Len(t, chunks, 11)
	require.Equal(t, "assistant", chunks[0].Choices[0].Delta.Role)
	require.EqualValues(t, "chat.completion.chunk", chunks[0].Object)
	require.Equal(t, "gpt-4o-mini", chunks[0].Model)
	require.Equal(t, "stop", chunks[9].Choices[0].FinishReason)
	require.Empty(t, chunks[10].Choices)
	require.EqualValues(t, 8, chunks[10].Usage.CompletionTokens)
	for _, ch := range chunks[1:9] {
		require.NotEmpty(t, ch.Choices[0].Delta.Content)
	}
	got := acc.Choices[0].Message.Content
	require.NotEmpty(t, got)
	require.EqualValues(t, 8, acc.Usage.CompletionTokens)

	// The same prompt whole gives the same text (the mock is deterministic).
	whole, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("tell me")})
	require.NoError(t, err)
	require.EqualValues(t, "chat.completion", whole.Object)
	require.Equal(t, got, whole.Choices[0].Message.Content)
	require.Equal(t, "stop", whole.Choices[0].FinishReason)
	require.EqualValues(t, 8, whole.Usage.CompletionTokens)
}

func TestOpenAIStreamWithoutUsageHasNoUsageChunk(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	c := f.openai()
	s := c.Chat.Completions.NewStreaming(ctxT(t, 20*time.Second), openai.ChatCompletionNewParams{Model: "demo", Messages: userMsg("x")})
	n := 0
	for s.Next() {
		require.NotEmpty(t, s.Current().Choices, "no usage chunk without include_usage")
		require.False(t, s.Current().JSON.Usage.Valid())
		n++
	}
	require.NoError(t, s.Err())
	require.Equal(t, 10, n)
}

func TestOpenAIToolCallsStreamedAndAssembled(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.openai()
	params := openai.ChatCompletionNewParams{
		Model: "tools", Messages: userMsg("weather in Oslo?"),
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "get_weather", Description: openai.String("weather of a city"),
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
		})},
	}
	s := c.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	sawToolDelta := false
	for s.Next() {
		ch := s.Current()
		acc.AddChunk(ch)
		if len(ch.Choices) > 0 && len(ch.Choices[0].Delta.ToolCalls) > 0 {
			sawToolDelta = true
		}
	}
	require.NoError(t, s.Err())
	require.True(t, sawToolDelta)
	msg := acc.Choices[0].Message
	require.Len(t, msg.ToolCalls, 1)
	require.Equal(t, "get_weather", msg.ToolCalls[0].Function.Name)
	require.NotEmpty(t, msg.ToolCalls[0].ID)
	var args map[string]any
	require.NoError(t, json.Unmarshal([]byte(msg.ToolCalls[0].Function.Arguments), &args))
	require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)

	whole, err := c.Chat.Completions.New(ctx, params)
	require.NoError(t, err)
	require.Equal(t, msg.ToolCalls[0].Function.Arguments, whole.Choices[0].Message.ToolCalls[0].Function.Arguments)
	require.Equal(t, "tool_calls", whole.Choices[0].FinishReason)
}

func TestOpenAIJSONSchemaGetsValidatedJSON(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	c := f.openai()
	schema := map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"city", "temp_c"},
		"properties": map[string]any{"city": map[string]any{"type": "string"}, "temp_c": map[string]any{"type": "integer"}},
	}
	params := openai.ChatCompletionNewParams{
		Model: "json", Messages: userMsg("weather as JSON"),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather", Schema: schema, Strict: openai.Bool(true)},
		}},
	}
	for _, stream := range []bool{false, true} {
		var content string
		if stream {
			s := c.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			require.NoError(t, s.Err())
			content = acc.Choices[0].Message.Content
		} else {
			r, err := c.Chat.Completions.New(ctx, params)
			require.NoError(t, err)
			content = r.Choices[0].Message.Content
		}
		var v struct {
			City  string `json:"city"`
			TempC *int   `json:"temp_c"`
		}
		dec := json.NewDecoder(stringsReader(content))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&v), "stream=%v: %s", stream, content)
		require.NotEmpty(t, v.City)
		require.NotNil(t, v.TempC)
	}
}

func apiError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var e *openai.Error
	require.True(t, errors.As(err, &e), "want *openai.Error, got %T: %v", err, err)
	return e
}
