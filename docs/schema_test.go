package docs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

// schemas compiles the three JSON Schemas of the wire contract.
func schemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	out := map[string]*jsonschema.Schema{}
	for _, name := range []string{"request", "event", "result"} {
		path := filepath.Join("schema", name+".schema.json")
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustRead(t, path)))
		require.NoError(t, err, path)
		require.NoError(t, c.AddResource(path, doc))
		s, err := c.Compile(path)
		require.NoError(t, err, path)
		out[name] = s
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// schemaDoc is a schema file as plain JSON, for walking its properties.
func schemaDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(mustRead(t, filepath.Join("schema", name+".schema.json")), &m))
	return m
}

// at follows a JSON pointer ("#/$defs/part/properties/image_url") in doc.
func at(t *testing.T, doc map[string]any, ptr string) map[string]any {
	t.Helper()
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "#"), "/")[1:] {
		next, ok := cur[tok].(map[string]any)
		require.True(t, ok, "%s: no %q", ptr, tok)
		cur = next
	}
	if ref, ok := cur["$ref"].(string); ok {
		return at(t, doc, ref)
	}
	return cur
}

// wireTypes pairs each struct of the wire contract with its place in a
// schema. TestSchemasListTheWireStructsFields checks that the list is
// complete: a new struct reachable from Request, Event or Result fails it.
var wireTypes = []struct {
	schema, ptr string
	typ         reflect.Type
	produced    bool // written by the worker: its non-omitempty fields are always there
}{
	{"request", "#", reflect.TypeFor[bus.Request](), false},
	{"request", "#/$defs/message", reflect.TypeFor[bus.Message](), false},
	{"request", "#/$defs/part", reflect.TypeFor[bus.Part](), false},
	{"request", "#/$defs/part/properties/image_url", reflect.TypeFor[bus.ImageURL](), false},
	{"request", "#/properties/response_format", reflect.TypeFor[bus.ResponseFormat](), false},
	{"request", "#/properties/response_format/properties/json_schema", reflect.TypeFor[bus.JSONSchema](), false},
	{"request", "#/$defs/tool", reflect.TypeFor[bus.Tool](), false},
	{"request", "#/$defs/tool/properties/function", reflect.TypeFor[bus.FunctionSpec](), false},
	{"request", "#/$defs/toolCall", reflect.TypeFor[bus.ToolCall](), false},
	{"request", "#/$defs/toolCall/properties/function", reflect.TypeFor[bus.FunctionCall](), false},
	{"event", "#", reflect.TypeFor[bus.Event](), true},
	{"event", "#/properties/tool_call", reflect.TypeFor[bus.ToolCallDelta](), true},
	{"result", "#", reflect.TypeFor[bus.Result](), true},
	{"result", "#/properties/tool_calls/items", reflect.TypeFor[bus.ToolCall](), true},
	{"result", "#/properties/tool_calls/items/properties/function", reflect.TypeFor[bus.FunctionCall](), true},
	{"result", "#/properties/usage", reflect.TypeFor[bus.Usage](), true},
	{"result", "#/properties/attempts/items", reflect.TypeFor[bus.Attempt](), true},
	{"result", "#/properties/timings", reflect.TypeFor[bus.Timings](), true},
	{"result", "#/properties/error", reflect.TypeFor[bus.Error](), true},
}

// jsonFields returns a struct's JSON names and whether each is omitempty.
func jsonFields(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = strings.Contains(opts, "omitempty")
	}
	return out
}

// TestSchemasListTheWireStructsFields: a field added to a wire struct
// without the schema (or a property left in the schema after its field
// went) fails here, and so does a struct the list above does not know.
func TestSchemasListTheWireStructsFields(t *testing.T) {
	t.Parallel()
	docs := map[string]map[string]any{}
	known := map[reflect.Type]bool{}
	for _, w := range wireTypes {
		if docs[w.schema] == nil {
			docs[w.schema] = schemaDoc(t, w.schema)
		}
		known[w.typ] = true
		node := at(t, docs[w.schema], w.ptr)
		props, _ := node["properties"].(map[string]any)
		fields := jsonFields(w.typ)
		require.ElementsMatch(t, slices.Sorted(mapKeys(fields)), slices.Sorted(mapKeys(props)),
			"%s %s: the schema's properties are not %s's JSON fields", w.schema, w.ptr, w.typ)
		if !w.produced {
			continue
		}
		var required []string
		for _, r := range node["required"].([]any) {
			required = append(required, r.(string))
		}
		var always []string
		for name, omit := range fields {
			if !omit {
				always = append(always, name)
			}
		}
		require.ElementsMatch(t, always, required, "%s %s: required must be %s's fields without omitempty", w.schema, w.ptr, w.typ)
	}
	// Every struct reachable from the three messages is listed. The unions
	// (Content, Strings, ToolChoice) encode themselves; Content's parts are
	// Part, listed above.
	unions := map[reflect.Type]bool{reflect.TypeFor[bus.Content](): true, reflect.TypeFor[bus.ToolChoice](): true}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || unions[typ] {
			return
		}
		seen[typ] = true
		require.True(t, known[typ], "%s is on the wire but in no schema: add it to the schema and to wireTypes", typ)
		for i := range typ.NumField() {
			walk(typ.Field(i).Type)
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[bus.Request](), reflect.TypeFor[bus.Event](), reflect.TypeFor[bus.Result]()} {
		walk(typ)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestSchemasCanFail: the schemas refuse what the contract does not allow,
// so a passing validation means something.
func TestSchemasCanFail(t *testing.T) {
	t.Parallel()
	s := schemas(t)
	for _, tc := range []struct{ schema, doc string }{
		{"request", `{"messages": "hi"}`},
		{"request", `{"messages": [{"role": "user", "content": 42}]}`},
		{"request", `{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}`},
		{"event", `{"id": "j", "type": "chunk", "seq": 1, "attempt": 1}`},
		{"event", `{"id": "j", "type": "shout", "seq": 1, "attempt": 1}`},
		{"event", `{"id": "j", "type": "start", "seq": 1, "attempt": 1, "deployment": "d", "extra": 1}`},
		{"result", `{"id": "j", "status": "maybe", "timings": {"queued_ms": 0, "ttft_ms": 0, "total_ms": 0}}`},
		{"result", `{"id": "j", "status": "error", "timings": {"queued_ms": 0, "ttft_ms": 0, "total_ms": 0}}`},
		{"result", `{"id": "j", "status": "error", "timings": {"queued_ms": 0, "ttft_ms": 0, "total_ms": 0}, "error": {"code": "oops", "message": "", "retryable": false}}`},
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.doc))
		require.NoError(t, err)
		require.Error(t, s[tc.schema].Validate(v), fmt.Sprintf("%s %s", tc.schema, tc.doc))
	}
}
