package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/llm/openai"
	"github.com/switchyard/switchyard/pkg/llm/structured"
	"github.com/switchyard/switchyard/pkg/policy"
)

const personSchema = `{
	"type": "object",
	"properties": {
		"name": {"type": "string", "minLength": 1},
		"age": {"type": "integer", "minimum": 0, "maximum": 130},
		"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
	},
	"required": ["name", "age"],
	"additionalProperties": false
}`

// decoded returns JSON text as a decoded value, as the wire carries a schema.
func decoded(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

func schemaReq(t *testing.T, id, prompt, schema string) *bus.Request {
	t.Helper()
	r := userReq(id, prompt)
	r.ResponseFormat = &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "person", Schema: decoded(t, schema)}}
	return r
}

// senv is the one worker that the structured-output tests share (a worker
// takes seconds to stop, so each test has its own group instead): each
// group has one deployment on its own provider.
type senv struct {
	*env
	c       *bus.Client // JSON, so that values compare with encoding/json's
	mocks   map[string]*mock.Provider
	fakes   map[string]*scripted
	servers map[string]*openAIServer
}

func TestStructured(t *testing.T) {
	t.Parallel()
	s := &senv{mocks: map[string]*mock.Provider{}, fakes: map[string]*scripted{}, servers: map[string]*openAIServer{}}
	var groups []policy.Group
	add := func(name, model string, p llm.Provider) {
		groups = append(groups, policy.Group{Name: name, Deployments: []policy.Deployment{{Name: name + "-dep", Model: model, Provider: p}}})
	}
	for name, cfg := range map[string]mock.Config{
		"ok":      {},
		"reask":   {InvalidJSONFirst: 2},
		"invalid": {InvalidJSONFirst: 1000},
		"intake":  {},
		"partial": {ChunkDelay: 30 * time.Millisecond},
		"plain":   {},
	} {
		s.mocks[name] = mock.New(cfg)
		add(name, "mock-1", s.mocks[name])
	}
	s.fakes["fence"] = &scripted{answers: []answer{{text: "Here is the person:\n\n```json\n{\"name\": \"Ada\", \"age\": 36, \"tags\": [\"math\"]}\n```\n\nAnything else?"}}}
	s.fakes["tool"] = &scripted{answers: []answer{
		{calls: []llm.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city": 42}`}}},
		{calls: []llm.ToolCall{{ID: "call_2", Name: "get_weather", Arguments: `{"city": "Paris", "unit": "celsius"}`}}},
	}}
	for name, f := range s.fakes {
		add(name, "plain-model", f)
	}
	// The catalogue knows gpt-4o-mini as native; the local model is unknown.
	for name, model := range map[string]string{"openai-native": "gpt-4o-mini", "openai-plain": "my-local-llama"} {
		srv := newOpenAIServer(t, `{"city":"Paris","temp_c":21.5}`)
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		p, err := openai.New(openai.Options{BaseURL: srv.URL, APIKey: "sk-test", HTTPClient: &http.Client{Transport: tr}})
		require.NoError(t, err)
		s.servers[name] = srv
		add(name, model, p)
	}

	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	r, err := policy.NewRouter(groups)
	require.NoError(t, err)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	s.env = &env{t: t, srv: srv, nc: nc, js: js, client: c, router: r}
	s.c, err = bus.NewClient(nc, bus.WithEncoding(bus.JSON))
	require.NoError(t, err)
	names := make([]string, 0, len(groups))
	for _, g := range groups {
		names = append(names, g.Name)
	}
	s.startWorker(worker.Config{Groups: names})

	for _, tc := range []struct {
		name string
		run  func(*testing.T, *senv)
	}{
		{"valid first try", testValidFirstTry},
		{"invalid then valid", testInvalidThenValid},
		{"always invalid", testAlwaysInvalid},
		{"fenced JSON", testFencedJSON},
		{"bad schema rejected at intake", testBadSchemaRejectedAtIntake},
		{"partials grow to the result", testPartialsGrowToTheResult},
		{"tool call arguments re-asked", testToolCallArgumentsReasked},
		{"native schema reaches an OpenAI-compatible server", func(t *testing.T, s *senv) { testOpenAI(t, s, "openai-native", false) }},
		{"schema in the prompt for an unknown OpenAI-compatible model", func(t *testing.T, s *senv) { testOpenAI(t, s, "openai-plain", true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s)
		})
	}
}

// scripted is a provider that answers from a list, one answer per call (the
// last one repeats), and keeps the requests it got.
type scripted struct {
	mu      sync.Mutex
	answers []answer
	reqs    []llm.Request
}

type answer struct {
	text  string
	calls []llm.ToolCall
}

func (s *scripted) Stream(_ context.Context, req *llm.Request) (llm.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := *req
	r.Messages = append([]llm.Message(nil), req.Messages...)
	s.reqs = append(s.reqs, r)
	a := s.answers[min(len(s.reqs), len(s.answers))-1]
	var chunks []llm.Chunk
	for rest := a.text; rest != ""; {
		n := min(5, len(rest))
		chunks = append(chunks, llm.Chunk{Delta: rest[:n]})
		rest = rest[n:]
	}
	finish := llm.FinishStop
	for i, c := range a.calls {
		finish = llm.FinishToolCalls
		chunks = append(chunks,
			llm.Chunk{ToolCalls: []llm.ToolCallDelta{{Index: i, ID: c.ID, Name: c.Name}}},
			llm.Chunk{ToolCalls: []llm.ToolCallDelta{{Index: i, Arguments: c.Arguments}}})
	}
	chunks = append(chunks, llm.Chunk{FinishReason: finish, Usage: &llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}})
	return &sliceStream{chunks: chunks}, nil
}

func (s *scripted) requests() []llm.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]llm.Request(nil), s.reqs...)
}

type sliceStream struct {
	chunks []llm.Chunk
	cur    llm.Chunk
}

func (s *sliceStream) Next() bool {
	if len(s.chunks) == 0 {
		return false
	}
	s.cur, s.chunks = s.chunks[0], s.chunks[1:]
	return true
}
func (s *sliceStream) Current() llm.Chunk { return s.cur }
func (s *sliceStream) Err() error         { return nil }
func (s *sliceStream) Close() error       { return nil }

func ofType(evs []bus.Event, typ bus.EventType) []bus.Event {
	var out []bus.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// requireValid checks v against schema.
func requireValid(t *testing.T, schema string, v any) {
	t.Helper()
	s, err := structured.Compile(json.RawMessage(schema))
	require.NoError(t, err)
	require.Empty(t, s.Validate(v))
}

func testValidFirstTry(t *testing.T, s *senv) {
	m := s.mocks["ok"]
	ctx := ctxT(t, 10*time.Second)
	job, err := s.c.Publish(ctx, "ok", schemaReq(t, "s-ok", "describe someone", personSchema))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	streamed := text(evs) // what the mock answered
	require.Equal(t, decoded(t, streamed), res.JSON, "result.json is the mock's object")
	require.JSONEq(t, streamed, res.Text, "result.text is the raw JSON")
	requireValid(t, personSchema, res.JSON)
	require.Len(t, res.Attempts, 1)
	require.Empty(t, res.Attempts[0].ErrorCode)
	require.Empty(t, ofType(evs, bus.EventRestart))
	require.EqualValues(t, 1, m.Calls())
	// The mock reports no native structured output: the router put the
	// schema into the system prompt.
	sent := m.Requests()[0]
	require.Equal(t, llm.RoleSystem, sent.Messages[0].Role)
	require.Contains(t, sent.Messages[0].Content, `"required":["name","age"]`)
}

func testInvalidThenValid(t *testing.T, s *senv) {
	// Call 1 answers prose, call 2 JSON without the required "name", call 3
	// a valid object: the default of 2 re-asks is just enough.
	m := s.mocks["reask"]
	ctx := ctxT(t, 10*time.Second)
	job, err := s.c.Publish(ctx, "reask", schemaReq(t, "s-reask", "describe someone", personSchema))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	requireValid(t, personSchema, res.JSON)
	require.Equal(t, decoded(t, res.Text), res.JSON)
	require.Equal(t, res.Text, text(evs), "restart events discard the invalid answers")

	require.EqualValues(t, 3, m.Calls())
	require.Len(t, res.Attempts, 3)
	for i, code := range []string{"validation_failed", "validation_failed", ""} {
		require.Equal(t, code, res.Attempts[i].ErrorCode, "attempt %d", i)
	}
	require.Contains(t, res.Attempts[0].Message, "not valid JSON")
	require.Contains(t, res.Attempts[1].Message, "missing property 'name'")

	restarts := ofType(evs, bus.EventRestart)
	require.Len(t, restarts, 2)
	for _, r := range restarts {
		require.Equal(t, "validation_failed", r.Code)
	}
	require.Contains(t, restarts[1].Reason, "missing property 'name'")

	// The last re-ask carries the whole conversation: the prompt, the two
	// wrong answers and what was wrong with each.
	reqs := m.Requests()
	last := reqs[2].Messages
	require.Len(t, last, len(reqs[0].Messages)+4)
	require.Equal(t, llm.RoleAssistant, last[len(last)-2].Role)
	require.NotContains(t, last[len(last)-2].Content, `"name"`, "the model sees its own invalid answer")
	require.Equal(t, llm.RoleUser, last[len(last)-1].Role)
	require.Contains(t, last[len(last)-1].Content, "missing property 'name'")
	require.Contains(t, last[len(last)-3].Content, "did not contain valid JSON")

	// Usage is summed over the three calls, as the mock counts it: a
	// quarter of the prompt's characters plus 4 per message, and one token
	// per 8-byte chunk of the answer.
	answers := []string{last[len(last)-4].Content, last[len(last)-2].Content, res.Text}
	var prompt, completion int
	for i, r := range reqs {
		for _, m := range r.Messages {
			prompt += len(m.Text())/4 + 4
		}
		completion += (len(answers[i]) + 7) / 8
	}
	require.Equal(t, &bus.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}, res.Usage)

	// The partial events after the last restart end at the result.
	partials := ofType(evs[indexOf(evs, restarts[1])+1:], bus.EventPartial)
	require.NotEmpty(t, partials)
	require.Equal(t, res.JSON, partials[len(partials)-1].Partial)
}

func indexOf(evs []bus.Event, ev bus.Event) int {
	for i := range evs {
		if evs[i].Seq == ev.Seq {
			return i
		}
	}
	return -1
}

func testAlwaysInvalid(t *testing.T, s *senv) {
	m := s.mocks["invalid"]
	for i, enc := range []bus.Encoding{bus.Msgpack, bus.JSON} {
		// Not parallel: the mock alternates prose and schema violations per
		// call, so each job sees prose first, then a violation.
		t.Run(enc.String(), func(t *testing.T) {
			c, err := bus.NewClient(s.nc, bus.WithEncoding(enc))
			require.NoError(t, err)
			ctx := ctxT(t, 10*time.Second)
			req := schemaReq(t, "s-bad-"+enc.String(), "describe someone", personSchema)
			one := 1
			req.ValidationRetries = &one
			res, err := c.Submit(ctx, "invalid", req)
			require.ErrorIs(t, err, &bus.Error{Code: bus.CodeValidationFailed})
			require.Equal(t, bus.StatusError, res.Status)
			require.False(t, res.Error.Retryable)
			require.Contains(t, res.Error.Message, "2 tries")
			require.Contains(t, res.Error.Message, "missing property 'name'")
			require.Nil(t, res.JSON)
			require.EqualValues(t, 2*(i+1), m.Calls())
			require.Len(t, res.Attempts, 2)
			for _, a := range res.Attempts {
				require.Equal(t, "validation_failed", a.ErrorCode)
			}

			// Details, whatever the encoding: the last violations and raw text.
			b, err := json.Marshal(res.Error.Details)
			require.NoError(t, err)
			var details struct {
				Violations []struct{ Path, Message string }
				Raw        string
			}
			require.NoError(t, json.Unmarshal(b, &details))
			require.Equal(t, []struct{ Path, Message string }{{Path: "", Message: "missing property 'name'"}}, details.Violations)
			require.Equal(t, res.Text, details.Raw)
			obj, ok := decoded(t, details.Raw).(map[string]any)
			require.True(t, ok, "the raw text is the last answer's JSON")
			require.Contains(t, obj, "age")
		})
	}
}

func testFencedJSON(t *testing.T, s *senv) {
	p := s.fakes["fence"]
	ctx := ctxT(t, 10*time.Second)
	job, err := s.c.Publish(ctx, "fence", schemaReq(t, "s-fence", "describe Ada", personSchema))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	require.Equal(t, map[string]any{"name": "Ada", "age": 36.0, "tags": []any{"math"}}, res.JSON)
	require.Equal(t, `{"name": "Ada", "age": 36, "tags": ["math"]}`, res.Text, "the fence and the prose are cut off")
	require.Len(t, p.requests(), 1)
	partials := ofType(evs, bus.EventPartial)
	require.NotEmpty(t, partials)
	require.Equal(t, res.JSON, partials[len(partials)-1].Partial)
}

func testBadSchemaRejectedAtIntake(t *testing.T, s *senv) {
	tool := func(params string) []bus.Tool {
		return []bus.Tool{{Type: "function", Function: bus.FunctionSpec{Name: "lookup", Parameters: decoded(t, params)}}}
	}
	cases := []struct {
		name string
		edit func(r *bus.Request)
		want []string
	}{
		{"invalid keyword value", func(r *bus.Request) {
			r.ResponseFormat.JSONSchema.Schema = decoded(t, `{"type": "objekt"}`)
		}, []string{"response_format.json_schema.schema", "invalid schema"}},
		{"remote ref", func(r *bus.Request) {
			r.ResponseFormat.JSONSchema.Schema = decoded(t, `{"$ref": "https://example.com/person.json"}`)
		}, []string{"response_format.json_schema.schema", "unresolvable $ref"}},
		{"$ref cycle", func(r *bus.Request) {
			r.ResponseFormat.JSONSchema.Schema = decoded(t, `{"$ref": "#"}`)
		}, []string{"response_format.json_schema.schema", "$ref cycle"}},
		{"mutually recursive properties", func(r *bus.Request) {
			r.ResponseFormat.JSONSchema.Schema = decoded(t, `{"type":"object","properties":{"a":{"$ref":"#"},"b":{"$ref":"#"},"c":{"$ref":"#"},"d":{"$ref":"#"},"e":{"$ref":"#"},"f":{"$ref":"#"},"g":{"$ref":"#"},"h":{"$ref":"#"},"i":{"$ref":"#"},"j":{"$ref":"#"}}}`)
		}, []string{"response_format.json_schema.schema", "too large once $refs are expanded"}},
		{"broken tool parameters", func(r *bus.Request) {
			r.ResponseFormat = nil
			r.Tools = tool(`{"type": "object", "properties": {"q": {"type": 12}}}`)
		}, []string{"tools[0].function.parameters", "invalid schema"}},
		{"validation_retries out of range", func(r *bus.Request) {
			n := 11
			r.ValidationRetries = &n
		}, []string{"validation_retries", "11"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t, 10*time.Second)
			req := schemaReq(t, fmt.Sprintf("s-broken-%d", i), "x", personSchema)
			tc.edit(req)
			res, err := s.c.Submit(ctx, "intake", req)
			require.ErrorIs(t, err, &bus.Error{Code: bus.CodeInvalidRequest})
			for _, w := range tc.want {
				require.Contains(t, res.Error.Message, w)
			}
			require.False(t, res.Error.Retryable)
		})
	}
	require.Zero(t, s.mocks["intake"].Calls(), "a broken schema never reaches a provider")
}

// grows reports whether b extends a as a streamed JSON value may: every
// field of a is in b with a value that extends it (a string may only grow,
// an array only get longer), every scalar is unchanged.
func grows(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, x := range av {
			y, ok := bv[k]
			if !ok || !grows(x, y) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) < len(av) {
			return false
		}
		for i := range av {
			if !grows(av[i], bv[i]) {
				return false
			}
		}
		return true
	case string:
		bv, ok := b.(string)
		return ok && strings.HasPrefix(bv, av)
	}
	return reflect.DeepEqual(a, b)
}

func testPartialsGrowToTheResult(t *testing.T, s *senv) {
	const articleSchema = `{
		"type": "object",
		"properties": {
			"title": {"type": "string", "minLength": 40},
			"summary": {"type": "string", "minLength": 80},
			"year": {"type": "integer", "minimum": 1900, "maximum": 2100},
			"keywords": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
			"published": {"type": "boolean"}
		},
		"required": ["title", "summary", "year", "keywords", "published"]
	}`
	// About 30 chunks of 8 bytes, 30ms apart: several partials at 4 a second.
	c := s.c
	ctx := ctxT(t, 10*time.Second)
	start := time.Now()
	job, err := c.Publish(ctx, "partial", schemaReq(t, "s-partial", "an article", articleSchema))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	elapsed := time.Since(start)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	requireValid(t, articleSchema, res.JSON)

	partials := ofType(evs, bus.EventPartial)
	require.GreaterOrEqual(t, len(partials), 3, "a partial at the start, some while streaming, the last one flushed")
	for k := 1; k < len(partials); k++ {
		prev, next := partials[k-1].Partial, partials[k].Partial
		require.True(t, grows(prev, next), "partial %d %v does not extend partial %d %v", k, next, k-1, prev)
		require.NotEqual(t, prev, next, "a partial is sent only when the parse changed")
	}
	require.Equal(t, res.JSON, partials[len(partials)-1].Partial)
	chunks := ofType(evs, bus.EventChunk)
	require.Less(t, len(partials), len(chunks)/2, "throttled well below one per chunk")
	// At most 4 a second (plus the first and the final flush).
	require.LessOrEqual(t, len(partials), int(elapsed/(250*time.Millisecond))+2)

	// A plain text request gets no partials.
	job, err = c.Publish(ctx, "plain", userReq("s-plain", "hello"))
	require.NoError(t, err)
	evs, res = collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status)
	require.Empty(t, ofType(evs, bus.EventPartial))
	require.Nil(t, res.JSON)
}

func testToolCallArgumentsReasked(t *testing.T, s *senv) {
	p := s.fakes["tool"]
	ctx := ctxT(t, 10*time.Second)
	req := userReq("s-tool", "weather in Paris?")
	req.Tools = []bus.Tool{{Type: "function", Function: bus.FunctionSpec{Name: "get_weather", Parameters: decoded(t, `{
		"type": "object",
		"properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
		"required": ["city"]
	}`)}}}
	job, err := s.c.Publish(ctx, "tool", req)
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	require.Equal(t, "tool_calls", res.FinishReason)
	require.Len(t, res.ToolCalls, 1)
	require.Equal(t, "call_2", res.ToolCalls[0].ID)
	require.JSONEq(t, `{"city": "Paris", "unit": "celsius"}`, res.ToolCalls[0].Function.Arguments)
	require.Len(t, res.Attempts, 2)
	require.Equal(t, "validation_failed", res.Attempts[0].ErrorCode)
	require.Contains(t, res.Attempts[0].Message, "call_1")
	require.Contains(t, res.Attempts[0].Message, `"/city"`)
	require.Empty(t, res.Attempts[1].ErrorCode)
	require.Equal(t, 30, res.Usage.TotalTokens, "both tries counted")

	restarts := ofType(evs, bus.EventRestart)
	require.Len(t, restarts, 1)
	require.Equal(t, "validation_failed", restarts[0].Code)
	require.Contains(t, restarts[0].Reason, "call_1")

	// The re-ask answers the bad call with a tool message naming it and
	// the violations, after the assistant's own call.
	reqs := p.requests()
	require.Len(t, reqs, 2)
	msgs := reqs[1].Messages
	require.Len(t, msgs, 3)
	require.Equal(t, llm.RoleAssistant, msgs[1].Role)
	require.Equal(t, []llm.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city": 42}`}}, msgs[1].ToolCalls)
	require.Equal(t, llm.RoleTool, msgs[2].Role)
	require.Equal(t, "call_1", msgs[2].ToolCallID)
	require.Contains(t, msgs[2].Content, "get_weather")
	require.Contains(t, msgs[2].Content, `at "/city"`)
}

// openAIServer replays OpenAI's streamed chat completion for answer and
// keeps the request bodies it got.
type openAIServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newOpenAIServer(t *testing.T, answer string) *openAIServer {
	t.Helper()
	s := &openAIServer{}
	chunk := func(delta, finish string) string {
		fr := "null"
		if finish != "" {
			fr = `"` + finish + `"`
		}
		return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + fr + `}],"usage":null}`
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
		events := []string{chunk(`{"role":"assistant","content":"","refusal":null}`, "")}
		for rest := answer; rest != ""; {
			n := min(6, len(rest))
			piece, _ := json.Marshal(rest[:n])
			events = append(events, chunk(`{"content":`+string(piece)+`}`, ""))
			rest = rest[n:]
		}
		events = append(events, chunk(`{}`, "stop"),
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}`,
			"[DONE]")
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range events {
			_, _ = fmt.Fprintf(w, "data: %s\n\n", ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *openAIServer) received() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

// testOpenAI runs a json_schema job on a group whose deployment is the
// OpenAI provider talking to a local server that replays OpenAI's wire
// format, and checks what the server received.
func testOpenAI(t *testing.T, s *senv, group string, instruction bool) {
	const weatherSchema = `{"type":"object","properties":{"city":{"type":"string"},"temp_c":{"type":"number"}},"required":["city","temp_c"],"additionalProperties":false}`
	ctx := ctxT(t, 10*time.Second)
	req := schemaReq(t, "s-"+group, "weather in Paris?", weatherSchema)
	req.ResponseFormat.JSONSchema.Name = "weather"
	req.ResponseFormat.JSONSchema.Strict = true
	res, err := s.c.Submit(ctx, group, req)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"city": "Paris", "temp_c": 21.5}, res.JSON)
	requireValid(t, weatherSchema, res.JSON)
	require.Equal(t, &bus.Usage{PromptTokens: 40, CompletionTokens: 9, TotalTokens: 49}, res.Usage)

	bodies := s.servers[group].received()
	require.Len(t, bodies, 1)
	rf, err := json.Marshal(bodies[0]["response_format"])
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"json_schema","json_schema":{"name":"weather","strict":true,"schema":`+weatherSchema+`}}`, string(rf))
	msgs, ok := bodies[0]["messages"].([]any)
	require.True(t, ok)
	first := msgs[0].(map[string]any)
	if instruction {
		require.Len(t, msgs, 2)
		require.Equal(t, "system", first["role"])
		require.Contains(t, first["content"], "JSON Schema")
	} else {
		require.Len(t, msgs, 1, "native structured output: no schema in the prompt")
		require.Equal(t, "user", first["role"])
	}
}
