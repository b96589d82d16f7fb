package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// SSEServer is a local OpenAI-compatible chat completions server that
// streams a fixed number of chunks with no delay, in OpenAI's wire format
// (text/event-stream, one "data: <chat.completion.chunk>" per event, a final
// chunk with finish_reason, a usage chunk, then "data: [DONE]").
type SSEServer struct {
	// URL is the base URL to give an SDK, ending in /v1.
	URL string
	// Requests counts chat completion requests served.
	Requests atomic.Int64

	srv *http.Server
	ln  net.Listener
}

// StartSSEServer starts a server on 127.0.0.1 that answers every chat
// completion with chunks content chunks.
func StartSSEServer(chunks int) (*SSEServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SSEServer{URL: "http://" + ln.Addr().String() + "/v1", ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		s.stream(w, r, chunks)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on Close
	return s, nil
}

// Close stops the server.
func (s *SSEServer) Close() error { return s.srv.Close() }

func (s *SSEServer) stream(w http.ResponseWriter, r *http.Request, chunks int) {
	// The body is read (a real server parses it) but its content does not
	// change the answer.
	var sink [4096]byte
	for {
		if _, err := r.Body.Read(sink[:]); err != nil {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Request-Id", "req_bench")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	const head = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[`
	buf := make([]byte, 0, 512)
	write := func(choices string) bool {
		buf = append(buf[:0], head...)
		buf = append(buf, choices...)
		buf = append(buf, "]}\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	if !write(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`) {
		return
	}
	for k := range chunks {
		word := chunkWords[k%len(chunkWords)]
		if !write(`{"index":0,"delta":{"content":"` + word + ` "},"logprobs":null,"finish_reason":null}`) {
			return
		}
	}
	if !write(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`) {
		return
	}
	buf = append(buf[:0], head...)
	buf = append(buf, `],"usage":{"prompt_tokens":128,"completion_tokens":`...)
	buf = strconv.AppendInt(buf, int64(chunks), 10)
	buf = append(buf, `,"total_tokens":`...)
	buf = strconv.AppendInt(buf, int64(128+chunks), 10)
	buf = append(buf, "}}\n\ndata: [DONE]\n\n"...)
	_, _ = w.Write(buf)
}

// DirectJob returns a JobFunc that calls the chat completions API at baseURL
// directly with the openai-go SDK (retries off, streaming), timing the first
// content token from the start of the call.
func DirectJob(baseURL, model, prompt string) JobFunc {
	client := oai.NewClient(option.WithBaseURL(baseURL), option.WithAPIKey("sk-bench"), option.WithMaxRetries(0))
	return func(ctx context.Context, _ int) Outcome {
		params := oai.ChatCompletionNewParams{
			Model:         model,
			Messages:      []oai.ChatCompletionMessageParamUnion{oai.UserMessage(prompt)},
			StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
		}
		t0 := time.Now()
		s := client.Chat.Completions.NewStreaming(ctx, params)
		defer s.Close() //nolint:errcheck // the stream's error is read from s.Err
		var o Outcome
		for s.Next() {
			c := s.Current()
			if o.FirstChunk == 0 && len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
				o.FirstChunk = time.Since(t0)
			}
		}
		if err := s.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return Outcome{Code: CodeNoResult}
			}
			return Outcome{Code: CodeTransport}
		}
		return o
	}
}
