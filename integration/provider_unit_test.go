package integration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
)

// TestProviderMock drives the randomized schedule's provider mock with
// OpenAI's own SDK: its answers must be what the SDK accepts (text, a tool
// call, JSON matching chaosSchema), every call must be recorded with its
// job and worker, and a storm must make calls fail. It needs no Docker.
func TestProviderMock(t *testing.T) {
	t.Parallel()
	p, err := startProviderMock("127.0.0.1:0", 7, time.Millisecond)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	client := oai.NewClient(option.WithBaseURL(p.URL), option.WithAPIKey("sk-test"), option.WithMaxRetries(0),
		option.WithHeader("X-Worker", "worker-9"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	stream := func(params oai.ChatCompletionNewParams) (oai.ChatCompletionAccumulator, error) {
		s := client.Chat.Completions.NewStreaming(ctx, params)
		defer s.Close()
		var acc oai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		return acc, s.Err()
	}
	msg := func(id string, tokens string) []oai.ChatCompletionMessageParamUnion {
		return []oai.ChatCompletionMessageParamUnion{oai.UserMessage("[job " + id + "] " + tokens + " test")}
	}

	acc, err := stream(oai.ChatCompletionNewParams{Model: "m", Messages: msg("text-1", "[tokens 5]")})
	require.NoError(t, err)
	require.Equal(t, "w0 w1 w2 w3 w4 ", acc.Choices[0].Message.Content)
	require.Equal(t, "stop", acc.Choices[0].FinishReason)

	acc, err = stream(oai.ChatCompletionNewParams{Model: "m", Messages: msg("tool-1", ""),
		Tools: []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(oai.FunctionDefinitionParam{Name: "lookup"})}})
	require.NoError(t, err)
	require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
	require.Len(t, acc.Choices[0].Message.ToolCalls, 1)
	require.Equal(t, "lookup", acc.Choices[0].Message.ToolCalls[0].Function.Name)
	require.JSONEq(t, `{"city":"Lyon"}`, acc.Choices[0].Message.ToolCalls[0].Function.Arguments)

	acc, err = stream(oai.ChatCompletionNewParams{Model: "m", Messages: msg("json-1", ""),
		ResponseFormat: oai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &oai.ResponseFormatJSONSchemaParam{
			JSONSchema: oai.ResponseFormatJSONSchemaJSONSchemaParam{Name: "city", Schema: json.RawMessage(chaosSchema)},
		}}})
	require.NoError(t, err)
	require.JSONEq(t, chaosAnswer, acc.Choices[0].Message.Content)

	calls := p.Calls()
	require.Len(t, calls, 3)
	for i, job := range []string{"text-1", "tool-1", "json-1"} {
		require.Equal(t, job, calls[i].Job)
		require.Equal(t, "worker-9", calls[i].Worker)
		require.Empty(t, calls[i].Fault)
	}

	// A storm: some calls fail at once (500, 429), some streams are cut;
	// hangs end when the client gives up.
	p.storm.Store(true)
	failed := 0
	for range 60 {
		cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
		s := client.Chat.Completions.NewStreaming(cctx, oai.ChatCompletionNewParams{Model: "m", Messages: msg("storm-1", "[tokens 6]")})
		var finish string
		for s.Next() {
			if c := s.Current(); len(c.Choices) > 0 && c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if s.Err() != nil || finish == "" {
			failed++
		}
		_ = s.Close()
		ccancel()
	}
	p.storm.Store(false)
	faults := map[string]int{}
	for _, c := range p.Calls()[3:] {
		faults[c.Fault]++
	}
	require.Equal(t, failed, 60-faults[""], "every faulty call failed, no clean one did: %v", faults)
	for _, f := range []string{"unavailable", "rate_limited", "cut"} {
		require.Positive(t, faults[f], "a storm of 60 calls has some %s: %v", f, faults)
	}
}
