package openai_test

// The fixtures below replay OpenAI's documented wire formats:
//
//   - Streaming: POST /v1/chat/completions with "stream": true answers
//     text/event-stream; each event is "data: <chat.completion.chunk JSON>"
//     followed by a blank line; with stream_options.include_usage the last
//     chunk has "choices": [] and a "usage" object; the stream ends with
//     "data: [DONE]" (API reference, "The chat completion chunk object", and
//     the streaming guide).
//   - Tool calls: the first delta of each call carries index, id, type and
//     function.name with empty arguments; later deltas with the same index
//     carry argument fragments; finish_reason "tool_calls" (function calling
//     guide, "Streaming").
//   - Errors: a non-2xx status with {"error":{"message","type","param","code"}}
//     (error codes guide); rate limits add retry-after / retry-after-ms
//     headers (rate limits guide; the SDK reads the same headers).
//   - Azure OpenAI: POST {endpoint}/openai/deployments/{deployment}/chat/completions
//     ?api-version=... with the key in the "api-key" header (Azure OpenAI REST
//     reference).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/openai"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "sk-test-SECRET-0123456789abcdef"

// recorder keeps what the fake server received.
type recorder struct {
	mu     sync.Mutex
	path   string
	query  string
	header http.Header
	body   map[string]any
}

func (r *recorder) record(req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.path, r.query, r.header, r.body = req.URL.Path, req.URL.RawQuery, req.Header.Clone(), body
}

func (r *recorder) Body(t *testing.T) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotNil(t, r.body, "server received no JSON body")
	return r.body
}

// setup starts a fake server running h and a Client pointed at it.
func setup(t *testing.T, opts openai.Options, h http.HandlerFunc) (*openai.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		h(w, r)
	}))
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	opts.HTTPClient = &http.Client{Transport: tr}
	if opts.BaseURL == "" && opts.AzureEndpoint == "" {
		opts.BaseURL = srv.URL + "/v1"
	}
	if opts.AzureEndpoint == "azure" {
		opts.AzureEndpoint = srv.URL
	}
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	c, err := openai.New(opts)
	require.NoError(t, err)
	return c, rec
}

// sse writes a text/event-stream answer: each event as "data: <e>\n\n".
func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, e := range events {
		_, _ = fmt.Fprintf(w, "data: %s\n\n", e)
		w.(http.Flusher).Flush()
	}
}

func chunk(delta string, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + fr + `}],"usage":null}`
}

const usageChunk = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`

func textStream(w http.ResponseWriter) {
	sse(w,
		chunk(`{"role":"assistant","content":"","refusal":null}`, ""),
		chunk(`{"content":"Hello"}`, ""),
		chunk(`{"content":" world"}`, ""),
		chunk(`{}`, "stop"),
		usageChunk,
		"[DONE]",
	)
}

func errorBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func userReq(text string) *llm.Request {
	return &llm.Request{Model: "gpt-4o-mini", Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

// drain reads a stream to its end.
func drain(t *testing.T, s llm.Stream) ([]llm.Chunk, error) {
	t.Helper()
	var out []llm.Chunk
	for s.Next() {
		out = append(out, s.Current())
	}
	err := s.Err()
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close must be safe twice")
	return out, err
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStreamText(t *testing.T) {
	t.Parallel()
	c, rec := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) { textStream(w) })

	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	chunks, err := drain(t, s)
	require.NoError(t, err)

	var text strings.Builder
	for _, ch := range chunks[:len(chunks)-1] {
		require.Empty(t, ch.FinishReason, "only the last chunk finishes")
		text.WriteString(ch.Delta)
	}
	require.Equal(t, "Hello world", text.String())
	last := chunks[len(chunks)-1]
	require.Equal(t, llm.FinishStop, last.FinishReason)
	require.Equal(t, &llm.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15}, last.Usage)

	require.Equal(t, "/v1/chat/completions", rec.path)
	require.Equal(t, "Bearer "+testKey, rec.header.Get("Authorization"))
	body := rec.Body(t)
	require.Equal(t, true, body["stream"])
	require.Equal(t, map[string]any{"include_usage": true}, body["stream_options"])
	require.Equal(t, "gpt-4o-mini", body["model"])
}

func TestStreamWithoutUsage(t *testing.T) {
	t.Parallel()
	c, rec := setup(t, openai.Options{NoStreamUsage: true}, func(w http.ResponseWriter, r *http.Request) {
		sse(w, chunk(`{"content":"ok"}`, ""), chunk(`{}`, "length"), "[DONE]")
	})
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	chunks, err := drain(t, s)
	require.NoError(t, err)
	require.Len(t, chunks, 2)
	require.Equal(t, llm.Chunk{FinishReason: llm.FinishLength}, chunks[1])
	require.NotContains(t, rec.Body(t), "stream_options")
}

func TestRequestMapping(t *testing.T) {
	t.Parallel()
	c, rec := setup(t, openai.Options{Organization: "org-1", Project: "proj-1", Headers: map[string]string{"X-Title": "switchyard"}},
		func(w http.ResponseWriter, r *http.Request) { textStream(w) })
	temp, topP, seed := 0.2, 0.9, int64(42)
	req := &llm.Request{
		Model: "gpt-4.1",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "be brief"},
			{Role: llm.RoleUser, Content: "weather?", Name: "alice"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
			{Role: llm.RoleTool, ToolCallID: "call_1", Content: `{"temp":21}`},
		},
		Temperature: &temp,
		TopP:        &topP,
		MaxTokens:   256,
		Stop:        []string{"END"},
		Seed:        &seed,
		Tools: []llm.Tool{{
			Name:        "get_weather",
			Description: "Weather of a city",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
			Strict:      true,
		}},
		ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceFunction, Name: "get_weather"},
	}
	s, err := c.Stream(ctx(t), req)
	require.NoError(t, err)
	_, err = drain(t, s)
	require.NoError(t, err)

	require.Equal(t, "org-1", rec.header.Get("OpenAI-Organization"))
	require.Equal(t, "proj-1", rec.header.Get("OpenAI-Project"))
	require.Equal(t, "switchyard", rec.header.Get("X-Title"))

	got, err := json.Marshal(rec.Body(t))
	require.NoError(t, err)
	require.JSONEq(t, `{
		"model": "gpt-4.1",
		"stream": true,
		"stream_options": {"include_usage": true},
		"messages": [
			{"role": "system", "content": "be brief"},
			{"role": "user", "content": "weather?", "name": "alice"},
			{"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
			{"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"}
		],
		"temperature": 0.2,
		"top_p": 0.9,
		"max_completion_tokens": 256,
		"stop": ["END"],
		"seed": 42,
		"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "strict": true,
			"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
		"tool_choice": {"type": "function", "function": {"name": "get_weather"}}
	}`, string(got))
}

func TestToolChoiceModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []llm.ToolChoiceMode{llm.ToolChoiceAuto, llm.ToolChoiceNone, llm.ToolChoiceRequired} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			c, rec := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) { textStream(w) })
			req := userReq("x")
			req.Tools = []llm.Tool{{Name: "f"}}
			req.ToolChoice = &llm.ToolChoice{Mode: mode}
			s, err := c.Stream(ctx(t), req)
			require.NoError(t, err)
			_, err = drain(t, s)
			require.NoError(t, err)
			require.Equal(t, string(mode), rec.Body(t)["tool_choice"])
		})
	}
}

func TestImagePart(t *testing.T) {
	t.Parallel()
	c, rec := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) { textStream(w) })
	req := &llm.Request{Model: "gpt-4o", Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{
		{Type: llm.PartText, Text: "What is in this image?"},
		{Type: llm.PartImage, ImageURL: "https://example.com/cat.png", Detail: "high"},
		{Type: llm.PartImage, ImageURL: "data:image/png;base64,iVBORw0KGgo="},
	}}}}
	s, err := c.Stream(ctx(t), req)
	require.NoError(t, err)
	_, err = drain(t, s)
	require.NoError(t, err)

	got, err := json.Marshal(rec.Body(t)["messages"])
	require.NoError(t, err)
	require.JSONEq(t, `[{"role":"user","content":[
		{"type":"text","text":"What is in this image?"},
		{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}},
		{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}
	]}]`, string(got))
}

func TestResponseFormat(t *testing.T) {
	t.Parallel()
	schema := `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}`
	tests := []struct {
		name string
		rf   llm.ResponseFormat
		want string
	}{
		{"json_schema", llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "person", Schema: json.RawMessage(schema), Strict: true},
			`{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":` + schema + `}}`},
		{"json_object", llm.ResponseFormat{Type: llm.FormatJSONObject}, `{"type":"json_object"}`},
		{"text", llm.ResponseFormat{Type: llm.FormatText}, `{"type":"text"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) { textStream(w) })
			req := userReq("who?")
			req.ResponseFormat = &tt.rf
			s, err := c.Stream(ctx(t), req)
			require.NoError(t, err)
			_, err = drain(t, s)
			require.NoError(t, err)
			got, err := json.Marshal(rec.Body(t)["response_format"])
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestBadRequestsFailBeforeSending(t *testing.T) {
	t.Parallel()
	calls := 0
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) { calls++; textStream(w) })
	tests := map[string]*llm.Request{
		"no messages":     {Model: "m"},
		"unknown role":    {Model: "m", Messages: []llm.Message{{Role: "robot", Content: "x"}}},
		"tool without id": {Model: "m", Messages: []llm.Message{{Role: llm.RoleTool, Content: "x"}}},
		"bad schema":      {Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}, ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: json.RawMessage(`{`)}},
		"bad tool params": {Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}, Tools: []llm.Tool{{Name: "f", Parameters: json.RawMessage(`[1]`)}}},
		"named no name":   {Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}, ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceFunction}},
	}
	for name, req := range tests {
		_, err := c.Stream(ctx(t), req)
		require.ErrorIs(t, err, llm.ErrBadRequest, name)
	}
	require.Zero(t, calls)
}

func TestStreamHTTPErrors(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       llm.Kind
		code       string
		retryAfter time.Duration
		msg        string
	}{
		{
			name: "429 retry-after seconds", status: 429, header: map[string]string{"retry-after": "7"},
			body: `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			kind: llm.KindRateLimited, code: "rate_limit_exceeded", retryAfter: 7 * time.Second, msg: "Rate limit reached",
		},
		{
			name: "429 retry-after-ms wins", status: 429, header: map[string]string{"retry-after-ms": "1500", "retry-after": "2"},
			body: `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			kind: llm.KindRateLimited, retryAfter: 1500 * time.Millisecond,
		},
		{
			name: "429 retry-after HTTP date", status: 429, header: map[string]string{"retry-after": now.Add(30 * time.Second).Format(http.TimeFormat)},
			body: `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`,
			kind: llm.KindRateLimited, retryAfter: 30 * time.Second,
		},
		{
			name: "429 retry in body", status: 429,
			body: `{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 1.898s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			kind: llm.KindRateLimited, retryAfter: 1898 * time.Millisecond,
		},
		{
			name: "429 insufficient quota", status: 429,
			body: `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			kind: llm.KindAuth, code: "insufficient_quota",
		},
		{
			name: "500", status: 500,
			body: `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`,
			kind: llm.KindUnavailable, code: "server_error", msg: "The server had an error",
		},
		{
			name: "503 with retry-after", status: 503, header: map[string]string{"retry-after": "3"},
			body: `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`,
			kind: llm.KindUnavailable, retryAfter: 3 * time.Second,
		},
		{
			name: "context window", status: 400,
			body: `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130532 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			kind: llm.KindContextWindow, code: "context_length_exceeded", msg: "maximum context length is 128000",
		},
		{
			name: "context window without code (compatible server)", status: 400,
			body: `{"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.","type":"BadRequestError","param":null,"code":400}`,
			kind: llm.KindContextWindow,
		},
		{
			name: "content policy", status: 400,
			body: `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`,
			kind: llm.KindContentPolicy, code: "content_policy_violation",
		},
		{
			name: "azure content filter", status: 400,
			body: `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}`,
			kind: llm.KindContentPolicy, code: "content_filter",
		},
		{
			name: "401", status: 401,
			body: `{"error":{"message":"Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			kind: llm.KindAuth, code: "invalid_api_key",
		},
		{
			name: "403", status: 403,
			body: `{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","param":null,"code":"unsupported_country_region_territory"}}`,
			kind: llm.KindAuth,
		},
		{
			name: "404 model", status: 404,
			body: `{"error":{"message":"The model 'gpt-9' does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			kind: llm.KindBadRequest, code: "model_not_found",
		},
		{
			name: "422 plain detail (vLLM style)", status: 422, body: `{"detail":"field required"}`,
			kind: llm.KindBadRequest, msg: "field required",
		},
		{
			name: "502 not JSON", status: 502, body: `<html>Bad Gateway</html>`,
			kind: llm.KindUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				errorBody(w, tt.status, tt.body)
			})
			openai.SetClock(c, func() time.Time { return now })
			s, err := c.Stream(ctx(t), userReq("hi"))
			require.Nil(t, s, "an HTTP error must come from Stream, not from the first Next")
			require.Error(t, err)
			e, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tt.kind, e.Kind, e.Error())
			require.Equal(t, tt.status, e.Status)
			require.Equal(t, "openai", e.Provider)
			require.False(t, e.MidStream)
			require.Equal(t, tt.retryAfter, e.RetryAfter)
			require.Equal(t, tt.retryAfter, llm.RetryAfterOf(err))
			if tt.code != "" {
				require.Equal(t, tt.code, e.Code)
			}
			if tt.msg != "" {
				require.Contains(t, e.Message, tt.msg)
			}
			require.NotEmpty(t, e.Message)
		})
	}
}

// hijackStream writes a raw HTTP/1.1 answer and closes the connection after
// the given SSE events, without [DONE]: a connection cut mid-stream. With
// chunked set the body uses chunked transfer encoding and is cut inside a
// chunk, so the client sees an unexpected EOF rather than a clean one.
func hijackStream(chunked bool, events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		if chunked {
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			for _, e := range events {
				data := "data: " + e + "\n\n"
				_, _ = fmt.Fprintf(buf, "%x\r\n%s\r\n", len(data), data)
			}
			_, _ = buf.WriteString("40\r\ndata: {\"id\":") // a chunk that never completes
		} else {
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
			for _, e := range events {
				_, _ = buf.WriteString("data: " + e + "\n\n")
			}
		}
		_ = buf.Flush()
	}
}

func TestStreamCutMidStream(t *testing.T) {
	t.Parallel()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, openai.Options{}, hijackStream(chunked,
				chunk(`{"role":"assistant","content":"Hel"}`, ""),
				chunk(`{"content":"lo"}`, ""),
			))
			s, err := c.Stream(ctx(t), userReq("hi"))
			require.NoError(t, err, "the first chunk arrived: Stream succeeds")
			chunks, err := drain(t, s)
			require.Len(t, chunks, 2)
			for _, ch := range chunks {
				require.Empty(t, ch.FinishReason)
			}
			require.ErrorIs(t, err, llm.ErrUnavailable)
			require.True(t, llm.IsMidStream(err))
		})
	}
}

func TestStreamCutBeforeFirstChunk(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, openai.Options{}, hijackStream(false))
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.Nil(t, s)
	require.ErrorIs(t, err, llm.ErrUnavailable)
	require.False(t, llm.IsMidStream(err), "nothing was streamed")
}

func TestStreamErrorEvent(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		sse(w,
			chunk(`{"content":"partial"}`, ""),
			`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`,
		)
	})
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	chunks, err := drain(t, s)
	require.Len(t, chunks, 1)
	require.ErrorIs(t, err, llm.ErrUnavailable)
	require.True(t, llm.IsMidStream(err))
	require.Contains(t, err.Error(), "The server had an error")
}

func TestStreamToolCalls(t *testing.T) {
	t.Parallel()
	tc := func(s string) string { return `{"role":"assistant","content":null,"tool_calls":[` + s + `]}` }
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		sse(w,
			chunk(tc(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}`), ""),
			chunk(tc(`{"index":0,"function":{"arguments":"{\"ci"}}`), ""),
			chunk(tc(`{"index":0,"function":{"arguments":"ty\": \"Paris\"}"}}`), ""),
			chunk(tc(`{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}`), ""),
			chunk(tc(`{"index":1,"function":{"arguments":"{\"tz\":"}}`), ""),
			chunk(tc(`{"index":1,"function":{"arguments":"\"CET\"}"}}`), ""),
			chunk(`{}`, "tool_calls"),
			usageChunk,
			"[DONE]",
		)
	})
	req := userReq("weather and time in Paris")
	req.Tools = []llm.Tool{{Name: "get_weather"}, {Name: "get_time"}}
	s, err := c.Stream(ctx(t), req)
	require.NoError(t, err)
	chunks, err := drain(t, s)
	require.NoError(t, err)

	// Reassemble as a consumer would.
	calls := map[int]*llm.ToolCall{}
	for _, ch := range chunks {
		require.Empty(t, ch.Delta)
		for _, d := range ch.ToolCalls {
			if calls[d.Index] == nil {
				calls[d.Index] = &llm.ToolCall{}
			}
			call := calls[d.Index]
			if d.ID != "" {
				call.ID = d.ID
			}
			if d.Name != "" {
				call.Name = d.Name
			}
			call.Arguments += d.Arguments
		}
	}
	require.Equal(t, map[int]*llm.ToolCall{
		0: {ID: "call_a", Name: "get_weather", Arguments: `{"city": "Paris"}`},
		1: {ID: "call_b", Name: "get_time", Arguments: `{"tz":"CET"}`},
	}, calls)
	last := chunks[len(chunks)-1]
	require.Equal(t, llm.FinishToolCalls, last.FinishReason)
	require.NotNil(t, last.Usage)
}

func TestRefusalIsContentPolicy(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		sse(w,
			chunk(`{"role":"assistant","content":null,"refusal":""}`, ""),
			chunk(`{"refusal":"I'm sorry, "}`, ""),
			chunk(`{"refusal":"I can't help with that."}`, ""),
			chunk(`{}`, "stop"),
			usageChunk,
			"[DONE]",
		)
	})
	s, err := c.Stream(ctx(t), userReq("something bad"))
	require.Nil(t, s)
	require.ErrorIs(t, err, llm.ErrContentPolicy)
	require.False(t, llm.IsMidStream(err))
	require.Contains(t, err.Error(), "I'm sorry, I can't help with that.")
}

func TestContentFilterFinish(t *testing.T) {
	t.Parallel()
	t.Run("before output", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
			sse(w, chunk(`{"role":"assistant","content":""}`, ""), chunk(`{}`, "content_filter"), "[DONE]")
		})
		_, err := c.Stream(ctx(t), userReq("x"))
		require.ErrorIs(t, err, llm.ErrContentPolicy)
	})
	t.Run("after output", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
			sse(w, chunk(`{"content":"Once upon"}`, ""), chunk(`{}`, "content_filter"), "[DONE]")
		})
		s, err := c.Stream(ctx(t), userReq("x"))
		require.NoError(t, err)
		chunks, err := drain(t, s)
		require.NoError(t, err)
		require.Equal(t, llm.FinishContentFilter, chunks[len(chunks)-1].FinishReason)
	})
}

func TestCancelMidStream(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		sse(w, chunk(`{"content":"first"}`, ""))
		<-r.Context().Done() // hang until the client goes away
	})
	cctx, cancel := context.WithCancel(ctx(t))
	s, err := c.Stream(cctx, userReq("hi"))
	require.NoError(t, err)
	require.True(t, s.Next())
	require.Equal(t, "first", s.Current().Delta)
	cancel()
	require.False(t, s.Next())
	require.ErrorIs(t, s.Err(), llm.ErrCancelled)
	require.True(t, llm.IsMidStream(s.Err()))
	require.NoError(t, s.Close())
}

func TestDeadlineBeforeFirstChunk(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	dctx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
	defer cancel()
	_, err := c.Stream(dctx, userReq("hi"))
	require.ErrorIs(t, err, llm.ErrTimeout)
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := openai.New(openai.Options{BaseURL: url + "/v1", APIKey: testKey, HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	_, err = c.Stream(ctx(t), userReq("hi"))
	require.ErrorIs(t, err, llm.ErrConnection)
	require.NotContains(t, err.Error(), testKey)
}

func TestAzure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		deployment string
		model      string
		version    string
		wantPath   string
		wantQuery  string
	}{
		{"fixed deployment", "gpt4o-prod", "gpt-4o", "", "/openai/deployments/gpt4o-prod/chat/completions", "api-version=" + openai.DefaultAzureAPIVersion},
		{"deployment from model", "", "mini-eu", "2025-01-01-preview", "/openai/deployments/mini-eu/chat/completions", "api-version=2025-01-01-preview"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := setup(t, openai.Options{AzureEndpoint: "azure", AzureDeployment: tt.deployment, AzureAPIVersion: tt.version},
				func(w http.ResponseWriter, r *http.Request) { textStream(w) })
			require.Equal(t, "azure", c.ProviderName())
			req := userReq("hi")
			req.Model = tt.model
			s, err := c.Stream(ctx(t), req)
			require.NoError(t, err)
			_, err = drain(t, s)
			require.NoError(t, err)
			require.Equal(t, tt.wantPath, rec.path)
			require.Equal(t, tt.wantQuery, rec.query)
			require.Equal(t, testKey, rec.header.Get("api-key"))
			require.Empty(t, rec.header.Get("Authorization"))
		})
	}
}

func TestPresets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, env string
	}{
		{"openai", "https://api.openai.com/v1", "OPENAI_API_KEY"},
		{"groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"},
		{"deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"},
		{"together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"},
		{"mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"},
		{"openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"},
		{"fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"},
		{"vllm", "http://localhost:8000/v1", ""},
		{"ollama", "http://localhost:11434/v1", ""},
		{"LMStudio", "http://localhost:1234/v1", ""},
		{"azure", "", "AZURE_OPENAI_API_KEY"},
	}
	for _, tt := range tests {
		p, ok := openai.Preset(tt.name)
		require.True(t, ok, tt.name)
		require.Equal(t, tt.url, p.BaseURL, tt.name)
		require.Equal(t, tt.env, p.KeyEnv, tt.name)
	}
	_, ok := openai.Preset("nope")
	require.False(t, ok)
	require.Len(t, openai.PresetNames(), len(tests))

	c, err := openai.New(openai.Options{Preset: "groq", APIKey: "k"})
	require.NoError(t, err)
	require.Equal(t, "groq", c.ProviderName())

	_, err = openai.New(openai.Options{Preset: "nope"})
	require.ErrorContains(t, err, "unknown preset")
	_, err = openai.New(openai.Options{Preset: "azure"})
	require.Error(t, err)
	_, err = openai.New(openai.Options{BaseURL: "not a url"})
	require.Error(t, err)
}

// A local preset sends max_tokens (not max_completion_tokens) and, with no
// key, no Authorization header.
func TestLocalPresetRequest(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		textStream(w)
	}))
	tr := &http.Transport{}
	t.Cleanup(func() { tr.CloseIdleConnections(); srv.Close() })
	c, err := openai.New(openai.Options{Preset: "vllm", BaseURL: srv.URL + "/v1", HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	require.Equal(t, "vllm", c.ProviderName())
	req := userReq("hi")
	req.MaxTokens = 64
	s, err := c.Stream(ctx(t), req)
	require.NoError(t, err)
	_, err = drain(t, s)
	require.NoError(t, err)
	body := rec.Body(t)
	require.EqualValues(t, 64, body["max_tokens"])
	require.NotContains(t, body, "max_completion_tokens")
	require.Empty(t, rec.header.Get("Authorization"))
}

func TestAPIKeyNeverInErrors(t *testing.T) {
	t.Parallel()
	secretHeader := "Bearer gw-SECRET-token-987654321"
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// A hostile or careless server echoing every credential it got.
			msg := fmt.Sprintf("Incorrect API key provided: %s (auth %s, api-key %s)",
				testKey, r.Header.Get("Authorization"), r.Header.Get("X-Gateway-Auth"))
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": "invalid_api_key"}})
			errorBody(w, status, string(b))
		}
	}
	handlers := map[string]http.HandlerFunc{
		"401":         echo(401),
		"400":         echo(400),
		"429":         echo(429),
		"500":         echo(500),
		"plain error": func(w http.ResponseWriter, r *http.Request) { errorBody(w, 400, `{"error":"bad key `+testKey+`"}`) },
		"stream event": func(w http.ResponseWriter, r *http.Request) {
			sse(w, `{"error":{"message":"key `+testKey+` revoked","type":"server_error"}}`)
		},
		"refusal": func(w http.ResponseWriter, r *http.Request) {
			sse(w, chunk(`{"refusal":"no, `+testKey+`"}`, ""), chunk(`{}`, "stop"), "[DONE]")
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, openai.Options{Headers: map[string]string{"X-Gateway-Auth": secretHeader}}, h)
			_, err := c.Stream(ctx(t), userReq("hi"))
			require.Error(t, err)
			for _, s := range []string{err.Error(), fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err)} {
				require.NotContains(t, s, testKey)
				require.NotContains(t, s, "gw-SECRET")
			}
			require.Contains(t, err.Error(), llm.Redacted)
		})
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	c, err := openai.New(openai.Options{APIKey: "k"})
	require.NoError(t, err)
	caps := c.Capabilities("gpt-4o-2024-08-06")
	require.True(t, caps.Vision)
	require.True(t, caps.Tools)
	require.True(t, caps.JSONSchema)
	require.Equal(t, 128_000, caps.ContextWindow)
	require.Equal(t, llm.Capabilities{}, c.Capabilities("unknown-model"))
}

// Ensure the package's own SSE framing matches what the SDK reads when the
// server splits events oddly (comments, CRLF-free keepalives).
func TestStreamIgnoresComments(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, openai.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		_, _ = bw.WriteString(": keep-alive\n\n")
		_, _ = bw.WriteString("data: " + chunk(`{"content":"ok"}`, "stop") + "\n\n")
		_, _ = bw.WriteString("data: [DONE]\n\n")
		_ = bw.Flush()
	})
	s, err := c.Stream(ctx(t), userReq("hi"))
	require.NoError(t, err)
	chunks, err := drain(t, s)
	require.NoError(t, err)
	require.Equal(t, []llm.Chunk{{Delta: "ok"}, {FinishReason: llm.FinishStop}}, chunks)
}
