package mock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

// result is a whole drained stream.
type result struct {
	text   string
	tools  map[int]*llm.ToolCall
	finish llm.FinishReason
	usage  *llm.Usage
	chunks int
	err    error
}

func run(t *testing.T, ctx context.Context, p *Provider, req *llm.Request) result {
	t.Helper()
	s, err := p.Stream(ctx, req)
	if err != nil {
		return result{err: err}
	}
	defer s.Close()
	r := result{tools: map[int]*llm.ToolCall{}}
	var b strings.Builder
	args := map[int]*strings.Builder{} // by tool call index
	for s.Next() {
		c := s.Current()
		r.chunks++
		b.WriteString(c.Delta)
		for _, d := range c.ToolCalls {
			tc := r.tools[d.Index]
			if tc == nil {
				require.NotEmpty(t, d.ID, "first fragment carries the id")
				require.NotEmpty(t, d.Name, "first fragment carries the name")
				tc = &llm.ToolCall{ID: d.ID, Name: d.Name}
				r.tools[d.Index] = tc
				args[d.Index] = &strings.Builder{}
			}
			args[d.Index].WriteString(d.Arguments)
		}
		if c.FinishReason != "" {
			r.finish, r.usage = c.FinishReason, c.Usage
		}
	}
	for i, a := range args {
		r.tools[i].Arguments = a.String()
	}
	r.text, r.err = b.String(), s.Err()
	return r
}

func userReq(text string) *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

func TestDeterministicText(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := run(t, ctx, New(Config{Seed: 7}), userReq("hello"))
	b := run(t, ctx, New(Config{Seed: 7}), userReq("hello"))
	c := run(t, ctx, New(Config{Seed: 7}), userReq("goodbye"))
	d := run(t, ctx, New(Config{Seed: 8}), userReq("hello"))
	require.NoError(t, a.err)
	require.Equal(t, a.text, b.text)
	require.NotEqual(t, a.text, c.text)
	require.NotEqual(t, a.text, d.text)
	require.Len(t, strings.Fields(a.text), 20)
	require.Equal(t, llm.FinishStop, a.finish)
	require.NotNil(t, a.usage)
	require.Equal(t, 20, a.usage.CompletionTokens)
	require.Equal(t, len("hello")/4+4, a.usage.PromptTokens)
	require.Equal(t, a.usage.PromptTokens+20, a.usage.TotalTokens)
}

func TestFixedTextAndMaxTokens(t *testing.T) {
	t.Parallel()
	p := New(Config{Text: "one two three four five"})
	r := run(t, t.Context(), p, userReq("x"))
	require.NoError(t, r.err)
	require.Equal(t, "one two three four five", r.text)
	require.Equal(t, 6, r.chunks, "five words and the end marker")

	req := userReq("x")
	req.MaxTokens = 2
	r = run(t, t.Context(), p, req)
	require.Equal(t, "one two ", r.text)
	require.Equal(t, llm.FinishLength, r.finish)
	require.Equal(t, 2, r.usage.CompletionTokens)
	require.EqualValues(t, 2, p.Calls())
	require.EqualValues(t, 2, p.CallsOK())
	require.Len(t, p.Requests(), 2)
}

func TestContinuationPrefix(t *testing.T) {
	t.Parallel()
	p := New(Config{Seed: 3, Tokens: 10})
	full := run(t, t.Context(), p, userReq("q"))
	ws := strings.SplitAfter(full.text, " ")
	prefix := strings.Join(ws[:4], "")
	req := userReq("q")
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, Content: prefix})
	rest := run(t, t.Context(), p, req)
	require.NoError(t, rest.err)
	require.Equal(t, full.text, prefix+rest.text)
}

func TestDelays(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Config{Tokens: 5, TTFT: 30 * time.Millisecond, ChunkDelay: 10 * time.Millisecond})
		start := time.Now()
		s, err := p.Stream(t.Context(), userReq("x"))
		require.NoError(t, err)
		require.True(t, s.Next())
		ttft := time.Since(start)
		for s.Next() {
		}
		total := time.Since(start)
		require.NoError(t, s.Err())
		require.GreaterOrEqual(t, ttft, 30*time.Millisecond)
		require.GreaterOrEqual(t, total, 70*time.Millisecond) // 30 + 4*10
		require.Less(t, total, 2*time.Second)
	})
}

func TestCancellationWithinOneChunk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mk   func() (context.Context, context.CancelFunc)
		kind llm.Kind
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, llm.KindCancelled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Hour)
		}, llm.KindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := tt.mk()
				defer cancel()
				if tt.kind == llm.KindTimeout {
					var c2 context.CancelFunc
					ctx, c2 = context.WithTimeout(ctx, 120*time.Millisecond)
					defer c2()
				}
				p := New(Config{Tokens: 1000, ChunkDelay: 50 * time.Millisecond})
				s, err := p.Stream(ctx, userReq("x"))
				require.NoError(t, err)
				require.True(t, s.Next())
				if tt.kind == llm.KindCancelled {
					go func() { time.Sleep(60 * time.Millisecond); cancel() }()
				}
				start := time.Now()
				n := 0
				for s.Next() {
					n++
				}
				require.Less(t, time.Since(start), 400*time.Millisecond)
				require.Less(t, n, 5)
				require.Equal(t, tt.kind, llm.KindOf(s.Err()))
				require.True(t, llm.IsMidStream(s.Err()))
				require.NoError(t, s.Close())
				require.NoError(t, s.Close())
			})
		})
	}
}

func TestScriptOrder(t *testing.T) {
	t.Parallel()
	p := New(Config{Text: "a b c d e", Script: []Step{
		{Error: "rate_limited", RetryAfter: time.Second},
		{Error: "unavailable"},
		{FailAfter: 2},
		{Hang: true},
		{OK: true},
	}, ErrorRate: map[string]float64{"auth": 1}})

	r := run(t, t.Context(), p, userReq("x"))
	require.ErrorIs(t, r.err, llm.ErrRateLimited)
	require.Equal(t, time.Second, llm.RetryAfterOf(r.err))

	r = run(t, t.Context(), p, userReq("x"))
	require.ErrorIs(t, r.err, llm.ErrUnavailable)

	r = run(t, t.Context(), p, userReq("x"))
	require.ErrorIs(t, r.err, llm.ErrUnavailable)
	require.True(t, llm.IsMidStream(r.err))
	require.Equal(t, "a b ", r.text)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	r = run(t, ctx, p, userReq("x"))
	require.Equal(t, llm.KindTimeout, llm.KindOf(r.err))

	r = run(t, t.Context(), p, userReq("x"))
	require.NoError(t, r.err)
	require.Equal(t, "a b c d e", r.text)

	// The script is exhausted: the random faults apply.
	r = run(t, t.Context(), p, userReq("x"))
	require.ErrorIs(t, r.err, llm.ErrAuth)
	require.EqualValues(t, 6, p.Calls())
	require.EqualValues(t, 1, p.CallsOK())
}

func TestRandomFaultsReproducible(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 42, Tokens: 3, RetryAfter: 5 * time.Millisecond,
		ErrorRate: map[string]float64{"unavailable": 0.3, "rate_limited": 0.2}, MidStreamRate: 0.1, FailAfterChunks: 1}
	outcome := func() []string {
		p := New(cfg)
		var out []string
		for range 1000 {
			r := run(t, t.Context(), p, userReq("x"))
			switch {
			case r.err == nil:
				out = append(out, "ok")
			case llm.IsMidStream(r.err):
				out = append(out, "mid")
			default:
				if llm.KindOf(r.err) == llm.KindRateLimited {
					require.Equal(t, 5*time.Millisecond, llm.RetryAfterOf(r.err))
				}
				out = append(out, llm.KindOf(r.err).String())
			}
		}
		return out
	}
	a, b := outcome(), outcome()
	require.Equal(t, a, b)
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	require.InDelta(t, 300, count["unavailable"], 60)
	require.InDelta(t, 200, count["rate_limited"], 50)
	require.InDelta(t, 50, count["mid"], 30) // 10% of the remaining 50%
	require.InDelta(t, 450, count["ok"], 70)
}

func TestEveryFaultKind(t *testing.T) {
	t.Parallel()
	for _, k := range faultKinds {
		t.Run(k.String(), func(t *testing.T) {
			t.Parallel()
			p := New(Config{ErrorRate: map[string]float64{k.String(): 1}})
			r := run(t, t.Context(), p, userReq("x"))
			require.Equal(t, k, llm.KindOf(r.err))
			require.False(t, llm.IsMidStream(r.err))
		})
	}
}

func TestHangRate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Config{HangRate: 1})
		start := time.Now() // before the timer starts, or a slow machine measures less than 40ms
		ctx, cancel := context.WithTimeout(t.Context(), 40*time.Millisecond)
		defer cancel()
		r := run(t, ctx, p, userReq("x"))
		require.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
		require.Equal(t, llm.KindTimeout, llm.KindOf(r.err))
	})
}

func TestConfigYAML(t *testing.T) {
	t.Parallel()
	src := `
text: hi there
ttft: 50ms
chunk_delay: 5ms
error_rate: {rate_limited: 0.2, unavailable: 0.1}
retry_after: 1s
script:
  - {error: rate_limited, retry_after: 2s}
  - {hang: true}
  - {fail_after: 3}
  - {ok: true}
invalid_json_first: 2
parallel_tool_calls: 2
`
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(src), &c))
	require.NoError(t, c.Validate())
	require.Equal(t, 50*time.Millisecond, c.TTFT)
	require.Equal(t, 5*time.Millisecond, c.ChunkDelay)
	require.Equal(t, 0.2, c.ErrorRate["rate_limited"])
	require.Equal(t, []Step{{Error: "rate_limited", RetryAfter: 2 * time.Second}, {Hang: true}, {FailAfter: 3}, {OK: true}}, c.Script)

	require.ErrorContains(t, Config{ErrorRate: map[string]float64{"boom": 1}}.Validate(), "boom")
	require.ErrorContains(t, Config{HangRate: 2}.Validate(), "hang_rate")
}

const testSchema = `{
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 3, "maxLength": 20},
    "age": {"type": "integer", "minimum": 18, "maximum": 99},
    "score": {"type": "number", "minimum": 0.5, "maximum": 1},
    "active": {"type": "boolean"},
    "role": {"enum": ["admin", "user"]},
    "version": {"const": 2},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
    "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}}, "required": ["city", "zip"], "additionalProperties": false},
    "owner": {"$ref": "#/$defs/person"}
  },
  "required": ["name", "age", "score", "active", "role", "version", "tags", "address", "owner"],
  "additionalProperties": false,
  "$defs": {"person": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"]}}
}`

func compile(t *testing.T, src string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("mem://schema.json", doc))
	s, err := c.Compile("mem://schema.json")
	require.NoError(t, err)
	return s
}

func validate(sch *jsonschema.Schema, text string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

func schemaReq(prompt string) *llm.Request {
	r := userReq(prompt)
	r.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: "person", Schema: json.RawMessage(testSchema)}
	return r
}

func TestSchemaGenerationValid(t *testing.T) {
	t.Parallel()
	sch := compile(t, testSchema)
	p := New(Config{Seed: 1})
	for i := range 50 {
		r := run(t, t.Context(), p, schemaReq(strings.Repeat("p", i)))
		require.NoError(t, r.err)
		require.Greater(t, r.chunks, 10, "streamed in small chunks")
		require.NoError(t, validate(sch, r.text), r.text)
	}
}

func TestInvalidJSONFirst(t *testing.T) {
	t.Parallel()
	sch := compile(t, testSchema)
	p := New(Config{InvalidJSONFirst: 2})
	r := run(t, t.Context(), p, schemaReq("x"))
	require.NoError(t, r.err)
	require.False(t, json.Valid([]byte(r.text)), r.text)

	r = run(t, t.Context(), p, schemaReq("x"))
	require.True(t, json.Valid([]byte(r.text)), r.text)
	var verr *jsonschema.ValidationError
	require.ErrorAs(t, validate(sch, r.text), &verr)

	r = run(t, t.Context(), p, schemaReq("x"))
	require.NoError(t, validate(sch, r.text))

	obj := userReq("x")
	obj.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONObject}
	r = run(t, t.Context(), p, obj)
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.text), &m))
	require.NotEmpty(t, m["answer"])
}

func TestToolCalls(t *testing.T) {
	t.Parallel()
	params := `{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city","unit"]}`
	sch := compile(t, params)
	tools := []llm.Tool{{Name: "weather", Parameters: json.RawMessage(params)}, {Name: "time", Parameters: json.RawMessage(`{"type":"object","properties":{"tz":{"type":"string"}}}`)}}
	tests := []struct {
		name   string
		cfg    Config
		choice *llm.ToolChoice
		calls  int
		names  []string
	}{
		{"required", Config{}, &llm.ToolChoice{Mode: llm.ToolChoiceRequired}, 1, []string{"weather"}},
		{"function", Config{}, &llm.ToolChoice{Mode: llm.ToolChoiceFunction, Name: "time"}, 1, []string{"time"}},
		{"auto off", Config{}, nil, 0, nil},
		{"auto on", Config{ToolCalls: true}, &llm.ToolChoice{Mode: llm.ToolChoiceAuto}, 1, []string{"weather"}},
		{"none", Config{ToolCalls: true}, &llm.ToolChoice{Mode: llm.ToolChoiceNone}, 0, nil},
		{"parallel", Config{ParallelToolCalls: 3}, &llm.ToolChoice{Mode: llm.ToolChoiceRequired}, 3, []string{"weather", "time", "weather"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := userReq("weather?")
			req.Tools, req.ToolChoice = tools, tt.choice
			r := run(t, t.Context(), New(tt.cfg), req)
			require.NoError(t, r.err)
			require.Len(t, r.tools, tt.calls)
			if tt.calls == 0 {
				require.Equal(t, llm.FinishStop, r.finish)
				require.NotEmpty(t, r.text)
				return
			}
			require.Equal(t, llm.FinishToolCalls, r.finish)
			require.Empty(t, r.text)
			for i, name := range tt.names {
				tc := r.tools[i]
				require.Equal(t, name, tc.Name)
				require.True(t, json.Valid([]byte(tc.Arguments)), tc.Arguments)
				if name == "weather" {
					require.NoError(t, validate(sch, tc.Arguments))
				}
			}
		})
	}
}

func TestCancelledBeforeCall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := New(Config{}).Stream(ctx, userReq("x"))
	require.True(t, errors.Is(err, llm.ErrCancelled))
}

// hostileSchemas are schemas a requester may send that once crashed the
// worker (a panic, a stack overflow), took gigabytes or pinned a core in the
// generator. Each must be answered quickly: a valid value, or a bad_request.
var hostileSchemas = map[string]struct {
	schema string
	valid  bool // a value can be generated; else the call fails bad_request
}{
	"integer over int64":     {`{"type":"object","properties":{"n":{"type":"integer","minimum":-9e18,"maximum":9e18}},"required":["n"]}`, true},
	"integer beyond 2^53":    {`{"type":"integer","minimum":1e20}`, true},
	"number over float64":    {`{"type":"number","minimum":-1e308,"maximum":1e308}`, true},
	"minItems near 2^62":     {`{"type":"array","minItems":4611686018427387904}`, false},
	"self-containing array":  {`{"$defs":{"a":{"type":"array","minItems":1,"items":{"$ref":"#/$defs/a"}}},"$ref":"#/$defs/a"}`, false},
	"ten mutual refs":        {tenMutualRefs(), true},
	"ten required self refs": {`{"type":"object","properties":{"a":{"$ref":"#"},"b":{"$ref":"#"},"c":{"$ref":"#"},"d":{"$ref":"#"},"e":{"$ref":"#"},"f":{"$ref":"#"},"g":{"$ref":"#"},"h":{"$ref":"#"},"i":{"$ref":"#"},"j":{"$ref":"#"}},"required":["a","b","c","d","e","f","g","h","i","j"]}`, false},
	"minLength a million":    {`{"type":"string","minLength":1000000}`, true},
	"minLength over budget":  {`{"type":"string","minLength":100000000}`, false},
	"many long strings":      {`{"type":"array","minItems":1000,"items":{"type":"string","minLength":100000}}`, false},
	"anyOf of itself":        {`{"anyOf":[{"$ref":"#"},{"$ref":"#"}]}`, false},
	"anyOf ends in null":     {`{"anyOf":[{"$ref":"#"},{"type":"null"}]}`, true},
	"forty thousand strings": {`{"type":"object","properties":{"items":{"type":"array","minItems":40000,"items":{"type":"string","minLength":12}}},"required":["items"]}`, true},
}

// tenMutualRefs is ten definitions whose properties all refer to each
// other (540 bytes; every value generated to depth 8 is 10^8 objects).
func tenMutualRefs() string {
	var b strings.Builder
	b.WriteString(`{"$defs":{`)
	for i := range 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"d%d":{"type":"object","properties":{`, i)
		for j := range 10 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"p%d":{"$ref":"#/$defs/d%d"}`, j, j)
		}
		b.WriteString(`}}`)
	}
	b.WriteString(`},"$ref":"#/$defs/d0"}`)
	return b.String()
}

func TestHostileSchemasAreAnsweredQuickly(t *testing.T) {
	t.Parallel()
	for name, tt := range hostileSchemas {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, kind := range []string{"response_format", "tool"} {
				req := userReq("x")
				if kind == "tool" {
					req.Tools = []llm.Tool{{Name: "f", Parameters: json.RawMessage(tt.schema)}}
					req.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceRequired}
				} else {
					req.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: json.RawMessage(tt.schema)}
				}
				// The generator is bounded by work, not by this deadline: a
				// generous one only turns a hang into a failure.
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				r := run(t, ctx, New(Config{}), req)
				cancel()
				if !tt.valid {
					require.ErrorIs(t, r.err, llm.ErrBadRequest, kind)
					continue
				}
				require.NoError(t, r.err, kind)
				text := r.text
				if kind == "tool" {
					require.Len(t, r.tools, 1)
					text = r.tools[0].Arguments
				}
				require.LessOrEqual(t, len(text), MaxAnswerBytes, kind)
				require.NoError(t, validate(compile(t, tt.schema), text), "%s: %.200s", kind, text)
			}
		})
	}
}

func TestGenerationHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	rng := rand.New(rand.NewPCG(1, 2))
	s := schemaOf(json.RawMessage(`{"type":"array","minItems":100000,"items":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}`))
	cancel()
	_, _, err := generate(ctx, s, rng)
	require.ErrorIs(t, err, context.Canceled)
}

// FuzzGenerate feeds the generator arbitrary schemas: it must never panic,
// never answer more than MaxAnswerBytes, and fail only with bad_request.
func FuzzGenerate(f *testing.F) {
	f.Add(testSchema)
	for _, tt := range hostileSchemas {
		f.Add(tt.schema)
	}
	f.Add(`{"type":"array","items":{"type":"array","items":{"type":"array","minItems":100,"items":{"type":"string","minLength":100}},"minItems":100},"minItems":100}`)
	f.Add(`{"oneOf":[{"type":"integer","minimum":5,"maximum":1}]}`)
	f.Add(`{"type":["null","string"],"maxLength":-3,"minLength":-5}`)
	f.Fuzz(func(t *testing.T, schema string) {
		req := userReq("x")
		req.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: json.RawMessage(schema)}
		r := run(t, t.Context(), New(Config{}), req)
		if r.err != nil {
			require.ErrorIs(t, r.err, llm.ErrBadRequest)
			return
		}
		require.LessOrEqual(t, len(r.text), MaxAnswerBytes)
		require.True(t, json.Valid([]byte(r.text)), "%.200s", r.text)
	})
}
