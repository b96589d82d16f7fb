package gemini

import (
	"context"

	"google.golang.org/genai"

	"github.com/switchyard/switchyard/pkg/llm"
)

// stream adapts the SDK's push iterator (turned into a pull iterator with
// iter.Pull2) to llm.Stream.
type stream struct {
	next    func() (*genai.GenerateContentResponse, error, bool)
	stop    func()
	ctx     context.Context
	secrets []string

	llm.Primer // first-chunk buffering; provides Current
	err        error
	done       bool
	closed     bool

	calls  int // function calls seen: the next call's Index
	finish genai.FinishReason
	usage  *llm.Usage
}

// prime reads up to the first chunk so that Stream can return pre-output
// failures as errors. It reports whether a chunk is buffered.
func (s *stream) prime() bool { return s.Prime(s.read) }

// Next implements llm.Stream.
func (s *stream) Next() bool { return s.Primer.Next(s.read) }

// read returns the next chunk with content, or the final chunk once the
// stream ended cleanly after a finishReason; false at the end or on failure.
func (s *stream) read() (llm.Chunk, bool) {
	if s.done || s.err != nil {
		return llm.Chunk{}, false
	}
	midStream := s.Output()
	for {
		resp, err, ok := s.next()
		if !ok {
			break
		}
		if err != nil {
			s.fail(classify(s.ctx, err, midStream, s.secrets))
			return llm.Chunk{}, false
		}
		if resp == nil {
			continue
		}
		if pf := resp.PromptFeedback; pf != nil && pf.BlockReason != "" {
			// The prompt itself was refused: no answer will come.
			msg := pf.BlockReasonMessage
			if msg == "" {
				msg = "prompt blocked: " + string(pf.BlockReason)
			}
			s.fail(&llm.Error{Kind: llm.KindContentPolicy, Provider: ProviderName, Code: string(pf.BlockReason),
				Message: llm.Scrub(msg, s.secrets), MidStream: midStream})
			return llm.Chunk{}, false
		}
		c := s.response(resp)
		if c.Delta != "" || len(c.ToolCalls) > 0 {
			return c, true
		}
	}
	s.done = true
	if s.finish == "" {
		s.err = &llm.Error{Kind: llm.KindUnavailable, Provider: ProviderName,
			Message: "stream ended before a finishReason", MidStream: midStream}
		return llm.Chunk{}, false
	}
	// The last response carries the finish reason and the final usage; one
	// closing chunk reports both.
	c := llm.Chunk{FinishReason: s.finishReason(), Usage: s.usage}
	return c, true
}

func (s *stream) fail(err *llm.Error) {
	s.err = err
	s.done = true
}

// response folds one GenerateContentResponse into a chunk.
func (s *stream) response(resp *genai.GenerateContentResponse) llm.Chunk {
	var c llm.Chunk
	if u := resp.UsageMetadata; u != nil {
		// Usage metadata is cumulative; keep the latest.
		prompt := int(u.PromptTokenCount + u.ToolUsePromptTokenCount)
		completion := int(u.CandidatesTokenCount + u.ThoughtsTokenCount)
		total := int(u.TotalTokenCount)
		if total == 0 {
			total = prompt + completion
		}
		s.usage = &llm.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: total}
	}
	if len(resp.Candidates) == 0 {
		return c
	}
	// One candidate is asked for (candidateCount unset).
	cand := resp.Candidates[0]
	if cand.Content != nil {
		for _, p := range cand.Content.Parts {
			switch {
			case p.Thought:
				// Thought summaries are not part of the answer.
			case p.FunctionCall != nil:
				fc := p.FunctionCall
				id := fc.ID
				if id == "" {
					id = newCallID()
				}
				args := "{}"
				if fc.Args != nil {
					if b, err := marshalArgs(fc.Args); err == nil {
						args = b
					}
				}
				c.ToolCalls = append(c.ToolCalls, llm.ToolCallDelta{
					Index: s.calls, ID: encodeCallID(id, p.ThoughtSignature), Name: fc.Name, Arguments: args,
				})
				s.calls++
			case p.Text != "":
				c.Delta += p.Text
			}
		}
	}
	if cand.FinishReason != "" && cand.FinishReason != genai.FinishReasonUnspecified {
		s.finish = cand.FinishReason
	}
	return c
}

// finishReason maps Gemini's finishReason onto the neutral names. Gemini
// reports STOP after function calls; the neutral name is tool_calls.
func (s *stream) finishReason() llm.FinishReason {
	switch s.finish {
	case genai.FinishReasonMaxTokens:
		return llm.FinishLength
	case genai.FinishReasonSafety, genai.FinishReasonProhibitedContent, genai.FinishReasonBlocklist,
		genai.FinishReasonRecitation, genai.FinishReasonSPII, genai.FinishReasonImageSafety,
		genai.FinishReasonImageProhibitedContent, genai.FinishReasonImageRecitation:
		return llm.FinishContentFilter
	}
	if s.calls > 0 {
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

// Current implements llm.Stream.

// Err implements llm.Stream.
func (s *stream) Err() error { return s.err }

// Close implements llm.Stream; it stops the SDK iterator, which closes the
// response body. It is safe to call more than once.
func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed, s.done = true, true
	s.stop()
	return nil
}
