package gemini

// The fixtures below reproduce the Gemini API's documented wire format:
//   - streaming: POST /v1beta/models/{model}:streamGenerateContent?alt=sse,
//     answered with SSE "data: <GenerateContentResponse JSON>" events
//     (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent),
//     candidates[].content.parts (text, functionCall), finishReason,
//     usageMetadata and promptFeedback.blockReason
//     (https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse);
//   - errors: the Google API error body {"error":{"code","message","status",
//     "details":[google.rpc.RetryInfo, google.rpc.ErrorInfo, ...]}}
//     (https://ai.google.dev/gemini-api/docs/troubleshooting);
//   - request bodies: contents/parts (inlineData, fileData, functionCall,
//     functionResponse), systemInstruction, generationConfig
//     (responseMimeType, responseJsonSchema), tools.functionDeclarations
//     (parametersJsonSchema) and toolConfig.functionCallingConfig.

import (
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

	"github.com/switchyard/switchyard/pkg/llm"
)

const testKey = "AIzaSy-TEST-SECRET-0123456789"

// fake is an httptest server standing in for generativelanguage.googleapis.com.
type fake struct {
	srv     *httptest.Server
	mu      sync.Mutex
	body    []byte
	header  http.Header
	url     string
	respond func(w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *fake {
	t.Helper()
	f := &fake{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.body, f.header, f.url = b, r.Header.Clone(), r.URL.String()
		f.mu.Unlock()
		f.respond(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) request(t *testing.T) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]any
	require.NoError(t, json.Unmarshal(f.body, &m), "body: %s", f.body)
	return m
}

func newClient(t *testing.T, f *fake, mod ...func(*Options)) *Client {
	t.Helper()
	o := Options{APIKey: testKey, BaseURL: f.srv.URL, Headers: map[string]string{"X-Team": "core"}}
	for _, m := range mod {
		m(&o)
	}
	c, err := New(t.Context(), o)
	require.NoError(t, err)
	return c
}

// sse answers with one "data:" event per GenerateContentResponse.
func sse(events ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			_, _ = fmt.Fprintf(w, "data: %s\r\n\r\n", e)
			w.(http.Flusher).Flush()
		}
	}
}

func errorReply(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func apiError(code int, status, msg string, details ...string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"message":%q,"status":%q,"details":[%s]}}`, code, msg, status, strings.Join(details, ","))
}

func textResp(text, finish string, usage string) string {
	fr := ""
	if finish != "" {
		fr = fmt.Sprintf(`,"finishReason":%q`, finish)
	}
	u := ""
	if usage != "" {
		u = `,"usageMetadata":` + usage
	}
	return fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":%q}],"role":"model"}%s,"index":0}]%s,"modelVersion":"gemini-2.5-flash","responseId":"mKZnaPqXHNGz1dkP"}`, text, fr, u)
}

const usageFinal = `{"promptTokenCount":9,"candidatesTokenCount":12,"thoughtsTokenCount":3,"totalTokenCount":24}`

func collect(t *testing.T, s llm.Stream) (text string, chunks []llm.Chunk, err error) {
	t.Helper()
	defer func() { require.NoError(t, s.Close()); require.NoError(t, s.Close()) }()
	for s.Next() {
		c := s.Current()
		chunks = append(chunks, c)
		text += c.Delta
	}
	return text, chunks, s.Err()
}

func requireNoKey(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		require.NotContains(t, e.Error(), testKey)
		require.NotContains(t, fmt.Sprintf("%+v", e), testKey)
	}
}

func requireJSON(t *testing.T, want string, got any) {
	t.Helper()
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, want, string(b))
}

func userReq(text string) *llm.Request {
	return &llm.Request{Model: "gemini-2.5-flash", Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

func TestStreamText(t *testing.T) {
	t.Parallel()
	f := newFake(t, sse(
		textResp("Hello", "", `{"promptTokenCount":9,"totalTokenCount":9}`),
		textResp(", world", "STOP", usageFinal)))
	c := newClient(t, f)
	req := &llm.Request{
		Model: "gemini-2.5-flash",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "You are terse."},
			{Role: llm.RoleUser, Content: "Hi"},
			{Role: llm.RoleAssistant, Content: "Hello."},
			{Role: llm.RoleUser, Content: "Greet the world"},
		},
		Temperature: new(0.5),
		TopP:        new(0.25),
		MaxTokens:   256,
		Stop:        []string{"END"},
		Seed:        new(int64(42)),
	}
	s, err := c.Stream(t.Context(), req)
	require.NoError(t, err)
	text, chunks, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "Hello, world", text)
	last := chunks[len(chunks)-1]
	require.Equal(t, llm.FinishStop, last.FinishReason)
	require.Equal(t, &llm.Usage{PromptTokens: 9, CompletionTokens: 15, TotalTokens: 24}, last.Usage)

	require.Equal(t, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", f.url)
	require.Equal(t, testKey, f.header.Get("X-Goog-Api-Key"))
	require.Equal(t, "core", f.header.Get("X-Team"))
	body := f.request(t)
	requireJSON(t, `{"role":"user","parts":[{"text":"You are terse."}]}`, body["systemInstruction"])
	requireJSON(t, `[
		{"role":"user","parts":[{"text":"Hi"}]},
		{"role":"model","parts":[{"text":"Hello."}]},
		{"role":"user","parts":[{"text":"Greet the world"}]}]`, body["contents"])
	requireJSON(t, `{"temperature":0.5,"topP":0.25,"maxOutputTokens":256,"stopSequences":["END"],"seed":42}`, body["generationConfig"])
}

func TestFinishReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		finish string
		want   llm.FinishReason
	}{
		{"STOP", llm.FinishStop},
		{"MAX_TOKENS", llm.FinishLength},
		{"SAFETY", llm.FinishContentFilter},
		{"PROHIBITED_CONTENT", llm.FinishContentFilter},
		{"BLOCKLIST", llm.FinishContentFilter},
		{"RECITATION", llm.FinishContentFilter},
	}
	for _, tt := range tests {
		t.Run(tt.finish, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, sse(textResp("Some", "", ""), textResp("", tt.finish, usageFinal)))
			s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
			require.NoError(t, err)
			text, chunks, err := collect(t, s)
			require.NoError(t, err)
			require.Equal(t, "Some", text)
			require.Equal(t, tt.want, chunks[len(chunks)-1].FinishReason)
		})
	}
}

func TestPromptBlocked(t *testing.T) {
	t.Parallel()
	f := newFake(t, sse(`{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash"}`))
	s, err := newClient(t, f).Stream(t.Context(), userReq("something awful"))
	require.Nil(t, s)
	le, ok := errors.AsType[*llm.Error](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, llm.KindContentPolicy, le.Kind)
	require.Equal(t, "SAFETY", le.Code)
	require.False(t, le.MidStream)
	require.ErrorIs(t, err, llm.ErrContentPolicy)
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	const retryInfo = `{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}`
	const quota = `{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]}`
	const keyInvalid = `{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}`
	tests := []struct {
		name       string
		status     int
		body       string
		kind       llm.Kind
		code       string
		retryAfter time.Duration
	}{
		{"rate limited with RetryInfo", 429, apiError(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details.", quota, retryInfo),
			llm.KindRateLimited, "RESOURCE_EXHAUSTED", 37 * time.Second},
		{"rate limited without RetryInfo", 429, apiError(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
			llm.KindRateLimited, "RESOURCE_EXHAUSTED", 0},
		{"unavailable 503", 503, apiError(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
			llm.KindUnavailable, "UNAVAILABLE", 0},
		{"internal 500", 500, apiError(500, "INTERNAL", "An internal error has occurred."),
			llm.KindUnavailable, "INTERNAL", 0},
		{"context window", 400, apiError(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."),
			llm.KindContextWindow, "INVALID_ARGUMENT", 0},
		{"bad request", 400, apiError(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\"."),
			llm.KindBadRequest, "INVALID_ARGUMENT", 0},
		{"invalid key is 400 API_KEY_INVALID", 400, apiError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", keyInvalid),
			llm.KindAuth, "INVALID_ARGUMENT", 0},
		{"unauthenticated 401", 401, apiError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
			llm.KindAuth, "UNAUTHENTICATED", 0},
		{"permission denied 403", 403, apiError(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (key "+testKey+")."),
			llm.KindAuth, "PERMISSION_DENIED", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, errorReply(tt.status, tt.body))
			s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
			require.Nil(t, s)
			le, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tt.kind, le.Kind, le.Error())
			require.Equal(t, tt.status, le.Status)
			require.Equal(t, tt.code, le.Code)
			require.Equal(t, "gemini", le.Provider)
			require.Equal(t, tt.retryAfter, le.RetryAfter)
			require.False(t, le.MidStream)
			requireNoKey(t, err)
		})
	}
}

func TestErrorInStream(t *testing.T) {
	t.Parallel()
	f := newFake(t, sse(textResp("Partial", "", ""), apiError(503, "UNAVAILABLE", "The model is overloaded.")))
	s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
	require.NoError(t, err)
	text, _, err := collect(t, s)
	require.Equal(t, "Partial", text)
	le, ok := errors.AsType[*llm.Error](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, llm.KindUnavailable, le.Kind)
	require.True(t, le.MidStream)
}

func TestStreamCut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		abort bool
	}{
		// The response ends cleanly, but no candidate carried a finishReason.
		{"clean end without finishReason", false},
		// The connection is torn down mid-body.
		{"connection reset", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				sse(textResp("Once upon", "", ""))(w, r)
				if tt.abort {
					panic(http.ErrAbortHandler)
				}
			})
			s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
			require.NoError(t, err)
			text, _, err := collect(t, s)
			require.Equal(t, "Once upon", text)
			le, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok, "%v", err)
			require.Equal(t, llm.KindUnavailable, le.Kind, le.Error())
			require.True(t, le.MidStream)
			requireNoKey(t, err)
		})
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, sse())
		c := newClient(t, f)
		f.srv.Close()
		_, err := c.Stream(t.Context(), userReq("hi"))
		require.ErrorIs(t, err, llm.ErrConnection)
		requireNoKey(t, err)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := newClient(t, f).Stream(ctx, userReq("hi"))
		require.ErrorIs(t, err, llm.ErrTimeout)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := newClient(t, f).Stream(ctx, userReq("hi"))
		require.ErrorIs(t, err, llm.ErrCancelled)
	})
}

func TestToolCallStream(t *testing.T) {
	t.Parallel()
	// Gemini sends whole function calls; two parallel calls arrive in one
	// response, the first without an id, the second with one and a thought
	// signature.
	f := newFake(t, sse(
		textResp("Checking.", "", ""),
		`{"candidates":[{"content":{"role":"model","parts":[
			{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},
			{"functionCall":{"id":"fc-2","name":"get_time","args":{"tz":"CET"}},"thoughtSignature":"c2lnbmF0dXJl"}
		]},"finishReason":"STOP","index":0}],"usageMetadata":`+usageFinal+`}`))
	s, err := newClient(t, f).Stream(t.Context(), userReq("weather and time in Paris?"))
	require.NoError(t, err)
	text, chunks, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "Checking.", text)
	var calls []llm.ToolCallDelta
	for _, c := range chunks {
		calls = append(calls, c.ToolCalls...)
	}
	require.Len(t, calls, 2)
	require.Equal(t, 0, calls[0].Index)
	require.Equal(t, "get_weather", calls[0].Name)
	require.JSONEq(t, `{"city":"Paris"}`, calls[0].Arguments)
	require.True(t, strings.HasPrefix(calls[0].ID, generatedIDPrefix), calls[0].ID)
	require.Equal(t, 1, calls[1].Index)
	require.Equal(t, "get_time", calls[1].Name)
	require.JSONEq(t, `{"tz":"CET"}`, calls[1].Arguments)
	require.True(t, strings.HasPrefix(calls[1].ID, "fc-2"), calls[1].ID)
	require.Equal(t, llm.FinishToolCalls, chunks[len(chunks)-1].FinishReason)

	// The calls go back in the follow-up: ids made up here are not sent,
	// the thought signature is.
	req := &llm.Request{Model: "gemini-2.5-flash", Messages: []llm.Message{
		{Role: llm.RoleUser, Content: "weather and time in Paris?"},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{
			{ID: calls[0].ID, Name: calls[0].Name, Arguments: calls[0].Arguments},
			{ID: calls[1].ID, Name: calls[1].Name, Arguments: calls[1].Arguments},
		}},
		{Role: llm.RoleTool, ToolCallID: calls[0].ID, Content: `{"temp_c":21}`},
		{Role: llm.RoleTool, ToolCallID: calls[1].ID, Content: "14:02"},
	}}
	body := send(t, req)
	requireJSON(t, `[
		{"role":"user","parts":[{"text":"weather and time in Paris?"}]},
		{"role":"model","parts":[
			{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},
			{"functionCall":{"id":"fc-2","name":"get_time","args":{"tz":"CET"}},"thoughtSignature":"c2lnbmF0dXJl"}]},
		{"role":"user","parts":[
			{"functionResponse":{"name":"get_weather","response":{"temp_c":21}}},
			{"functionResponse":{"id":"fc-2","name":"get_time","response":{"result":"14:02"}}}]}
	]`, body["contents"])
}

func okStream() func(w http.ResponseWriter, r *http.Request) {
	return sse(textResp("ok", "STOP", usageFinal))
}

func send(t *testing.T, req *llm.Request) map[string]any {
	t.Helper()
	f := newFake(t, okStream())
	s, err := newClient(t, f).Stream(t.Context(), req)
	require.NoError(t, err)
	_, _, err = collect(t, s)
	require.NoError(t, err)
	return f.request(t)
}

func TestToolResponseForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		content string
		want    string
	}{
		{`{"ok":true}`, `{"ok":true}`},
		{`[1,2]`, `{"result":[1,2]}`},
		{`42`, `{"result":42}`},
		{`sunny`, `{"result":"sunny"}`},
		{``, `{"result":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.content, func(t *testing.T) {
			t.Parallel()
			requireJSON(t, tt.want, toolResponse(tt.content))
		})
	}
}

func TestToolsAndChoice(t *testing.T) {
	t.Parallel()
	tool := llm.Tool{Name: "get_weather", Description: "Current weather",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}
	tests := []struct {
		choice llm.ToolChoice
		want   string
	}{
		{llm.ToolChoice{Mode: llm.ToolChoiceAuto}, `{"functionCallingConfig":{"mode":"AUTO"}}`},
		{llm.ToolChoice{Mode: llm.ToolChoiceRequired}, `{"functionCallingConfig":{"mode":"ANY"}}`},
		{llm.ToolChoice{Mode: llm.ToolChoiceNone}, `{"functionCallingConfig":{"mode":"NONE"}}`},
		{llm.ToolChoice{Mode: llm.ToolChoiceFunction, Name: "get_weather"}, `{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}}`},
	}
	for _, tt := range tests {
		t.Run(string(tt.choice.Mode), func(t *testing.T) {
			t.Parallel()
			req := userReq("hi")
			req.Tools = []llm.Tool{tool}
			req.ToolChoice = &tt.choice
			body := send(t, req)
			requireJSON(t, tt.want, body["toolConfig"])
			requireJSON(t, `[{"functionDeclarations":[{"name":"get_weather","description":"Current weather",
				"parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]}]`, body["tools"])
		})
	}
}

func TestImageParts(t *testing.T) {
	t.Parallel()
	req := &llm.Request{Model: "gemini-2.5-flash", Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{
		{Type: llm.PartText, Text: "What is in these?"},
		{Type: llm.PartImage, ImageURL: "data:image/png;base64,iVBORw0KGgo="},
		{Type: llm.PartImage, ImageURL: "https://example.com/cat.webp?size=large"},
	}}}}
	requireJSON(t, `[{"role":"user","parts":[
		{"text":"What is in these?"},
		{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}},
		{"fileData":{"mimeType":"image/webp","fileUri":"https://example.com/cat.webp?size=large"}}
	]}]`, send(t, req)["contents"])
}

func TestResponseFormat(t *testing.T) {
	t.Parallel()
	t.Run("json_schema is native", func(t *testing.T) {
		t.Parallel()
		req := userReq("Extract the person.")
		req.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "person",
			Schema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)}
		requireJSON(t, `{"responseMimeType":"application/json",
			"responseJsonSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}`,
			send(t, req)["generationConfig"])
	})
	t.Run("json_object is the MIME type only", func(t *testing.T) {
		t.Parallel()
		req := userReq("Two colours as JSON.")
		req.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONObject}
		requireJSON(t, `{"responseMimeType":"application/json"}`, send(t, req)["generationConfig"])
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		kind llm.Kind
	}{
		{"gemini without key", Options{}, llm.KindAuth},
		{"unknown backend", Options{APIKey: testKey, Backend: "azure"}, llm.KindBadRequest},
		// The SDK refuses project/location on the Gemini API, quoting its
		// whole config (key included) in the error.
		{"gemini with project", Options{APIKey: testKey, Project: "p", Location: "us-central1"}, llm.KindBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(t.Context(), tt.opts)
			require.Equal(t, tt.kind, llm.KindOf(err), "%v", err)
			requireNoKey(t, err)
		})
	}
}

func TestVertexBackend(t *testing.T) {
	t.Parallel()
	// Vertex with a caller-supplied HTTP client (which handles auth) builds
	// without Application Default Credentials.
	f := newFake(t, okStream())
	c := newClient(t, f, func(o *Options) {
		o.APIKey, o.Backend, o.Project, o.Location = "", BackendVertex, "proj-1", "us-central1"
		o.HTTPClient = f.srv.Client()
	})
	s, err := c.Stream(t.Context(), userReq("hi"))
	require.NoError(t, err)
	text, _, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "ok", text)
	require.Equal(t, "/v1beta1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse", f.url)
	require.Empty(t, f.header.Get("X-Goog-Api-Key"))
	require.Equal(t, "gemini", c.ProviderName())
	require.True(t, c.Capabilities("gemini-2.5-pro").JSONSchema)
	require.Zero(t, c.Capabilities("no-such-model-xyz"))
}

func TestCallIDRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id       string
		sig      []byte
		wantWire string
	}{
		{"fc-1", nil, "fc-1"},
		{"fc-1", []byte{0xff, 0x00, 'a'}, "fc-1"},
		{newCallID(), []byte("sig"), ""},
		{newCallID(), nil, ""},
	}
	for _, tt := range tests {
		wire, sig := decodeCallID(encodeCallID(tt.id, tt.sig))
		require.Equal(t, tt.wantWire, wire, tt.id)
		require.Equal(t, tt.sig, sig, tt.id)
	}
}
