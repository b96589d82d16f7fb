package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/switchyard/switchyard/pkg/bus"
)

func (g *Gateway) messages(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	var in bus.AnthropicRequest
	if e := g.decodeBody(w, r, &in); e != nil {
		writeAnthropicError(w, e)
		return
	}
	switch {
	case in.Model == "":
		writeAnthropicError(w, newError(bus.CodeInvalidRequest, "model: Field required"))
		return
	case in.MaxTokens == nil:
		writeAnthropicError(w, newError(bus.CodeInvalidRequest, "max_tokens: Field required"))
		return
	}
	if f := in.Unsupported(); f != "" {
		writeAnthropicError(w, newError(bus.CodeInvalidRequest, "%s: not supported by Switchyard", f))
		return
	}
	req, err := in.Job()
	if err != nil {
		writeAnthropicError(w, newError(bus.CodeInvalidRequest, "%v", err))
		return
	}
	group, ok := g.catalog.Resolve(in.Model)
	if !ok {
		writeAnthropicError(w, newError(bus.CodeUnknownGroup, "model: %s", in.Model))
		return
	}
	stream := in.Stream
	req.Stream = &stream
	g.answer(w, r, id, group, req, stream, writeAnthropicError, func(jobID string) renderer {
		return &anthropicStream{id: "msg_" + jobID, model: in.Model, t: newTranscript(), tools: map[int]int{}, open: -1}
	}, func(res *bus.Result) any {
		return bus.AnthropicMessageOf(res, in.Model)
	})
}

// anthropicStream renders a job as Anthropic's Messages event stream:
// message_start, one content block per text run or tool call
// (content_block_start, deltas, content_block_stop), message_delta with the
// stop reason and usage, message_stop.
type anthropicStream struct {
	id, model string
	began     bool
	t         transcript
	blocks    int         // content blocks started
	open      int         // index of the open block, -1 when none
	text      int         // index of the current text block, when open is one
	tools     map[int]int // tool call index -> block index
	heads     map[int]toolHead
}

func aframe(event string, v any) frame {
	b, _ := json.Marshal(v) // plain values
	return frame{event: event, data: b}
}

func (s *anthropicStream) started() bool { return s.began }

func (s *anthropicStream) begin(fs []frame) []frame {
	if s.began {
		return fs
	}
	s.began = true
	return append(fs, aframe("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": s.id, "type": "message", "role": "assistant", "model": s.model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": bus.AnthropicUsage{},
	}}))
}

func (s *anthropicStream) closeBlock(fs []frame) []frame {
	if s.open < 0 {
		return fs
	}
	fs = append(fs, aframe("content_block_stop", map[string]any{"type": "content_block_stop", "index": s.open}))
	s.open = -1
	return fs
}

func (s *anthropicStream) textDelta(fs []frame, text string) []frame {
	fs = s.begin(fs)
	if s.open < 0 || s.open != s.text {
		fs = s.closeBlock(fs)
		s.open, s.text = s.blocks, s.blocks
		s.blocks++
		fs = append(fs, aframe("content_block_start", map[string]any{"type": "content_block_start", "index": s.open,
			"content_block": map[string]any{"type": "text", "text": ""}}))
	}
	return append(fs, aframe("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.open,
		"delta": map[string]any{"type": "text_delta", "text": text}}))
}

func (s *anthropicStream) toolDelta(fs []frame, i int, id, name, args string, add func(ch, delta string) (string, bool)) ([]frame, *apiError) {
	if s.heads == nil {
		s.heads = map[int]toolHead{}
	}
	head, had := s.heads[i]
	if had && (id != "" && id != head.id || name != "" && name != head.name) {
		return nil, diverged()
	}
	rest, ok := add("t"+strconv.Itoa(i), args)
	if !ok {
		return nil, diverged()
	}
	fs = s.begin(fs)
	if !had {
		s.heads[i] = toolHead{id, name}
		fs = s.closeBlock(fs)
		s.tools[i], s.open = s.blocks, s.blocks
		s.blocks++
		fs = append(fs, aframe("content_block_start", map[string]any{"type": "content_block_start", "index": s.open,
			"content_block": map[string]any{"type": "tool_use", "id": id, "name": name, "input": map[string]any{}}}))
	}
	if rest != "" {
		fs = append(fs, aframe("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.tools[i],
			"delta": map[string]any{"type": "input_json_delta", "partial_json": rest}}))
	}
	return fs, nil
}

func (s *anthropicStream) event(e *bus.Event) ([]frame, *apiError) {
	switch e.Type {
	case bus.EventRestart:
		s.t.restart()
	case bus.EventChunk:
		if e.Delta == "" {
			return nil, nil
		}
		rest, ok := s.t.add("c", e.Delta)
		if !ok {
			return nil, diverged()
		}
		if rest == "" {
			return nil, nil
		}
		return s.textDelta(nil, rest), nil
	case bus.EventToolCall:
		if tc := e.ToolCall; tc != nil {
			return s.toolDelta(nil, tc.Index, tc.ID, tc.Name, tc.Arguments, s.t.add)
		}
	}
	return nil, nil
}

func (s *anthropicStream) result(r *bus.Result) ([]frame, *apiError) {
	fs := s.begin(nil)
	rest, ok := s.t.finish("c", r.Text)
	if !ok {
		return nil, diverged()
	}
	if rest != "" {
		fs = s.textDelta(fs, rest)
	}
	for i, tc := range r.ToolCalls {
		var e *apiError
		if fs, e = s.toolDelta(fs, i, tc.ID, tc.Function.Name, tc.Function.Arguments, s.t.finish); e != nil {
			return nil, e
		}
	}
	fs = s.closeBlock(fs)
	var u bus.AnthropicUsage
	if r.Usage != nil {
		u = bus.AnthropicUsage{InputTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens}
	}
	fs = append(fs, aframe("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": bus.AnthropicStopReason(r.FinishReason), "stop_sequence": nil},
		"usage": u}))
	return append(fs, aframe("message_stop", map[string]any{"type": "message_stop"})), nil
}

func (s *anthropicStream) failure(e *apiError) []frame {
	_, body := bus.AnthropicErrorOf(e.Error)
	return []frame{aframe("error", body)}
}
