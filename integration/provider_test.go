package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// providerMock is an OpenAI-compatible chat completions server run by the
// test process, which the workers' openai deployments call (base_url). It
// is the randomized schedule's window on the provider side: it records
// every call with the job it serves (the job id is in the prompt, as
// "[job <id>]"), the worker that made it (the X-Worker header, which each
// worker's model file sets from its environment) and when it arrived, so
// that the checker can count a job's calls and see calls made for a job
// that had expired or been cancelled. A fault storm, switched on and off by
// the schedule, makes calls fail as vendors do: 500s, 429s with
// Retry-After, hangs until the client gives up, and streams cut before
// their end.
//
// Answers follow OpenAI's streaming wire format (one "data:
// <chat.completion.chunk>" event per delta, finish_reason, a usage chunk,
// "data: [DONE]"). What is answered depends on the request: tool calls when
// it offers tools, JSON matching chaosSchema when it asks for a JSON
// schema, else "[tokens N]" words (default 8), chunkDelay apart.
type providerMock struct {
	URL        string // base URL as the workers see it, ending in /v1
	chunkDelay time.Duration
	seed       uint64

	srv *http.Server
	ln  net.Listener

	storm atomic.Bool
	n     atomic.Uint64 // calls so far: the fault draw's stream position

	mu    sync.Mutex
	calls []providerCall
}

// providerCall is one chat completion request as the mock saw it.
type providerCall struct {
	Job    string    `json:"job"`
	Worker string    `json:"worker"`
	At     time.Time `json:"at"`
	// Fault is what the mock did wrong ("" for a clean answer):
	// unavailable, rate_limited, hang or cut.
	Fault string `json:"fault,omitempty"`
}

var (
	jobTag    = regexp.MustCompile(`\[job ([A-Za-z0-9_=/-]+)\]`)
	tokensTag = regexp.MustCompile(`\[tokens (\d+)\]`)
)

// startProviderMock listens on addr (host:port; port 0 picks one).
func startProviderMock(addr string, seed uint64, chunkDelay time.Duration) (*providerMock, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &providerMock{URL: "http://" + ln.Addr().String() + "/v1", chunkDelay: chunkDelay, seed: seed, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", p.serve)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on Close
	return p, nil
}

func (p *providerMock) Close() error { return p.srv.Close() }

// Calls returns a copy of the calls so far.
func (p *providerMock) Calls() []providerCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]providerCall(nil), p.calls...)
}

// chatRequest is the part of a chat completion request the mock reads.
type chatRequest struct {
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// chaosSchema is the JSON Schema of the schedule's structured jobs, and
// chaosAnswer a value that satisfies it.
const (
	chaosSchema = `{"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer"}},"required":["city","population"],"additionalProperties":false}`
	chaosAnswer = `{"city":"Lyon","population":513275}`
)

func (p *providerMock) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	call := providerCall{At: at, Worker: r.Header.Get("X-Worker")}
	if m := jobTag.FindSubmatch(body); m != nil {
		call.Job = string(m[1])
	}
	fault := p.draw()
	call.Fault = fault
	p.mu.Lock()
	p.calls = append(p.calls, call)
	p.mu.Unlock()

	switch fault {
	case "unavailable":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"injected server error","type":"server_error"}}`)
		return
	case "rate_limited":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("retry-after-ms", "50")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"message":"injected rate limit","type":"requests","code":"rate_limit_exceeded"}}`)
		return
	case "hang":
		<-r.Context().Done()
		return
	}
	p.stream(w, r, &req, body, fault == "cut")
}

// draw decides the next call's fault: none outside a storm; in one, a
// fixed mix drawn from the seed and the call's position.
func (p *providerMock) draw() string {
	n := p.n.Add(1)
	if !p.storm.Load() {
		return ""
	}
	u := rand.New(rand.NewPCG(p.seed, n)).Float64()
	switch {
	case u < 0.20:
		return "unavailable"
	case u < 0.32:
		return "rate_limited"
	case u < 0.34:
		return "hang"
	case u < 0.42:
		return "cut"
	}
	return ""
}

func (p *providerMock) stream(w http.ResponseWriter, r *http.Request, req *chatRequest, body []byte, cut bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(choices string, usage string) bool {
		var b strings.Builder
		b.WriteString(`data: {"id":"chatcmpl-chaos","object":"chat.completion.chunk","created":1700000000,"model":"chaos-1","choices":[`)
		b.WriteString(choices)
		b.WriteString(`]`)
		if usage != "" {
			b.WriteString(`,"usage":`)
			b.WriteString(usage)
		}
		b.WriteString("}\n\n")
		if _, err := io.WriteString(w, b.String()); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	wait := func() bool {
		if p.chunkDelay <= 0 {
			return r.Context().Err() == nil
		}
		t := time.NewTimer(p.chunkDelay)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	delta := func(d string) string {
		return `{"index":0,"delta":` + d + `,"logprobs":null,"finish_reason":null}`
	}

	var pieces []string // deltas, as JSON objects
	finish := "stop"
	switch {
	case len(req.Tools) > 0 && req.Messages[len(req.Messages)-1].Role == "user":
		name, _ := json.Marshal(req.Tools[0].Function.Name)
		pieces = []string{
			`{"role":"assistant","tool_calls":[{"index":0,"id":"call_chaos","type":"function","function":{"name":` + string(name) + `,"arguments":""}}]}`,
			`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`,
			`{"tool_calls":[{"index":0,"function":{"arguments":"\"Lyon\"}"}}]}`,
		}
		finish = "tool_calls"
	case req.ResponseFormat != nil && req.ResponseFormat.Type != "text":
		for i := 0; i < len(chaosAnswer); i += 8 {
			s, _ := json.Marshal(chaosAnswer[i:min(i+8, len(chaosAnswer))])
			pieces = append(pieces, `{"content":`+string(s)+`}`)
		}
	default:
		n := 8
		if m := tokensTag.FindSubmatch(body); m != nil {
			n, _ = strconv.Atoi(string(m[1]))
		}
		for k := range n {
			pieces = append(pieces, fmt.Sprintf(`{"content":"w%d "}`, k))
		}
	}
	for i, d := range pieces {
		if cut && i == min(3, len(pieces)-1) {
			return // no finish_reason, no [DONE]: the SDK reports a cut stream
		}
		if i > 0 && !wait() {
			return
		}
		if !send(delta(d), "") {
			return
		}
	}
	if !send(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"`+finish+`"}`, "") {
		return
	}
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, len(body)/4, len(pieces), len(body)/4+len(pieces))
	if send("", usage) {
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}
}
