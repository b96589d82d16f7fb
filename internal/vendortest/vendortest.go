// Package vendortest serves local replays of vendors' documented wire
// formats, for tests that run the real SDKs (through Switchyard's providers)
// against them: OpenAI's chat completions (and every OpenAI-compatible
// server: Azure, Ollama, vLLM, Groq, ...) and Anthropic's Messages API,
// streamed as server-sent events, and their error bodies with their status
// codes and headers (retry-after).
//
// A server answers each request with the next scripted Reply, then with its
// default one; it records every request. It listens on 127.0.0.1 only.
package vendortest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Reply is one answer. A zero Status is a streamed success whose text is
// Text (default: "answer from <server name>").
type Reply struct {
	Status int
	Header map[string]string
	Body   string
	Text   string
}

// Call is one request the server received.
type Call struct {
	Path   string
	Model  string
	Auth   string // the key: Authorization's bearer token, api-key (Azure) or x-api-key (Anthropic)
	Prompt string // the last message's text
	Body   map[string]any
}

// Server is a vendor replay.
type Server struct {
	// URL is the base URL to configure: for OpenAI it ends in /v1 (what
	// api_base / base_url take), for Anthropic it is the host.
	URL  string
	name string

	mu      sync.Mutex
	script  []Reply
	deflt   Reply
	byModel map[string]Reply
	calls   []Call
}

// OpenAI starts a replay of OpenAI's chat completions API.
func OpenAI(t testing.TB, name string) *Server {
	s := &Server{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = r.Header.Get("api-key") // Azure OpenAI
		}
		rep := s.record(r, strings.TrimPrefix(auth, "Bearer "))
		if rep.Status != 0 {
			writeError(w, rep)
			return
		}
		s.openAIStream(w, rep)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/v1"
	return s
}

// Anthropic starts a replay of Anthropic's Messages API.
func Anthropic(t testing.TB, name string) *Server {
	s := &Server{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
			http.NotFound(w, r)
			return
		}
		rep := s.record(r, r.Header.Get("x-api-key"))
		if rep.Status != 0 {
			writeError(w, rep)
			return
		}
		s.anthropicStream(w, rep)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Script queues replies for the next requests, in order.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Always sets the reply once the script is spent.
func (s *Server) Always(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deflt = r
}

// ForModel sets the reply to requests for model, ahead of the script: one
// server can stand for a vendor with several models.
func (s *Server) ForModel(model string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byModel == nil {
		s.byModel = map[string]Reply{}
	}
	s.byModel[model] = r
}

// CallsFor returns the number of requests for model.
func (s *Server) CallsFor(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Model == model {
			n++
		}
	}
	return n
}

// Calls returns the number of requests served.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Requests returns the requests served, in order.
func (s *Server) Requests() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func (s *Server) record(r *http.Request, auth string) Reply {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	c := Call{Path: r.URL.Path, Auth: auth, Body: body}
	c.Model, _ = body["model"].(string)
	if msgs, ok := body["messages"].([]any); ok && len(msgs) > 0 {
		if m, ok := msgs[len(msgs)-1].(map[string]any); ok {
			c.Prompt = text(m["content"])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	rep := s.deflt
	if r, ok := s.byModel[c.Model]; ok {
		rep = r
	} else if len(s.script) > 0 {
		rep, s.script = s.script[0], s.script[1:]
	}
	if rep.Status == 0 && rep.Text == "" {
		rep.Text = "answer from " + s.name
	}
	return rep
}

// text is a message content's text: a string, or its text parts.
func text(content any) string {
	switch c := content.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			if m, ok := p.(map[string]any); ok {
				if t, ok := m["text"].(string); ok {
					b.WriteString(t)
				}
			}
		}
		return b.String()
	}
	return ""
}

func writeError(w http.ResponseWriter, rep Reply) {
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}

// words splits text into the chunks a vendor streams.
func words(text string) []string {
	var out []string
	for i, w := range strings.Split(text, " ") {
		if i > 0 {
			w = " " + w
		}
		out = append(out, w)
	}
	return out
}

// openAIStream writes a chat.completion.chunk stream as OpenAI sends it:
// a role delta, content deltas, the finish_reason chunk, a usage chunk
// (stream_options.include_usage) and [DONE].
func (s *Server) openAIStream(w http.ResponseWriter, rep Reply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(choices string) {
		fmt.Fprintf(w, `data: {"id":"chatcmpl-replay","object":"chat.completion.chunk","created":1700000000,"model":"replay","system_fingerprint":"fp_replay","choices":[%s]}`+"\n\n", choices)
		if fl != nil {
			fl.Flush()
		}
	}
	send(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`)
	ws := words(rep.Text)
	for _, word := range ws {
		q, _ := json.Marshal(word)
		send(fmt.Sprintf(`{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}`, q))
	}
	send(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`)
	fmt.Fprintf(w, `data: {"id":"chatcmpl-replay","object":"chat.completion.chunk","created":1700000000,"model":"replay","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n", len(ws), 9+len(ws))
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// anthropicStream writes a Messages stream as Anthropic sends it.
func (s *Server) anthropicStream(w http.ResponseWriter, rep Reply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	event := func(data string) {
		var head struct{ Type string }
		_ = json.Unmarshal([]byte(data), &head)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", head.Type, data)
		if fl != nil {
			fl.Flush()
		}
	}
	event(`{"type":"message_start","message":{"id":"msg_replay","type":"message","role":"assistant","content":[],"model":"replay","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":1}}}`)
	event(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	ws := words(rep.Text)
	for _, word := range ws {
		q, _ := json.Marshal(word)
		event(fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%s}}`, q))
	}
	event(`{"type":"content_block_stop","index":0}`)
	event(fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, len(ws)))
	event(`{"type":"message_stop"}`)
}

// OpenAI's documented error replies (platform.openai.com/docs/guides/error-codes).
var (
	OpenAIRateLimited = func(retryAfter string) Reply {
		r := Reply{Status: 429, Body: `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`}
		if retryAfter != "" {
			r.Header = map[string]string{"retry-after": retryAfter}
		}
		return r
	}
	OpenAIServerError = Reply{Status: 500, Body: `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`}
	OpenAIUnavailable = Reply{Status: 503, Body: `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`}
	OpenAIAuth        = Reply{Status: 401, Body: `{"error":{"message":"Incorrect API key provided: sk-bad. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`}
	OpenAIContext     = Reply{Status: 400, Body: `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`}
	OpenAIContent     = Reply{Status: 400, Body: `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`}
	OpenAIBadRequest  = Reply{Status: 400, Body: `{"error":{"message":"Invalid value for 'temperature'.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`}
)

// Anthropic's documented error replies (docs.anthropic.com/en/api/errors).
var (
	AnthropicOverloaded  = Reply{Status: 529, Body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}
	AnthropicRateLimited = Reply{Status: 429, Header: map[string]string{"retry-after": "1"}, Body: `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`}
	AnthropicAuth        = Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`}
)
