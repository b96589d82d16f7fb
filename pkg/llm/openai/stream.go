package openai

import (
	"context"
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
type stream struct {
	c   *Client
	ctx context.Context
	sdk *ssestream.Stream[oai.ChatCompletionChunk]

	queue   []llm.Chunk // chunks ready to hand out
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
	s.queue = s.queue[1:]
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

// fill reads SDK chunks until one yields output or the stream ends.
func (s *stream) fill() {
	for !s.done && len(s.queue) == 0 {
		if !s.sdk.Next() {
			s.done = true
			s.end(s.sdk.Err())
			return
		}
		s.take(s.sdk.Current())
	}
}

// take turns one SDK chunk into at most one llm.Chunk.
func (s *stream) take(ch oai.ChatCompletionChunk) {
	s.got = true
	if ch.JSON.Usage.Valid() {
		s.usage = &llm.Usage{
			PromptTokens:     int(ch.Usage.PromptTokens),
			CompletionTokens: int(ch.Usage.CompletionTokens),
			TotalTokens:      int(ch.Usage.TotalTokens),
		}
		if s.usage.TotalTokens == 0 {
			s.usage.TotalTokens = s.usage.PromptTokens + s.usage.CompletionTokens
		}
	}
	var out llm.Chunk
	for _, choice := range ch.Choices {
		if choice.Index != 0 {
			continue // n is never set; ignore stray choices
		}
		d := choice.Delta
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
