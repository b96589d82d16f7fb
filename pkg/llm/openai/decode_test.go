package openai_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

// The package decodes chunk JSON itself (not through the SDK's chunk type);
// these cases pin what that decoder tolerates and what ends a stream.
func TestStreamChunkDecoding(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		events  []string
		want    []llm.Chunk
		fails   bool
		wantErr llm.Kind // when fails
	}{
		{
			name: "null error member is not an error event",
			events: []string{
				`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"error":null}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				"[DONE]",
			},
			want: []llm.Chunk{{Delta: "a"}, {FinishReason: llm.FinishStop}},
		},
		{
			name: "a field of an unexpected type is skipped",
			events: []string{
				`{"choices":[{"index":0,"delta":{"content":"a"},"logprobs":null,"finish_reason":null}],"created":"yesterday"}`,
				`{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}],"usage":{"prompt_tokens":"2","completion_tokens":1,"total_tokens":0}}`,
				"[DONE]",
			},
			want: []llm.Chunk{{Delta: "a"}, {Delta: "b"}, {FinishReason: llm.FinishStop, Usage: &llm.Usage{CompletionTokens: 1, TotalTokens: 1}}},
		},
		{
			name: "fields absent from an event are not carried over from the previous one",
			events: []string{
				`{"choices":[{"index":0,"delta":{"content":"a","tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":""}}]}}]}`,
				`{"choices":[{"index":0,"delta":{}}],"usage":null}`,
				`{"choices":[{"index":0,"delta":{"content":"b"}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
				"[DONE]",
			},
			want: []llm.Chunk{
				{Delta: "a", ToolCalls: []llm.ToolCallDelta{{ID: "call_1", Name: "f"}}},
				{Delta: "b"},
				{FinishReason: llm.FinishToolCalls},
			},
		},
		{
			name: "stray choices are ignored",
			events: []string{
				`{"choices":[{"index":1,"delta":{"content":"x"}},{"index":0,"delta":{"content":"a"}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`,
				"[DONE]",
			},
			want: []llm.Chunk{{Delta: "a"}, {FinishReason: llm.FinishLength}},
		},
		{
			name: "malformed JSON after output is a mid-stream failure",
			events: []string{
				`{"choices":[{"index":0,"delta":{"content":"a"}}]}`,
				`{"choices":[{"index":0,`,
			},
			want:    []llm.Chunk{{Delta: "a"}},
			fails:   true,
			wantErr: llm.KindUnknown,
		},
		{
			name: "error event with a string error",
			events: []string{
				`{"choices":[{"index":0,"delta":{"content":"a"}}]}`,
				`{"error":"model overloaded"}`,
			},
			want:    []llm.Chunk{{Delta: "a"}},
			fails:   true,
			wantErr: llm.KindUnavailable,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, _ *http.Request) { sse(w, tc.events...) })
			s, err := c.Stream(ctx(t), userReq("hi"))
			require.NoError(t, err)
			chunks, err := drain(t, s)
			require.Equal(t, tc.want, chunks)
			if !tc.fails {
				require.NoError(t, err)
				return
			}
			le, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tc.wantErr, le.Kind, "%v", err)
			require.True(t, le.MidStream)
		})
	}
}
