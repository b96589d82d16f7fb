package bus

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func ptr[T any](v T) *T { return &v }

func fullRequest() *Request {
	return &Request{
		ID: "job-1", Model: "demo",
		Messages: []Message{
			{Role: "system", Content: Text("be brief")},
			{Role: "user", Content: Content{Parts: []Part{{Type: "text", Text: "what is this?"}, {Type: "image_url", ImageURL: &ImageURL{URL: "https://x/y.png", Detail: "low"}}}}},
			{Role: "assistant", Content: Text(""), ToolCalls: []ToolCall{{ID: "c1", Type: "function", Function: FunctionCall{Name: "f", Arguments: `{"a":1}`}}}},
			{Role: "tool", ToolCallID: "c1", Content: Text(`{"ok":true}`)},
		},
		Temperature: ptr(0.2), TopP: ptr(0.9), MaxTokens: ptr(100), Stop: Strings{"\n\n"}, Seed: ptr(int64(7)),
		ResponseFormat: &ResponseFormat{Type: "json_schema", JSONSchema: &JSONSchema{Name: "x", Schema: map[string]any{"type": "object"}, Strict: true}},
		Tools:          []Tool{{Type: "function", Function: FunctionSpec{Name: "f", Parameters: map[string]any{"type": "object"}}}},
		ToolChoice:     &ToolChoice{Mode: "function", Function: "f"},
		Stream:         ptr(false), Reply: "app.r.1", Tenant: "acme", Metadata: map[string]string{"k": "v"},
		Deadline: "2030-01-01T00:00:00Z", TimeoutMS: 5000, ValidationRetries: ptr(3),
	}
}

func TestRequestRoundTripsInBothEncodings(t *testing.T) {
	t.Parallel()
	for _, enc := range []Encoding{Msgpack, JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			in := fullRequest()
			b, err := enc.Marshal(in)
			require.NoError(t, err)
			require.Equal(t, enc, Detect(nil, b))
			var out Request
			require.NoError(t, enc.Unmarshal(b, &out))
			// Compare through JSON: msgpack decodes numbers in `any` to
			// other integer types than encoding/json.
			want, _ := json.Marshal(in)
			got, _ := json.Marshal(&out)
			require.JSONEq(t, string(want), string(got))
		})
	}
}

func TestOpenAIShapesDecode(t *testing.T) {
	t.Parallel()
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"user","content":null}],
	  "stop":"END","tool_choice":"auto","n":1,"logprobs":false}`
	var r Request
	require.NoError(t, JSON.Unmarshal([]byte(body), &r))
	require.Equal(t, "hi", r.Messages[0].Content.Parts[0].Text)
	require.Equal(t, Strings{"END"}, r.Stop)
	require.Equal(t, "auto", r.ToolChoice.Mode)
	require.True(t, r.Streaming(), "stream defaults to true")

	// The same from a msgpack producer (e.g. Python's msgpack.packb of a dict).
	mp, err := msgpack.Marshal(map[string]any{
		"messages":    []any{map[string]any{"role": "user", "content": "hi"}},
		"stop":        "END",
		"tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "f"}},
		"extra":       []any{1, 2},
	})
	require.NoError(t, err)
	var r2 Request
	require.NoError(t, Msgpack.Unmarshal(mp, &r2))
	require.Equal(t, "hi", r2.Messages[0].Content.Text)
	require.Equal(t, Strings{"END"}, r2.Stop)
	require.Equal(t, ToolChoice{Mode: "function", Function: "f"}, *r2.ToolChoice)
}

func TestWrongTypesAreErrors(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"messages":"hi"}`,
		`{"messages":[{"role":"user","content":42}]}`,
		`{"temperature":"hot","messages":[]}`,
		`{"tool_choice":{"type":"function","function":{}}}`,
		`{"stop":5}`,
	} {
		var r Request
		require.Error(t, JSON.Unmarshal([]byte(body), &r), body)
	}
	mp, _ := msgpack.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": 42}}})
	var r Request
	require.Error(t, Msgpack.Unmarshal(mp, &r))
}

func TestDetect(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	require.Equal(t, JSON, Detect(h, []byte(` {"a":1}`)))
	require.Equal(t, Msgpack, Detect(h, []byte{0x81}))
	h.Set(HeaderContentType, ContentTypeMsgpack)
	require.Equal(t, Msgpack, Detect(h, []byte(`{`)), "the header wins over sniffing")
	h.Set(HeaderContentType, ContentTypeJSON)
	require.Equal(t, JSON, Detect(h, []byte{0x81}))
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	s := Subjects{}
	require.Equal(t, "llm.req.demo", s.Request("demo"))
	g, ok := s.GroupOf("llm.req.demo")
	require.True(t, ok)
	require.Equal(t, "demo", g)
	_, ok = s.GroupOf("llm.req.a.b")
	require.False(t, ok)
	require.True(t, s.InResults("llm.res.abc"))
	require.False(t, s.InResults("llm.res.abc.def"))
	require.False(t, s.InResults("app.replies.1"))
	require.Equal(t, "x.res.1", Subjects{Prefix: "x"}.Reply("1"))
	for g, ok := range map[string]bool{"demo": true, "a_b-9": true, "": false, "Demo": false, "a.b": false, "a*": false} {
		require.Equal(t, ok, ValidGroup(g), g)
	}
	for id, ok := range map[string]bool{"01J-x_y=/z": true, "": false, "a.b": false, "a b": false, "a>": false, "é": false} {
		require.Equal(t, ok, ValidJobID(id), id)
	}
	for r, ok := range map[string]bool{"app.r.1": true, "x": true, ".x": false, "x.": false, "a..b": false, "a.*": false, "a b": false} {
		require.Equal(t, ok, ValidReply(r), r)
	}
}

// Regression: declared lengths far beyond the message made the msgpack
// decoder allocate gigabytes (found by FuzzDecodeRequestMsgpack).
func TestMsgpackHugeDeclaredLengthsAreRefused(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{
		{0x81, 0xa8, 'm', 'e', 's', 's', 'a', 'g', 'e', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff},
		{0x81, 0xa8, 'm', 'e', 't', 'a', 'd', 'a', 't', 'a', 0xdf, 0x7f, 0xff, 0xff, 0xff},
		{0x81, 0xa2, 'i', 'd', 0xdb, 0x7f, 0xff, 0xff, 0xff},
		{0x81, 0xa2, 'i', 'd', 0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01},
	} {
		var r Request
		require.Error(t, Msgpack.Unmarshal(b, &r))
	}
	deep := make([]byte, 0, 300)
	for range 200 {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0xc0)
	var v any
	require.ErrorContains(t, Msgpack.Unmarshal(deep, &v), "nested deeper")
	// Valid input still decodes.
	b, _ := Msgpack.Marshal(fullRequest())
	require.NoError(t, checkMsgpack(b))
}

// The decoders take outside input: they must never panic, and whatever they
// accept must encode again.
func FuzzDecodeRequestJSON(f *testing.F) {
	b, _ := JSON.Marshal(fullRequest())
	f.Add(b)
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text"}]}],"stop":"x","tool_choice":"auto"}`))
	f.Add([]byte(`{"messages":[{"content":null}],"response_format":{"type":"json_schema","json_schema":{"schema":{"$ref":"#"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if JSON.Unmarshal(data, &r) != nil {
			return
		}
		if _, err := JSON.Marshal(&r); err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
	})
}

func FuzzDecodeRequestMsgpack(f *testing.F) {
	b, _ := Msgpack.Marshal(fullRequest())
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{0x81, 0xa8, 'm', 'e', 's', 's', 'a', 'g', 'e', 's', 0x91, 0x81, 0xa7, 'c', 'o', 'n', 't', 'e', 'n', 't', 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if Msgpack.Unmarshal(data, &r) != nil {
			return
		}
		if _, err := Msgpack.Marshal(&r); err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
	})
}
