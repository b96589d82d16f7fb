package anthropic

import (
	"context"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/packages/ssestream"

	"github.com/switchyard/switchyard/pkg/llm"
)

// stream adapts the SDK's SSE event stream to llm.Stream.
type stream struct {
	raw     *ssestream.Stream[sdk.MessageStreamEventUnion]
	ctx     context.Context
	secrets []string
	now     func() time.Time // for Retry-After dates

	llm.Primer // first-chunk buffering; provides Current
	err        error
	done       bool // message_stop seen or failed
	closed     bool

	// tools maps a content block index to the tool call's ordinal among the
	// answer's tool calls (llm.ToolCallDelta.Index).
	tools  map[int64]int
	finish llm.FinishReason
	usage  llm.Usage
}

// prime reads up to the first chunk so that Stream can return pre-output
// failures as errors. It reports whether a chunk is buffered.
func (s *stream) prime() bool { return s.Prime(s.read) }

// Next implements llm.Stream.
func (s *stream) Next() bool { return s.Primer.Next(s.read) }

// read returns the next non-empty chunk, or false at the end or on failure
// (then s.err says which).
func (s *stream) read() (llm.Chunk, bool) {
	if s.done || s.err != nil {
		return llm.Chunk{}, false
	}
	for s.raw.Next() {
		c, stop := s.event(s.raw.Current())
		if stop {
			s.done = true
			return c, true
		}
		if len(c.Delta) > 0 || len(c.ToolCalls) > 0 {
			return c, true
		}
	}
	if err := s.raw.Err(); err != nil {
		s.err = classify(s.ctx, err, s.Output(), s.secrets, s.now())
	} else {
		s.err = &llm.Error{
			Kind:      llm.KindUnavailable,
			Provider:  ProviderName,
			Message:   "stream ended without message_stop",
			MidStream: true,
		}
	}
	s.done = true
	return llm.Chunk{}, false
}

// event folds one SSE event into a chunk; stop is set at message_stop, whose
// chunk carries the finish reason and usage.
func (s *stream) event(ev sdk.MessageStreamEventUnion) (c llm.Chunk, stop bool) {
	switch ev.Type {
	case "message_start":
		u := ev.Message.Usage
		s.usage.PromptTokens = int(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens)
		s.usage.CompletionTokens = int(u.OutputTokens)
	case "content_block_start":
		b := ev.ContentBlock
		switch b.Type {
		case "text":
			c.Delta = b.Text
		case "tool_use":
			n := len(s.tools)
			s.tools[ev.Index] = n
			c.ToolCalls = []llm.ToolCallDelta{{Index: n, ID: b.ID, Name: b.Name}}
		}
	case "content_block_delta":
		switch ev.Delta.Type {
		case "text_delta":
			c.Delta = ev.Delta.Text
		case "input_json_delta":
			if n, ok := s.tools[ev.Index]; ok && ev.Delta.PartialJSON != "" {
				c.ToolCalls = []llm.ToolCallDelta{{Index: n, Arguments: ev.Delta.PartialJSON}}
			}
		}
	case "message_delta":
		if r := ev.Delta.StopReason; r != "" {
			s.finish = finishReason(r)
		}
		// message_delta usage is cumulative.
		if ev.Usage.OutputTokens > 0 {
			s.usage.CompletionTokens = int(ev.Usage.OutputTokens)
		}
		if in := ev.Usage.InputTokens + ev.Usage.CacheCreationInputTokens + ev.Usage.CacheReadInputTokens; in > 0 {
			s.usage.PromptTokens = int(in)
		}
	case "message_stop":
		u := s.usage
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
		c.FinishReason = s.finish
		if c.FinishReason == "" {
			c.FinishReason = llm.FinishStop
		}
		c.Usage = &u
		return c, true
	}
	return c, false
}

// finishReason maps Anthropic's stop_reason onto the neutral names.
func finishReason(r sdk.StopReason) llm.FinishReason {
	switch r {
	case sdk.StopReasonMaxTokens, sdk.StopReasonModelContextWindowExceeded:
		return llm.FinishLength
	case sdk.StopReasonToolUse:
		return llm.FinishToolCalls
	case sdk.StopReasonRefusal:
		return llm.FinishContentFilter
	default: // end_turn, stop_sequence, pause_turn
		return llm.FinishStop
	}
}

// Current implements llm.Stream.

// Err implements llm.Stream.
func (s *stream) Err() error { return s.err }

// Close implements llm.Stream; it is safe to call more than once.
func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.done = true
	return s.raw.Close()
}
