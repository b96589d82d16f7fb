package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// chatRequest is an OpenAI chat completions request: the job's own fields
// (bus.Request is OpenAI-shaped) plus those the fleet does not honour, kept
// so that a request using them is refused by name rather than answered as
// if they had been applied.
type chatRequest struct {
	bus.Request
	// Stream shadows bus.Request.Stream: over HTTP, as at OpenAI, the
	// default is a whole chat.completion.
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`

	N                 *int            `json:"n"`
	Logprobs          *bool           `json:"logprobs"`
	TopLogprobs       json.RawMessage `json:"top_logprobs"`
	LogitBias         map[string]any  `json:"logit_bias"`
	PresencePenalty   *float64        `json:"presence_penalty"`
	FrequencyPenalty  *float64        `json:"frequency_penalty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Modalities        []string        `json:"modalities"`
	Functions         json.RawMessage `json:"functions"`
	FunctionCall      json.RawMessage `json:"function_call"`
	Audio             json.RawMessage `json:"audio"`
	Prediction        json.RawMessage `json:"prediction"`
	ReasoningEffort   json.RawMessage `json:"reasoning_effort"`
	WebSearchOptions  json.RawMessage `json:"web_search_options"`
}

// check refuses what the fleet cannot honour, naming the field as OpenAI
// does. Fields sent at their default value (n: 1, presence_penalty: 0, ...,
// as many client libraries do) are accepted.
func (c *chatRequest) check() *apiError {
	switch {
	case c.Model == "":
		return invalidParam("model", "", "you must provide a model parameter")
	case len(c.Messages) == 0:
		return invalidParam("messages", "", "[] is too short - 'messages'")
	case c.N != nil && *c.N != 1:
		return unsupportedValue("n", strconv.Itoa(*c.N), "the default (1) value")
	case c.Logprobs != nil && *c.Logprobs:
		return unsupportedParam("logprobs")
	case isSet(c.TopLogprobs):
		return unsupportedParam("top_logprobs")
	case len(c.LogitBias) > 0:
		return unsupportedParam("logit_bias")
	case c.PresencePenalty != nil && *c.PresencePenalty != 0:
		return unsupportedParam("presence_penalty")
	case c.FrequencyPenalty != nil && *c.FrequencyPenalty != 0:
		return unsupportedParam("frequency_penalty")
	case c.ParallelToolCalls != nil && !*c.ParallelToolCalls:
		return unsupportedValue("parallel_tool_calls", "false", "the default (true) value")
	case isSet(c.Functions):
		return invalidParam("functions", "unsupported_parameter", "Unsupported parameter: 'functions' is deprecated and not supported; use 'tools'.")
	case isSet(c.FunctionCall):
		return invalidParam("function_call", "unsupported_parameter", "Unsupported parameter: 'function_call' is deprecated and not supported; use 'tool_choice'.")
	case isSet(c.Audio):
		return unsupportedParam("audio")
	case isSet(c.Prediction):
		return unsupportedParam("prediction")
	case isSet(c.ReasoningEffort):
		return unsupportedParam("reasoning_effort")
	case isSet(c.WebSearchOptions):
		return unsupportedParam("web_search_options")
	}
	for _, m := range c.Modalities {
		if m != "text" {
			return unsupportedValue("modalities", strconv.Quote(m), `["text"]`)
		}
	}
	return nil
}

func isSet(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// job returns the request as a job: the wire fields a caller must not set
// over HTTP (its own reply subject, tenant or id) are cleared.
func (c *chatRequest) job() *bus.Request {
	req := c.Request
	req.ID, req.Reply, req.Tenant = "", "", ""
	stream := c.Stream
	req.Stream = &stream
	return &req
}

// buffered reports whether the answer is structured output: its chunks are
// not streamed, the validated JSON is sent whole at the end (a re-asked
// answer's first, invalid attempt must never reach the client).
func buffered(req *bus.Request) bool {
	rf := req.ResponseFormat
	return rf != nil && (rf.Type == "json_schema" || rf.Type == "json_object")
}

// readChat decodes a body holding a chat completions request (body is it,
// or a struct embedding it), checks the request and resolves its model; a
// failure is answered and reported as false.
func (g *Gateway) readChat(w http.ResponseWriter, r *http.Request, body any, in *chatRequest) (group string, ok bool) {
	if e := g.decodeBody(w, r, body); e != nil {
		writeOpenAIError(w, e)
		return "", false
	}
	if e := in.check(); e != nil {
		writeOpenAIError(w, e)
		return "", false
	}
	if group, ok = g.catalog.Resolve(in.Model); !ok {
		writeOpenAIError(w, unknownModel(in.Model))
	}
	return group, ok
}

func (g *Gateway) chatCompletions(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	var in chatRequest
	group, ok := g.readChat(w, r, &in, &in)
	if !ok {
		return
	}
	req := in.job()
	g.answer(w, r, id, group, req, in.Stream, writeOpenAIError, func(jobID string) renderer {
		return &openAIStream{id: "chatcmpl-" + jobID, model: in.Model, created: g.now().Unix(),
			usage: in.StreamOptions != nil && in.StreamOptions.IncludeUsage, buffer: buffered(req),
			t: newTranscript(), tools: map[int]toolHead{}}
	}, func(res *bus.Result) any {
		return bus.OpenAIChatCompletion(res, in.Model, g.now().Unix())
	})
}

// answer runs a job for a request and answers it, streamed or whole.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, id *identity, group string, req *bus.Request, stream bool,
	werr errorWriter, newRenderer func(jobID string) renderer, whole func(*bus.Result) any) {
	ctx := r.Context()
	honourNoCache(r, req)
	var sw *sseWriter
	if stream {
		var err error
		if sw, err = newSSEWriter(w, r, g.cfg.WriteTimeout); err != nil {
			werr(w, newError(bus.CodeInternal, "streaming is not supported on this connection"))
			return
		}
	}
	if e := withPriority(r, req); e != nil {
		werr(w, e)
		return
	}
	a, e := g.attach(ctx, id.client, group, jobKey(r), req)
	if e != nil {
		werr(w, e)
		return
	}
	defer a.close()
	w.Header().Set("X-Request-Id", a.jobID)
	if !stream {
		res, err := waitResult(ctx, a.src)
		switch {
		case err != nil && ctx.Err() != nil:
			g.cancelAbandoned(id.client, a)
		case err != nil:
			werr(w, busError(err))
		case res.Status != bus.StatusOK:
			werr(w, resultError(res))
		default:
			writeJSON(w, http.StatusOK, whole(res))
		}
		return
	}
	if sw.resuming() && !a.replay {
		e := newError(bus.CodeInvalidRequest, "Last-Event-ID needs the job's events stored (SWITCHYARD_DURABLE_EVENTS on the workers)")
		e.status = http.StatusConflict
		werr(w, e)
		return
	}
	if !g.streamJob(ctx, w, sw, a, newRenderer(a.jobID), werr) && ctx.Err() != nil {
		g.cancelAbandoned(id.client, a)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client is gone
}

// openAIStream renders a job as OpenAI's chat.completion.chunk stream.
type openAIStream struct {
	id, model string
	created   int64
	usage     bool // stream_options.include_usage
	buffer    bool // structured output: the validated JSON comes whole
	began     bool // the role delta went out
	t         transcript
	tools     map[int]toolHead
	head      []byte // the chunks' common beginning, through "choices":[
}

type toolHead struct{ id, name string }

type oaChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint *string         `json:"system_fingerprint"`
	Choices           []oaChoice      `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type oaChoice struct {
	Index        int       `json:"index"`
	Delta        oaDelta   `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type oaDelta struct {
	Role      string        `json:"role,omitempty"`
	Content   *string       `json:"content,omitempty"`
	Refusal   *string       `json:"refusal,omitempty"`
	ToolCalls []oaToolDelta `json:"tool_calls,omitempty"`
}

type oaToolDelta struct {
	Index    int       `json:"index"`
	ID       string    `json:"id,omitempty"`
	Type     string    `json:"type,omitempty"`
	Function oaFnDelta `json:"function"`
}

type oaFnDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

var jsonNullUsage = json.RawMessage("null")

func (s *openAIStream) chunk(choices []oaChoice, usage json.RawMessage) frame {
	c := oaChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model, Choices: choices, Usage: usage}
	if usage == nil && s.usage {
		c.Usage = jsonNullUsage
	}
	b, _ := json.Marshal(c) // plain structs always encode
	return frame{data: b}
}

// contentChunk is a content delta, the stream's most frequent chunk,
// encoded without reflection: it is the same bytes json.Marshal of the
// oaChunk would give (TestContentChunkIsTheMarshalledChunk).
func (s *openAIStream) contentChunk(text string) frame {
	if s.head == nil {
		h := oaChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model}
		b, _ := json.Marshal(h) // plain struct
		// {"id":...,"system_fingerprint":null,"choices":null} -> ...,"choices":[
		s.head = append(bytes.TrimSuffix(b, []byte("null}")), '[')
	}
	q, _ := json.Marshal(text) // a string always encodes
	b := make([]byte, 0, len(s.head)+len(q)+96)
	b = append(b, s.head...)
	b = append(b, `{"index":0,"delta":{"content":`...)
	b = append(b, q...)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	if s.usage {
		b = append(b, `,"usage":null`...)
	}
	return frame{data: append(b, '}')}
}

func (s *openAIStream) delta(d oaDelta, finish *string) frame {
	return s.chunk([]oaChoice{{Delta: d, FinishReason: finish}}, nil)
}

func (s *openAIStream) begin(fs []frame) []frame {
	if s.began {
		return fs
	}
	s.began = true
	empty := ""
	return append(fs, s.delta(oaDelta{Role: "assistant", Content: &empty}, nil))
}

func (s *openAIStream) started() bool { return s.began }

func (s *openAIStream) event(e *bus.Event) ([]frame, *apiError) {
	switch e.Type {
	case bus.EventRestart:
		s.t.restart()
	case bus.EventChunk:
		if s.buffer || e.Delta == "" {
			return nil, nil
		}
		rest, ok := s.t.add("c", e.Delta)
		if !ok {
			return nil, diverged()
		}
		if rest == "" {
			return nil, nil
		}
		return append(s.begin(nil), s.contentChunk(rest)), nil
	case bus.EventToolCall:
		if e.ToolCall == nil {
			return nil, nil
		}
		d, send, e2 := s.toolDelta(e.ToolCall.Index, e.ToolCall.ID, e.ToolCall.Name, e.ToolCall.Arguments, s.t.add)
		if e2 != nil || !send {
			return nil, e2
		}
		return append(s.begin(nil), s.delta(oaDelta{ToolCalls: []oaToolDelta{d}}, nil)), nil
	}
	return nil, nil
}

// toolDelta renders a fragment of tool call i: its id and name the first
// time, then the part of its arguments not yet sent.
func (s *openAIStream) toolDelta(i int, id, name, args string, add func(ch, delta string) (string, bool)) (oaToolDelta, bool, *apiError) {
	d := oaToolDelta{Index: i}
	head, had := s.tools[i]
	if !had {
		s.tools[i] = toolHead{id, name}
		d.ID, d.Type, d.Function.Name = id, "function", name
	} else if id != "" && id != head.id || name != "" && name != head.name {
		return d, false, diverged()
	}
	rest, ok := add("t"+strconv.Itoa(i), args)
	if !ok {
		return d, false, diverged()
	}
	d.Function.Arguments = rest
	return d, !had || rest != "", nil
}

func (s *openAIStream) result(r *bus.Result) ([]frame, *apiError) {
	fs := s.begin(nil)
	text := r.Text
	if s.buffer {
		text = bus.AnswerText(r)
	}
	rest, ok := s.t.finish("c", text)
	if !ok {
		return nil, diverged()
	}
	if rest != "" {
		fs = append(fs, s.delta(oaDelta{Content: &rest}, nil))
	}
	for i, tc := range r.ToolCalls {
		d, send, e := s.toolDelta(i, tc.ID, tc.Function.Name, tc.Function.Arguments, s.t.finish)
		if e != nil {
			return nil, e
		}
		if send {
			fs = append(fs, s.delta(oaDelta{ToolCalls: []oaToolDelta{d}}, nil))
		}
	}
	finish := r.FinishReason
	if finish == "" {
		finish = "stop"
	}
	fs = append(fs, s.delta(oaDelta{}, &finish))
	if s.usage {
		u := r.Usage
		if u == nil {
			u = &bus.Usage{}
		}
		b, _ := json.Marshal(u) // plain struct
		fs = append(fs, s.chunk([]oaChoice{}, b))
	}
	return append(fs, frame{data: []byte("[DONE]")}), nil
}

func (s *openAIStream) failure(e *apiError) []frame {
	_, body := openAIBody(e)
	b, _ := json.Marshal(body) // plain struct
	return []frame{{data: b}}
}

// now is the gateway's clock.
func (g *Gateway) now() time.Time { return g.cfg.Now() }
