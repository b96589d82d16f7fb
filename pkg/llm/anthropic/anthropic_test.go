package anthropic

// The fixtures below reproduce Anthropic's documented wire format:
//   - streaming: https://docs.anthropic.com/en/docs/build-with-claude/streaming
//     (event: message_start / content_block_start / ping / content_block_delta
//     with text_delta and input_json_delta / content_block_stop /
//     message_delta / message_stop, and in-stream `event: error`);
//   - errors: https://docs.anthropic.com/en/api/errors
//     ({"type":"error","error":{"type":...,"message":...}} with HTTP 400, 401,
//     403, 429 + retry-after, 500, 529 overloaded_error);
//   - request bodies: https://docs.anthropic.com/en/api/messages (system,
//     image source base64/url, tool_use, tool_result, tools, tool_choice,
//     output_config.format).

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

	"cloud.google.com/go/auth"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

const testKey = "sk-ant-test-SECRET-0123456789"

// fake is an httptest server standing in for api.anthropic.com. It records
// the last request and answers with respond.
type fake struct {
	srv     *httptest.Server
	mu      sync.Mutex
	body    []byte
	header  http.Header
	path    string
	respond func(w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *fake {
	t.Helper()
	f := &fake{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.body, f.header, f.path = b, r.Header.Clone(), r.URL.Path
		f.mu.Unlock()
		f.respond(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// request returns the last request body, decoded.
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
	c, err := New(o)
	require.NoError(t, err)
	return c
}

// sse writes events as "event: <type>\ndata: <json>\n\n" and flushes, the
// way the API streams them.
func sse(events ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			writeEvent(w, e)
		}
	}
}

func writeEvent(w http.ResponseWriter, data string) {
	var head struct{ Type string }
	_ = json.Unmarshal([]byte(data), &head)
	_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", head.Type, data)
	w.(http.Flusher).Flush()
}

func errorReply(status int, typ, msg string, headers map[string]string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`, typ, msg)
	}
}

const (
	evStart     = `{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`
	evTextStart = `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	evPing      = `{"type":"ping"}`
	evStop      = `{"type":"message_stop"}`
)

func textDelta(i int, s string) string {
	return fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%q}}`, i, s)
}

func blockStop(i int) string { return fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, i) }

func msgDelta(reason string, out int) string {
	return fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":{"output_tokens":%d}}`, reason, out)
}

// collect drains a stream.
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

// requireNoKey asserts the API key appears nowhere in err's chain.
func requireNoKey(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		require.NotContains(t, e.Error(), testKey)
		require.NotContains(t, fmt.Sprintf("%+v", e), testKey)
	}
}

func userReq(text string) *llm.Request {
	return &llm.Request{Model: "claude-sonnet-4-5", Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

func TestStreamText(t *testing.T) {
	t.Parallel()
	f := newFake(t, sse(evStart, evTextStart, evPing, textDelta(0, "Hello"), textDelta(0, ", world"),
		blockStop(0), msgDelta("end_turn", 15), evStop))
	c := newClient(t, f)

	req := &llm.Request{
		Model: "claude-sonnet-4-5",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "You are terse."},
			{Role: llm.RoleUser, Content: "Hi"},
			{Role: llm.RoleSystem, Content: "Answer in English."},
			{Role: llm.RoleUser, Content: "there"},
		},
		Temperature: new(0.2),
		TopP:        new(0.9),
		Stop:        []string{"END"},
		Seed:        new(int64(7)),
	}
	s, err := c.Stream(t.Context(), req)
	require.NoError(t, err)
	text, chunks, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "Hello, world", text)
	last := chunks[len(chunks)-1]
	require.Equal(t, llm.FinishStop, last.FinishReason)
	require.Equal(t, &llm.Usage{PromptTokens: 25, CompletionTokens: 15, TotalTokens: 40}, last.Usage)

	body := f.request(t)
	require.Equal(t, "/v1/messages", f.path)
	require.Equal(t, testKey, f.header.Get("X-Api-Key"))
	require.Equal(t, "2023-06-01", f.header.Get("Anthropic-Version"))
	require.Equal(t, "core", f.header.Get("X-Team"))
	require.Equal(t, true, body["stream"])
	require.Equal(t, float64(DefaultMaxTokens), body["max_tokens"])
	require.Equal(t, 0.2, body["temperature"])
	require.Equal(t, 0.9, body["top_p"])
	require.Equal(t, []any{"END"}, body["stop_sequences"])
	require.NotContains(t, body, "seed")
	// System messages move to the system field, joined; the two user turns
	// merge into one so that roles alternate.
	requireJSON(t, `[{"type":"text","text":"You are terse.\n\nAnswer in English."}]`, body["system"])
	requireJSON(t, `[{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"there"}]}]`, body["messages"])
}

func requireJSON(t *testing.T, want string, got any) {
	t.Helper()
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, want, string(b))
}

func TestMaxTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opt   int
		req   int
		model string
		want  float64
	}{
		{"default", 0, 0, "claude-sonnet-4-5", DefaultMaxTokens},
		{"option", 1000, 0, "claude-sonnet-4-5", 1000},
		{"request wins", 1000, 77, "claude-sonnet-4-5", 77},
		{"model max below default", 0, 0, "claude-3-haiku-20240307", DefaultMaxTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, sse(evStart, evTextStart, textDelta(0, "x"), msgDelta("end_turn", 1), evStop))
			c := newClient(t, f, func(o *Options) { o.MaxTokensDefault = tt.opt })
			req := userReq("hi")
			req.Model, req.MaxTokens = tt.model, tt.req
			s, err := c.Stream(t.Context(), req)
			require.NoError(t, err)
			_, _, err = collect(t, s)
			require.NoError(t, err)
			require.Equal(t, tt.want, f.request(t)["max_tokens"])
		})
	}
}

func TestFinishReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stop string
		want llm.FinishReason
	}{
		{"end_turn", llm.FinishStop},
		{"stop_sequence", llm.FinishStop},
		{"max_tokens", llm.FinishLength},
		{"tool_use", llm.FinishToolCalls},
		// A refusal is a content-policy stop, reported as the finish reason.
		{"refusal", llm.FinishContentFilter},
	}
	for _, tt := range tests {
		t.Run(tt.stop, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, sse(evStart, evTextStart, textDelta(0, "I"), blockStop(0), msgDelta(tt.stop, 3), evStop))
			s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
			require.NoError(t, err)
			_, chunks, err := collect(t, s)
			require.NoError(t, err)
			require.Equal(t, tt.want, chunks[len(chunks)-1].FinishReason)
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		typ, msg   string
		headers    map[string]string
		kind       llm.Kind
		retryAfter time.Duration
	}{
		{"rate limited", 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
			map[string]string{"retry-after": "17"}, llm.KindRateLimited, 17 * time.Second},
		{"rate limited ms", 429, "rate_limit_error", "slow down",
			map[string]string{"retry-after-ms": "1500", "retry-after": "2"}, llm.KindRateLimited, 1500 * time.Millisecond},
		{"overloaded 529", 529, "overloaded_error", "Overloaded", nil, llm.KindUnavailable, 0},
		{"api error 500", 500, "api_error", "Internal server error", nil, llm.KindUnavailable, 0},
		{"unauthorized", 401, "authentication_error", "invalid x-api-key", nil, llm.KindAuth, 0},
		{"forbidden", 403, "permission_error", "Your API key does not have permission to use the specified resource.", nil, llm.KindAuth, 0},
		{"prompt too long", 400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum", nil, llm.KindContextWindow, 0},
		{"bad request", 400, "invalid_request_error", "messages: roles must alternate", nil, llm.KindBadRequest, 0},
		{"not found", 404, "not_found_error", "model: claude-nope", nil, llm.KindBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, errorReply(tt.status, tt.typ, tt.msg+" (key "+testKey+")", tt.headers))
			s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
			require.Nil(t, s)
			le, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tt.kind, le.Kind, le.Error())
			require.Equal(t, tt.status, le.Status)
			require.Equal(t, tt.typ, le.Code)
			require.Equal(t, "anthropic", le.Provider)
			require.Contains(t, le.Message, tt.msg)
			require.Equal(t, tt.retryAfter, le.RetryAfter)
			require.False(t, le.MidStream)
			requireNoKey(t, err)
		})
	}
}

func TestErrorEvent(t *testing.T) {
	t.Parallel()
	const overloaded = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	t.Run("mid-stream", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, sse(evStart, evTextStart, textDelta(0, "Partial"), overloaded))
		s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
		require.NoError(t, err)
		text, _, err := collect(t, s)
		require.Equal(t, "Partial", text)
		le, ok := errors.AsType[*llm.Error](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, llm.KindUnavailable, le.Kind)
		require.True(t, le.MidStream)
		require.Equal(t, "overloaded_error", le.Code)
		require.Equal(t, "Overloaded", le.Message)
		require.True(t, llm.IsMidStream(err))
	})
	t.Run("before output", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, sse(evStart, evPing, overloaded))
		s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
		require.Nil(t, s)
		require.ErrorIs(t, err, llm.ErrUnavailable)
		require.False(t, llm.IsMidStream(err))
	})
}

func TestStreamCut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		abort bool
	}{
		// The server ends the response cleanly but without message_stop.
		{"clean end without message_stop", false},
		// The connection is torn down mid-body.
		{"connection reset", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				sse(evStart, evTextStart, textDelta(0, "Once upon"))(w, r)
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
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := newClient(t, f).Stream(ctx, userReq("hi"))
		require.ErrorIs(t, err, llm.ErrCancelled)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := newClient(t, f).Stream(ctx, userReq("hi"))
		require.ErrorIs(t, err, llm.ErrTimeout)
	})
}

func TestToolCallStream(t *testing.T) {
	t.Parallel()
	// A text block, then two parallel tool_use blocks whose input arrives
	// in fragments (input_json_delta), as documented for tool use streaming.
	f := newFake(t, sse(evStart,
		evTextStart, textDelta(0, "Let me check."), blockStop(0),
		`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}`,
		blockStop(1),
		`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}}`,
		`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}`,
		`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"CET\"}"}}`,
		blockStop(2),
		msgDelta("tool_use", 89), evStop))
	s, err := newClient(t, f).Stream(t.Context(), userReq("weather and time in Paris?"))
	require.NoError(t, err)
	text, chunks, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "Let me check.", text)

	calls := map[int]*llm.ToolCall{}
	for _, c := range chunks {
		for _, d := range c.ToolCalls {
			tc, ok := calls[d.Index]
			if !ok {
				require.NotEmpty(t, d.ID, "first fragment carries the id")
				tc = &llm.ToolCall{ID: d.ID, Name: d.Name}
				calls[d.Index] = tc
			}
			tc.Arguments += d.Arguments
		}
	}
	require.Equal(t, map[int]*llm.ToolCall{
		0: {ID: "toolu_01A", Name: "get_weather", Arguments: `{"city": "Paris"}`},
		1: {ID: "toolu_01B", Name: "get_time", Arguments: `{"tz":"CET"}`},
	}, calls)
	require.Equal(t, llm.FinishToolCalls, chunks[len(chunks)-1].FinishReason)
	require.Equal(t, 89, chunks[len(chunks)-1].Usage.CompletionTokens)
}

func okStream() func(w http.ResponseWriter, r *http.Request) {
	return sse(evStart, evTextStart, textDelta(0, "ok"), blockStop(0), msgDelta("end_turn", 1), evStop)
}

// send runs req against a fake and returns the request body it received.
func send(t *testing.T, req *llm.Request) map[string]any {
	t.Helper()
	f := newFake(t, okStream())
	s, err := newClient(t, f).Stream(t.Context(), req)
	require.NoError(t, err)
	_, _, err = collect(t, s)
	require.NoError(t, err)
	return f.request(t)
}

func TestToolResultFollowUp(t *testing.T) {
	t.Parallel()
	req := &llm.Request{
		Model: "claude-sonnet-4-5",
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: "Weather and time in Paris?"},
			{Role: llm.RoleAssistant, Content: "Let me check.", ToolCalls: []llm.ToolCall{
				{ID: "toolu_01A", Name: "get_weather", Arguments: `{"city":"Paris"}`},
				{ID: "toolu_01B", Name: "get_time", Arguments: ``},
			}},
			{Role: llm.RoleTool, ToolCallID: "toolu_01A", Content: `{"temp_c":21}`},
			{Role: llm.RoleTool, ToolCallID: "toolu_01B", Content: "14:02"},
		},
		Tools: []llm.Tool{{
			Name: "get_weather", Description: "Current weather",
			Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`),
		}, {Name: "get_time"}},
		ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceAuto},
	}
	body := send(t, req)
	requireJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"Weather and time in Paris?"}]},
		{"role":"assistant","content":[
			{"type":"text","text":"Let me check."},
			{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris"}},
			{"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"toolu_01A","content":[{"type":"text","text":"{\"temp_c\":21}"}]},
			{"type":"tool_result","tool_use_id":"toolu_01B","content":[{"type":"text","text":"14:02"}]}]}
	]`, body["messages"])
	requireJSON(t, `[
		{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},
		{"name":"get_time","input_schema":{"type":"object","properties":{}}}
	]`, body["tools"])
	requireJSON(t, `{"type":"auto"}`, body["tool_choice"])
}

func TestToolChoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		choice llm.ToolChoice
		want   string
	}{
		{llm.ToolChoice{Mode: llm.ToolChoiceAuto}, `{"type":"auto"}`},
		{llm.ToolChoice{Mode: llm.ToolChoiceRequired}, `{"type":"any"}`},
		{llm.ToolChoice{Mode: llm.ToolChoiceNone}, `{"type":"none"}`},
		{llm.ToolChoice{Mode: llm.ToolChoiceFunction, Name: "get_weather"}, `{"type":"tool","name":"get_weather"}`},
	}
	for _, tt := range tests {
		t.Run(string(tt.choice.Mode), func(t *testing.T) {
			t.Parallel()
			req := userReq("hi")
			req.Tools = []llm.Tool{{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}}
			req.ToolChoice = &tt.choice
			requireJSON(t, tt.want, send(t, req)["tool_choice"])
		})
	}
}

func TestImageParts(t *testing.T) {
	t.Parallel()
	req := &llm.Request{Model: "claude-sonnet-4-5", Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{
		{Type: llm.PartText, Text: "What is in these?"},
		{Type: llm.PartImage, ImageURL: "data:image/png;base64,iVBORw0KGgo="},
		{Type: llm.PartImage, ImageURL: "https://example.com/cat.jpg"},
	}}}}
	requireJSON(t, `[{"role":"user","content":[
		{"type":"text","text":"What is in these?"},
		{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
		{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}
	]}]`, send(t, req)["messages"])
}

func TestBadImageIsBadRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t, okStream())
	req := &llm.Request{Model: "claude-sonnet-4-5", Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{
		{Type: llm.PartImage, ImageURL: "file:///etc/passwd"},
	}}}}
	_, err := newClient(t, f).Stream(t.Context(), req)
	require.ErrorIs(t, err, llm.ErrBadRequest)
}

func TestResponseFormat(t *testing.T) {
	t.Parallel()
	t.Run("json_schema is native output_config.format", func(t *testing.T) {
		t.Parallel()
		req := userReq("Extract the person.")
		req.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "person",
			Schema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}`)}
		body := send(t, req)
		requireJSON(t, `{"format":{"type":"json_schema","schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}}}`, body["output_config"])
		require.NotContains(t, body, "tools")
		require.NotContains(t, body, "system")
	})
	t.Run("json_object is a system instruction", func(t *testing.T) {
		t.Parallel()
		req := &llm.Request{Model: "claude-sonnet-4-5", Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "Be precise."},
			{Role: llm.RoleUser, Content: "List two colours."},
		}, ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONObject}}
		body := send(t, req)
		requireJSON(t, `[{"type":"text","text":"Be precise.\n\n`+jsonObjectInstruction+`"}]`, body["system"])
		require.NotContains(t, body, "output_config")
	})
}

func TestOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{})
	require.ErrorIs(t, err, llm.ErrAuth)

	f := newFake(t, okStream())
	c := newClient(t, f, func(o *Options) {
		o.Version = "2023-01-01"
		o.Betas = []string{"a-2025-01-01", "b-2025-02-02"}
	})
	s, err := c.Stream(t.Context(), userReq("hi"))
	require.NoError(t, err)
	_, _, err = collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "2023-01-01", f.header.Get("Anthropic-Version"))
	require.Equal(t, "a-2025-01-01,b-2025-02-02", f.header.Get("Anthropic-Beta"))
	require.Equal(t, "anthropic", c.ProviderName())
	require.True(t, c.Capabilities("claude-sonnet-4-5-20250929").Tools)
	require.Zero(t, c.Capabilities("no-such-model-xyz"))
}

func TestEmptyAnswerStillFinishes(t *testing.T) {
	t.Parallel()
	f := newFake(t, sse(evStart, msgDelta("end_turn", 0), evStop))
	s, err := newClient(t, f).Stream(t.Context(), userReq("hi"))
	require.NoError(t, err)
	text, chunks, err := collect(t, s)
	require.NoError(t, err)
	require.Empty(t, text)
	require.Len(t, chunks, 1)
	require.Equal(t, llm.FinishStop, chunks[0].FinishReason)
	require.NotNil(t, chunks[0].Usage)
	require.True(t, strings.HasPrefix(f.path, "/v1/"))
}

type staticToken string

func (s staticToken) Token(context.Context) (*auth.Token, error) {
	return &auth.Token{Value: string(s)}, nil
}

func TestVertex(t *testing.T) {
	t.Parallel()
	// Claude on Vertex AI: POST /v1/projects/{p}/locations/{r}/publishers/
	// anthropic/models/{model}:streamRawPredict with anthropic_version in the
	// body instead of the model, the same SSE stream back.
	f := newFake(t, okStream())
	c := newClient(t, f, func(o *Options) {
		o.APIKey = ""
		o.Vertex = &VertexOptions{Project: "proj-1", Region: "us-east5", TokenProvider: staticToken("ya29.token")}
	})
	s, err := c.Stream(t.Context(), userReq("hi"))
	require.NoError(t, err)
	text, _, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "ok", text)
	require.Equal(t, "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict", f.path)
	require.Equal(t, "Bearer ya29.token", f.header.Get("Authorization"))
	require.Empty(t, f.header.Get("X-Api-Key"))
	body := f.request(t)
	require.NotContains(t, body, "model")
	require.Equal(t, vertexVersion, body["anthropic_version"])
	require.Equal(t, true, body["stream"])

	_, err = New(Options{Vertex: &VertexOptions{Project: "p"}})
	require.ErrorIs(t, err, llm.ErrBadRequest)
}
