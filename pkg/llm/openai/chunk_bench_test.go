package openai

import (
	"encoding/json"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// benchEvent is a typical content chunk as OpenAI sends it.
var benchEvent = []byte(`{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":{"content":"word "},"logprobs":null,"finish_reason":null}]}` + "\n")

// BenchmarkChunk is the per-chunk cost of the stream once the SSE decoder
// has framed an event: decoding its JSON and mapping it to an llm.Chunk.
func BenchmarkChunk(b *testing.B) {
	s := &stream{c: &Client{name: "bench"}}
	s.queue = s.qbuf[:0]
	ev := ssestream.Event{Data: benchEvent}
	b.ReportAllocs()
	for b.Loop() {
		s.event(ev)
		if len(s.queue) != 1 || s.queue[0].Delta != "word " {
			b.Fatalf("queue %+v", s.queue)
		}
		s.queue = s.queue[:0]
	}
}

// BenchmarkChunkSDK is what BenchmarkChunk replaced: the SDK's reflective
// decoding of the same event into oai.ChatCompletionChunk. Kept as the
// reference the lean decoder is measured against.
func BenchmarkChunkSDK(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var ch oai.ChatCompletionChunk
		if err := json.Unmarshal(benchEvent, &ch); err != nil {
			b.Fatal(err)
		}
		if ch.Choices[0].Delta.Content != "word " {
			b.Fatal(ch.Choices)
		}
	}
}
