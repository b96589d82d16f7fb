package structured

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

const personSchema = `{
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1},
    "age": {"type": "integer", "minimum": 0},
    "email": {"type": "string", "format": "email"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "address": {"$ref": "#/$defs/address"}
  },
  "required": ["name", "age"],
  "additionalProperties": false,
  "$defs": {
    "address": {
      "type": "object",
      "properties": {"city": {"type": "string"}},
      "required": ["city"]
    }
  }
}`

func mustCompile(t *testing.T, schema string) *Schema {
	t.Helper()
	s, err := NewCompiler(Limits{}).Compile(json.RawMessage(schema))
	require.NoError(t, err)
	return s
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

func TestValidate(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, personSchema)
	tests := []struct {
		name  string
		value string
		want  []Violation // nil: valid
		paths []string    // checked instead of want when set
	}{
		{name: "valid", value: `{"name":"Ann","age":31,"tags":["a"],"address":{"city":"Oslo"}}`},
		{name: "missing required", value: `{"name":"Ann"}`, paths: []string{""}},
		{name: "wrong type nested", value: `{"name":"Ann","age":3,"tags":["a",7]}`, paths: []string{"/tags/1"}},
		{name: "ref target", value: `{"name":"Ann","age":3,"address":{}}`, paths: []string{"/address"}},
		{name: "not integer", value: `{"name":"Ann","age":3.5}`, paths: []string{"/age"}},
		{name: "minimum and minLength", value: `{"name":"","age":-1}`, paths: []string{"/age", "/name"}},
		{name: "format asserted", value: `{"name":"Ann","age":3,"email":"nope"}`, paths: []string{"/email"}},
		{name: "additional property", value: `{"name":"Ann","age":3,"x":1}`, paths: []string{""}},
		{name: "root type", value: `[1]`, paths: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := s.Validate(decode(t, tt.value))
			require.NotNil(t, got)
			if tt.paths == nil {
				require.Empty(t, got)
				return
			}
			var paths []string
			for _, v := range got {
				require.NotEmpty(t, v.Message)
				paths = append(paths, v.Path)
			}
			require.Equal(t, tt.paths, paths, "violations: %v", got)
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, personSchema)
	got := s.Validate(decode(t, `{"name":"Ann"}`))
	require.Len(t, got, 1)
	require.Contains(t, got[0].Message, "age")
	require.Equal(t, "at root: "+got[0].Message, got[0].String())

	got = s.Validate(decode(t, `{"name":"Ann","age":"x"}`))
	require.Len(t, got, 1)
	require.Equal(t, "/age", got[0].Path)
	require.Contains(t, got[0].Message, "integer")
}

func TestValidatePointerEscaping(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, `{"properties":{"a/b":{"properties":{"c~d":{"type":"string"}}}}}`)
	got := s.Validate(decode(t, `{"a/b":{"c~d":1}}`))
	require.Equal(t, []Violation{{Path: "/a~1b/c~0d", Message: got[0].Message}}, got)
}

func TestNilSchemaIsJSONObject(t *testing.T) {
	t.Parallel()
	var s *Schema
	require.Empty(t, s.Validate(decode(t, `{"a":1}`)))
	got := s.Validate(decode(t, `[1]`))
	require.Len(t, got, 1)
	require.Equal(t, "", got[0].Path)
	require.Contains(t, got[0].Message, "array")
}

func TestValidateText(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, personSchema)
	tests := []struct {
		name       string
		text       string
		wantRaw    string
		violations int
		wantErr    error // errors.Is target; nil: no error
		anyErr     bool
	}{
		{name: "plain", text: `{"name":"Ann","age":1}`, wantRaw: `{"name":"Ann","age":1}`},
		{name: "fenced with prose", text: "Sure!\n```json\n{\"name\":\"Ann\",\"age\":1}\n```\nHope it helps.", wantRaw: `{"name":"Ann","age":1}`},
		{name: "invalid", text: `Here: {"name":"Ann"} done`, wantRaw: `{"name":"Ann"}`, violations: 1},
		{name: "no json", text: "I cannot help with that.", wantErr: ErrNoJSON},
		{name: "broken json", text: "```json\n{\"name\":\"Ann\",}\n```", anyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, raw, vs, err := s.ValidateText(tt.text)
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
				return
			case tt.anyErr:
				require.Error(t, err)
				var se *json.SyntaxError
				require.ErrorAs(t, err, &se)
				require.Nil(t, vs)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantRaw, raw)
			require.Equal(t, decode(t, tt.wantRaw), v)
			require.Len(t, vs, tt.violations)
		})
	}
}

func TestCompileRejectsBrokenSchemas(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"type":"string"}`))
	}))
	t.Cleanup(srv.Close)

	deep := strings.Repeat(`{"items":`, 100) + `{}` + strings.Repeat(`}`, 100)
	var manyRefs strings.Builder
	manyRefs.WriteString(`{"$defs":{"a":{"type":"string"}},"anyOf":[`)
	for i := range 300 {
		if i > 0 {
			manyRefs.WriteByte(',')
		}
		manyRefs.WriteString(`{"$ref":"#/$defs/a"}`)
	}
	manyRefs.WriteString(`]}`)
	// Each layer references the one below twice: 2^30 nodes once inlined.
	var bomb strings.Builder
	bomb.WriteString(`{"$defs":{"l0":{"type":"string"}`)
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&bomb, `,"l%d":{"anyOf":[{"$ref":"#/$defs/l%d"},{"$ref":"#/$defs/l%d"}]}`, i, i-1, i-1)
	}
	bomb.WriteString(`},"$ref":"#/$defs/l30"}`)

	tests := []struct {
		name   string
		schema string
		reason string
	}{
		{name: "empty", schema: ``, reason: "empty"},
		{name: "not json", schema: `{"type":`, reason: "not valid JSON"},
		{name: "bad type keyword", schema: `{"type":"strin"}`, reason: "invalid schema"},
		{name: "type not a string", schema: `{"type":42}`, reason: "invalid schema"},
		{name: "bad regex", schema: `{"pattern":"("}`, reason: "invalid schema"},
		{name: "unknown local ref", schema: `{"$ref":"#/$defs/missing"}`, reason: "unresolvable $ref"},
		{name: "unknown anchor", schema: `{"$ref":"#nope"}`, reason: "unresolvable $ref"},
		{name: "relative file ref", schema: `{"$ref":"other.json"}`, reason: "unresolvable $ref"},
		{name: "file ref", schema: `{"$ref":"file:///etc/passwd"}`, reason: "unresolvable $ref"},
		{name: "remote ref", schema: `{"$ref":"` + srv.URL + `/s.json"}`, reason: "unresolvable $ref"},
		{name: "remote metaschema", schema: `{"$schema":"` + srv.URL + `/meta.json"}`, reason: "unresolvable $ref"},
		{name: "oversized", schema: `{"description":"` + strings.Repeat("x", 300<<10) + `"}`, reason: "too large"},
		{name: "too deep", schema: deep, reason: "too deeply nested"},
		{name: "too many refs", schema: manyRefs.String(), reason: "too many $refs"},
		{name: "ref bomb", schema: bomb.String(), reason: "too large once $refs are expanded"},
		{name: "ref to itself", schema: `{"$ref":"#"}`, reason: "$ref cycle"},
		{name: "defs referring to each other", schema: `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"properties":{"x":{"$ref":"#/$defs/a"}}}`, reason: "$ref cycle"},
		{name: "anyOf of itself", schema: `{"anyOf":[{"type":"null"},{"$ref":"#"}]}`, reason: "$ref cycle"},
		{name: "cycle through an anchor", schema: `{"$defs":{"a":{"$anchor":"a","not":{"$ref":"#a"}}},"$ref":"#a"}`, reason: "$ref cycle"},
		{name: "ten mutual refs", schema: tenMutualRefs, reason: "too large once $refs are expanded"},
		{name: "bomb through an anchor", schema: anchorBomb(), reason: "too large once $refs are expanded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(json.RawMessage(tt.schema))
			require.Error(t, err)
			var se *SchemaError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.reason, se.Reason, "error: %v", err)
			require.True(t, strings.HasPrefix(err.Error(), "structured: bad JSON schema: "+tt.reason), err.Error())
		})
	}
	// Checked after the parallel subtests above have run.
	t.Cleanup(func() { require.Zero(t, hits.Load(), "a remote $ref was fetched") })
}

// tenMutualRefs is ten definitions whose ten properties refer to each other:
// 540 bytes, counted once per definition when a recursive $ref counted once,
// and 10^8 objects for a generator that expands them 8 levels deep.
var tenMutualRefs = func() string {
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
}()

// anchorBomb is the layered ref bomb with $anchor refs, which a check of
// JSON-pointer refs alone does not expand.
func anchorBomb() string {
	var b strings.Builder
	b.WriteString(`{"$defs":{"l0":{"$anchor":"l0","type":"string"}`)
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, `,"l%d":{"$anchor":"l%d","anyOf":[{"$ref":"#l%d"},{"$ref":"#l%d"}]}`, i, i, i-1, i-1)
	}
	b.WriteString(`},"$ref":"#l30"}`)
	return b.String()
}

func TestCompileAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, schema, valid, invalid string
	}{
		{name: "draft-07 by $schema", schema: `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","required":["a"]}`, valid: `{"a":1}`, invalid: `{}`},
		{name: "recursive ref", schema: `{"$defs":{"n":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["kids"]}},"$ref":"#/$defs/n"}`, valid: `{"kids":[{"kids":[]}]}`, invalid: `{"kids":[{}]}`},
		{name: "anchor", schema: `{"$defs":{"s":{"$anchor":"str","type":"string"}},"properties":{"a":{"$ref":"#str"}}}`, valid: `{"a":"x"}`, invalid: `{"a":1}`},
		{name: "boolean schema", schema: `true`, valid: `{"a":1}`},
		{name: "recursive JSON value", schema: `{"$defs":{"v":{"anyOf":[{"type":"string"},{"type":"number"},{"type":"array","items":{"$ref":"#/$defs/v"}},{"type":"object","additionalProperties":{"$ref":"#/$defs/v"}}]}},"$ref":"#/$defs/v"}`, valid: `{"a":[1,"b",{"c":[]}]}`, invalid: `{"a":[true]}`},
		{name: "recursive root (OpenAI's UI example)", schema: `{"type":"object","properties":{"type":{"type":"string","enum":["div","button","header","section","field","form"]},"label":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}},"attributes":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"},"value":{"type":"string"}},"required":["name","value"],"additionalProperties":false}}},"required":["type","label","children","attributes"],"additionalProperties":false}`, valid: `{"type":"div","label":"x","children":[{"type":"button","label":"y","children":[],"attributes":[]}],"attributes":[]}`, invalid: `{"type":"div","label":"x","children":[{}],"attributes":[]}`},
		{name: "three mutually recursive types", schema: `{"$defs":{"e":{"type":"object","properties":{"t":{"$ref":"#/$defs/t"},"rest":{"type":"array","items":{"$ref":"#/$defs/t"}}}},"t":{"type":"object","properties":{"f":{"$ref":"#/$defs/f"},"rest":{"type":"array","items":{"$ref":"#/$defs/f"}}}},"f":{"anyOf":[{"type":"number"},{"$ref":"#/$defs/e"}]}},"$ref":"#/$defs/e"}`, valid: `{"t":{"f":1,"rest":[{"t":{"f":2}}]}}`, invalid: `{"t":{"f":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustCompile(t, tt.schema)
			require.Empty(t, s.Validate(decode(t, tt.valid)))
			if tt.invalid != "" {
				require.NotEmpty(t, s.Validate(decode(t, tt.invalid)))
			}
		})
	}
}

func TestCompileCache(t *testing.T) {
	t.Parallel()
	c := NewCompiler(Limits{CacheSize: 2})
	a1, err := c.Compile(json.RawMessage(`{"type":"string"}`))
	require.NoError(t, err)
	a2, err := c.Compile(json.RawMessage(`{"type":"string"}`))
	require.NoError(t, err)
	require.Same(t, a1, a2, "identical schema bytes must hit the cache")

	_, err1 := c.Compile(json.RawMessage(`{"type":"nope"}`))
	_, err2 := c.Compile(json.RawMessage(`{"type":"nope"}`))
	require.Error(t, err1)
	require.Same(t, err1, err2, "compile errors are cached too")
	require.Equal(t, 2, c.cacheLen())

	_, err = c.Compile(json.RawMessage(`{"type":"number"}`))
	require.NoError(t, err)
	require.Equal(t, 2, c.cacheLen(), "the cache is bounded")
	a3, err := c.Compile(json.RawMessage(`{"type":"string"}`))
	require.NoError(t, err)
	require.NotSame(t, a1, a3, "the least recently used entry was evicted")

	off := NewCompiler(Limits{CacheSize: -1})
	b1, _ := off.Compile(json.RawMessage(`{"type":"string"}`))
	b2, _ := off.Compile(json.RawMessage(`{"type":"string"}`))
	require.NotSame(t, b1, b2)
	require.Zero(t, off.cacheLen())
}

func TestCompileConcurrent(t *testing.T) {
	t.Parallel()
	c := NewCompiler(Limits{CacheSize: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			schema := fmt.Sprintf(`{"type":"object","required":["k%d"]}`, i%8)
			s, err := c.Compile(json.RawMessage(schema))
			if err != nil {
				errs <- err
				return
			}
			if len(s.Validate(map[string]any{fmt.Sprintf("k%d", i%8): 1.0})) != 0 {
				errs <- errors.New("valid value rejected")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.LessOrEqual(t, c.cacheLen(), 4)
}

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	require.Equal(t, Limits{MaxBytes: 256 << 10, MaxDepth: 64, MaxRefs: 256, MaxExpandedNodes: 100_000, MaxRecursion: 4, CacheSize: 256}, DefaultLimits())
}
