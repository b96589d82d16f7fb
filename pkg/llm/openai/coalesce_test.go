package openai_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

// events writes SSE events in one write and flushes them, so that they
// arrive together.
func events(w http.ResponseWriter, evs ...string) {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "data: %s\n\n", e)
	}
	_, _ = w.Write([]byte(b.String()))
	w.(http.Flusher).Flush()
}

// TestStreamCoalescesChunksThatArrivedTogether: text chunks already
// received when the next chunk is handed on are handed on as one; the first
// chunk is handed on alone, and tool calls and the end are not merged into
// text.
func TestStreamCoalescesChunksThatArrivedTogether(t *testing.T) {
	t.Parallel()
	first := make(chan struct{})
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		events(w, chunk(`{"role":"assistant","content":"","refusal":null}`, ""), chunk(`{"content":"a"}`, ""))
		select {
		case <-first:
		case <-r.Context().Done():
			return
		}
		events(w,
			chunk(`{"content":"b"}`, ""), chunk(`{"content":"c"}`, ""), chunk(`{"content":"d"}`, ""),
			chunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}`, ""),
			chunk(`{"content":"e"}`, ""), chunk(`{"content":"f"}`, ""),
			chunk(`{}`, "stop"), usageChunk, "[DONE]")
	})
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	require.True(t, s.Next())
	require.Equal(t, llm.Chunk{Delta: "a"}, s.Current())
	close(first)
	chunks, err := drain(t, s)
	require.NoError(t, err)
	require.Equal(t, []llm.Chunk{
		{Delta: "bcd"},
		{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "call_1", Name: "f"}}},
		{Delta: "ef"},
		{FinishReason: llm.FinishStop, Usage: &llm.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15}},
	}, chunks)
}

// TestStreamDoesNotWaitToCoalesce: a chunk is handed on as soon as it
// arrived, not held for one still on its way (the server sends the next only
// once the test has the one before).
func TestStreamDoesNotWaitToCoalesce(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	words := []string{"one", "two", "three", "four"}
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, word := range words {
			// A comment and an event without data arrive with the chunk: an
			// event is only merged when it is whole and has data.
			_, _ = fmt.Fprintf(w, "data: %s\n\n: keep-alive\n\nevent: ping\n\ndata: {\"choices\":[{\"index\":0,", chunk(`{"content":"`+word+`"}`, ""))
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			_, _ = fmt.Fprint(w, "\"delta\":{}}]}\n\n")
		}
		events(w, chunk(`{}`, "stop"), "[DONE]")
	})
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	for _, word := range words {
		require.True(t, s.Next(), "chunk %q", word)
		require.Equal(t, llm.Chunk{Delta: word}, s.Current())
		next <- struct{}{}
	}
	require.True(t, s.Next())
	require.Equal(t, llm.FinishStop, s.Current().FinishReason)
	require.False(t, s.Next())
	require.NoError(t, s.Err())
	require.NoError(t, s.Close())
}

// TestStreamLongLines: lines longer than the reader's buffer pass whole.
func TestStreamLongLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100<<10)
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		events(w, chunk(`{"content":"a"}`, ""), chunk(`{"content":"`+long+`"}`, ""), chunk(`{"content":"b"}`, ""), chunk(`{}`, "stop"), "[DONE]")
	})
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	chunks, err := drain(t, s)
	require.NoError(t, err)
	var text strings.Builder
	for _, ch := range chunks {
		text.WriteString(ch.Delta)
	}
	require.Equal(t, "a"+long+"b", text.String())
	require.Equal(t, llm.FinishStop, chunks[len(chunks)-1].FinishReason)
}
