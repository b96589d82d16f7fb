package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/switchyard/switchyard/pkg/llm"
)

// stream adapts the SDK's chunk stream to llm.Stream.
//
// OpenAI sends the finish_reason in the last chunk with choices and, with
// stream_options.include_usage, the usage in one more chunk with no choices,
// then "data: [DONE]". stream holds the finish reason back until the SDK
// stream ends and emits it together with the usage as the last chunk, so the
// last chunk always carries both. An SDK stream that ends before a
// finish_reason was seen was cut: Err reports KindUnavailable, MidStream.
//
// A refusal (delta.refusal) is collected rather than emitted; at the end of
// the stream it becomes a KindContentPolicy error carrying the refusal text.
// A finish_reason "content_filter" before any output is a KindContentPolicy
// error as well; after output it is emitted as llm.FinishContentFilter.
//
// The SDK sends the request, classifies HTTP errors and owns the response
// (its Close releases the connection), but its chunk decoding (the reflective
// apijson layer behind ChatCompletionChunk.UnmarshalJSON) cost most of a
// job's CPU. So when the request succeeded, stream never calls the SDK
// stream's Next: it reads the response body's events with the SDK's own SSE
// decoder (ssestream.NewDecoder) and decodes each event's JSON into
// wireChunk, which holds only the fields used here. The end of stream,
// "[DONE]" and error events are handled as ssestream.Stream handles them.
type stream struct {
	c   *Client
	ctx context.Context
	sdk *ssestream.Stream[oai.ChatCompletionChunk] // owns the response; its Close releases it
	dec ssestream.Decoder                          // the response's events; nil when the request failed
	lr  *lineReader                                // dec's input (see coalesce)

	queue   []llm.Chunk  // chunks ready to hand out
	qbuf    [1]llm.Chunk // queue's first backing array: it rarely holds more
	wire    wireChunk    // reused for every event
	text    []byte       // coalesce's merged text, reused
	cur     llm.Chunk
	err     error
	done    bool // the SDK stream ended; queue holds what is left
	started bool // Stream returned: later failures are mid-stream

	output  bool // text or tool calls were produced
	got     bool // at least one SDK chunk arrived
	finish  llm.FinishReason
	usage   *llm.Usage
	refusal strings.Builder
}

// prefetch reads until the first chunk is ready or the stream ended. An
// error here is a failure before any output.
func (s *stream) prefetch() error {
	s.fill()
	if s.err != nil && len(s.queue) == 0 {
		return s.err
	}
	s.started = true
	return nil
}

func (s *stream) Next() bool {
	if len(s.queue) == 0 {
		s.fill()
	}
	if len(s.queue) == 0 {
		s.cur = llm.Chunk{}
		return false
	}
	s.cur = s.queue[0]
	if len(s.queue) == 1 {
		s.queue = s.queue[:0] // keep the backing array: no allocation per chunk
	} else {
		s.queue = s.queue[1:]
	}
	return true
}

func (s *stream) Current() llm.Chunk { return s.cur }

func (s *stream) Err() error {
	if len(s.queue) > 0 {
		return nil // not reached yet
	}
	return s.err
}

// Close releases the connection. The SDK stream's Close is idempotent.
func (s *stream) Close() error {
	s.done = true
	s.queue = nil
	return s.sdk.Close()
}

// fill reads events until one yields output or the stream ended, then
// merges into it what has already arrived (see coalesce).
func (s *stream) fill() {
	defer s.coalesce()
	for !s.done && len(s.queue) == 0 {
		if s.dec == nil {
			// The request failed (or the SDK gave no body): the SDK stream
			// holds the error.
			s.stop(s.sdk.Err())
			return
		}
		if !s.dec.Next() {
			s.stop(s.dec.Err())
			return
		}
		s.event(s.dec.Event())
	}
}

// event handles one SSE event: "[DONE]", an error event, or a chunk.
func (s *stream) event(ev ssestream.Event) {
	if bytes.HasPrefix(ev.Data, doneEvent) {
		s.stop(nil)
		return
	}
	ch := s.wire.reset()
	err := json.Unmarshal(ev.Data, ch)
	if len(ch.Error) > 0 && !bytes.Equal(ch.Error, jsonNull) {
		s.stop(&ssestream.StreamError{Message: "received error while streaming: " + string(ch.Error), Event: ev})
		return
	}
	// A field of an unexpected type (a compatible server's quirk) is
	// skipped, as the SDK's decoder skips it; malformed JSON ends the
	// stream.
	if _, typeErr := errors.AsType[*json.UnmarshalTypeError](err); err != nil && !typeErr {
		s.stop(err)
		return
	}
	s.take(ch)
}

// stop ends the stream with the SDK stream's terminal error (nil after
// "[DONE]") and releases the response at once, as the SDK stream does.
func (s *stream) stop(err error) {
	s.done = true
	_ = s.sdk.Close()
	s.end(err)
}

var (
	doneEvent = []byte("[DONE]")
	jsonNull  = []byte("null")
)

// wireChunk is the part of a chat.completion.chunk this package reads. An
// "error" member (other than null) makes the event an error event.
type wireChunk struct {
	Choices []wireChoice    `json:"choices"`
	Usage   *wireUsage      `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

// reset readies w for the next event and returns it. encoding/json decodes
// array elements into a slice's spare capacity without zeroing them first, so
// the old choices are cleared.
func (w *wireChunk) reset() *wireChunk {
	clear(w.Choices[:cap(w.Choices)])
	*w = wireChunk{Choices: w.Choices[:0]}
	return w
}

type wireChoice struct {
	Index        int64     `json:"index"`
	Delta        wireDelta `json:"delta"`
	FinishReason string    `json:"finish_reason"`
}

type wireDelta struct {
	Content   string         `json:"content"`
	Refusal   string         `json:"refusal"`
	ToolCalls []wireToolCall `json:"tool_calls"`
}

type wireToolCall struct {
	Index    int64  `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wireUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// take turns one chunk into at most one llm.Chunk.
func (s *stream) take(ch *wireChunk) {
	s.got = true
	if u := ch.Usage; u != nil {
		s.usage = &llm.Usage{
			PromptTokens:     int(u.PromptTokens),
			CompletionTokens: int(u.CompletionTokens),
			TotalTokens:      int(u.TotalTokens),
		}
		if s.usage.TotalTokens == 0 {
			s.usage.TotalTokens = s.usage.PromptTokens + s.usage.CompletionTokens
		}
	}
	var out llm.Chunk
	for i := range ch.Choices {
		choice := &ch.Choices[i]
		if choice.Index != 0 {
			continue // n is never set; ignore stray choices
		}
		d := &choice.Delta
		out.Delta += d.Content
		if d.Refusal != "" {
			s.refusal.WriteString(d.Refusal)
		}
		for _, tc := range d.ToolCalls {
			out.ToolCalls = append(out.ToolCalls, llm.ToolCallDelta{
				Index:     int(tc.Index),
				ID:        tc.ID,
				Name:      tc.Function.Name,
				Arguments: tc.Function.Arguments,
			})
		}
		if choice.FinishReason != "" {
			s.finish = finishReason(choice.FinishReason)
		}
	}
	if out.Delta != "" || len(out.ToolCalls) > 0 {
		s.output = true
		s.queue = append(s.queue, out)
	}
}

// end decides how the stream ended: queue the final chunk, or set err.
func (s *stream) end(sdkErr error) {
	switch {
	case s.refusal.Len() > 0:
		// A refusal is the model declining: treat it like the vendor's
		// content filter so content_policy_fallbacks apply.
		s.fail(&llm.Error{Kind: llm.KindContentPolicy, Code: "refusal", Message: s.c.redact(s.refusal.String())})
	case s.finish == llm.FinishContentFilter && !s.output:
		s.fail(&llm.Error{Kind: llm.KindContentPolicy, Code: "content_filter", Message: "the answer was withheld by the content filter"})
	case s.finish != "":
		// Complete answer. A connection lost after the finish_reason only
		// cost us the usage chunk (or [DONE]); the answer is whole.
		s.queue = append(s.queue, llm.Chunk{FinishReason: s.finish, Usage: s.usage})
	case sdkErr != nil:
		e := s.c.classify(s.ctx, sdkErr)
		if e.Kind == llm.KindConnection && s.got {
			// The answer had begun: a cut connection is a truncated answer.
			e.Kind = llm.KindUnavailable
		}
		s.fail(e)
	default:
		if err := s.ctx.Err(); err != nil {
			s.fail(s.c.classify(s.ctx, err))
			return
		}
		s.fail(&llm.Error{Kind: llm.KindUnavailable, Message: "stream ended without a finish_reason (connection cut)"})
	}
}

func (s *stream) fail(e *llm.Error) {
	if e.Provider == "" {
		e.Provider = s.c.name
	}
	e.MidStream = s.started
	s.err = e
}

func finishReason(r string) llm.FinishReason {
	switch r {
	case "stop", "eos", "end_turn", "stop_sequence":
		return llm.FinishStop
	case "length", "max_tokens":
		return llm.FinishLength
	case "tool_calls", "function_call", "tool_use":
		return llm.FinishToolCalls
	case "content_filter":
		return llm.FinishContentFilter
	}
	return llm.FinishReason(r) // unknown vendor reasons pass through
}
