package structured

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestParsePartial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want string // JSON of the expected value; "" for ok == false
	}{
		{name: "empty", text: ""},
		{name: "prose only", text: "Let me think about"},
		{name: "bare scalar", text: `"abc"`},
		{name: "open object", text: `{`, want: `{}`},
		{name: "partial key dropped", text: `{"na`, want: `{}`},
		{name: "key without colon dropped", text: `{"name"`, want: `{}`},
		{name: "dangling key dropped", text: `{"name": `, want: `{}`},
		{name: "open string closed", text: `{"name": "Jo`, want: `{"name":"Jo"}`},
		{name: "half literal dropped", text: `{"a": 1, "ok": tru`, want: `{"a":1}`},
		{name: "whole literal kept", text: `{"ok": true`, want: `{"ok":true}`},
		{name: "null kept", text: `{"x": null`, want: `{"x":null}`},
		{name: "growing number dropped", text: `{"n": 12`, want: `{}`},
		{name: "finished number kept", text: `{"n": 12,`, want: `{"n":12}`},
		{name: "number before space kept", text: `{"n": -1.5e3 `, want: `{"n":-1500}`},
		{name: "nested open", text: `{"a": {"b": [1, 2, {"c": "d`, want: `{"a":{"b":[1,2,{"c":"d"}]}}`},
		{name: "array number at end dropped", text: `{"a": [1, 2`, want: `{"a":[1]}`},
		{name: "top-level array", text: `[{"a":1},{"b":`, want: `[{"a":1},{}]`},
		{name: "complete", text: `{"a": [true, false, null], "b": "x"}`, want: `{"a":[true,false,null],"b":"x"}`},
		{name: "trailing prose ignored", text: `{"a": 1} and more {`, want: `{"a":1}`},
		{name: "leading prose", text: `Sure, here it is: {"a": "b`, want: `{"a":"b"}`},
		{name: "unfinished fence tag", text: "Sure:\n```js", want: ""},
		{name: "fence", text: "Sure:\n```json\n{\"a\": [\"x\", \"y", want: `{"a":["x","y"]}`},
		{name: "fence with brackets in prose", text: "Answer [draft]:\n```json\n{\"a\": 1,", want: `{"a":1}`},
		{name: "closed fence", text: "```json\n{\"a\": 1}\n```\nDone.", want: `{"a":1}`},
		{name: "escaped quote", text: `{"q": "say \"hi\" now`, want: `{"q":"say \"hi\" now"}`},
		{name: "half escape dropped", text: `{"q": "line\`, want: `{"q":"line"}`},
		{name: "half unicode escape dropped", text: `{"q": "caf\u00`, want: `{"q":"caf"}`},
		{name: "unicode escape", text: `{"q": "caf\u00e9`, want: `{"q":"café"}`},
		{name: "high surrogate held back", text: `{"q": "hi \ud83d`, want: `{"q":"hi "}`},
		{name: "half low surrogate held back", text: `{"q": "hi \ud83d\ude`, want: `{"q":"hi "}`},
		{name: "surrogate pair", text: `{"q": "hi \ud83d\ude00`, want: `{"q":"hi 😀"}`},
		{name: "half utf8 rune dropped", text: "{\"q\": \"caf\xc3", want: `{"q":"caf"}`},
		{name: "syntax error keeps prefix", text: `{"a": 1 "b": 2}`, want: `{"a":1}`},
		{name: "bad value keeps prefix", text: `{"a": 1, "b": x}`, want: `{"a":1}`},
		{name: "bad number keeps prefix", text: `{"a": 1, "b": 01}`, want: `{"a":1}`},
		{name: "control char in string", text: "{\"a\": 1, \"b\": \"x\ny\"}", want: `{"a":1}`},
		{name: "empty containers", text: `{"a": {}, "b": []`, want: `{"a":{},"b":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ParsePartial(tt.text)
			if tt.want == "" {
				require.False(t, ok, "got %#v", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, decode(t, tt.want), got)
		})
	}
}

// answers are realistic streamed answers; each ends a complete document.
var answers = []string{
	`{"name": "Ada Lovelace", "born": 1815, "died": 1852.0, "alive": false, "spouse": null,
  "works": [{"title": "Notes on the \"Analytical Engine\"", "year": 1843, "pages": [1, 2, 3]},
            {"title": "Sketch", "year": -1.5e-3, "tags": []}],
  "bio": {"summary": "Mathematician; wrote the first {program} [sic]\n\ttabs\\backslash",
          "langs": ["en", "fr"], "unicode": "café – 東京 😀 \u00e9\ud83d\ude00\u2028"},
  "score": 0, "ratio": 1E+2, "empty": {}}`,
	"Sure! Here is the JSON you asked for:\n\n```json\n{\n  \"city\": \"Zürich\",\n  \"temps\": [12.5, -3, 0.25e1],\n  \"ok\": true,\n  \"note\": \"use ``` fences carefully, {not} [these]\"\n}\n```\n\nLet me know if you need anything else.",
	`[{"id": 1, "labels": ["a", "b"]}, {"id": 2, "labels": [], "meta": {"deep": {"deeper": [[1], [2, [3]]]}}}, {"id": 3, "text": "\\\"quoted\\\""}]`,
	`{"a":{"b":{"c":{"d":[true,false,null,"\"",{"e":"\\u0041"}]}}},"z":-0.0}`,
}

// requireExtends checks that next keeps everything prev had: every scalar
// equal, every string a prefix of the later one, every array no shorter.
func requireExtends(t *testing.T, prev, next any, path string) {
	t.Helper()
	switch p := prev.(type) {
	case map[string]any:
		n, ok := next.(map[string]any)
		require.True(t, ok, "%s: object became %T", path, next)
		for k, pv := range p {
			nv, ok := n[k]
			require.True(t, ok, "%s/%s: field vanished", path, k)
			requireExtends(t, pv, nv, path+"/"+k)
		}
	case []any:
		n, ok := next.([]any)
		require.True(t, ok, "%s: array became %T", path, next)
		require.GreaterOrEqual(t, len(n), len(p), "%s: array shrank", path)
		for i := range p {
			requireExtends(t, p[i], n[i], fmt.Sprintf("%s/%d", path, i))
		}
	case string:
		n, ok := next.(string)
		require.True(t, ok, "%s: string became %T", path, next)
		require.True(t, strings.HasPrefix(n, p), "%s: %q does not extend %q", path, n, p)
	default:
		require.Equal(t, prev, next, "%s: scalar changed", path)
	}
}

func TestParsePartialMonotonic(t *testing.T) {
	t.Parallel()
	for i, answer := range answers {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			var prev any
			started := false
			for n := 0; n <= len(answer); n++ {
				v, ok := ParsePartial(answer[:n])
				if started {
					require.True(t, ok, "prefix %d lost the parse", n)
				}
				if !ok {
					continue
				}
				if started {
					requireExtends(t, prev, v, "")
				}
				prev, started = v, true
			}
			raw, ok := Extract(answer)
			require.True(t, ok)
			var want any
			require.NoError(t, json.Unmarshal([]byte(raw), &want))
			require.Equal(t, want, prev, "the full answer must parse as json.Unmarshal does")
		})
	}
}

func TestParsePartialCompleteScalarsNeverChange(t *testing.T) {
	t.Parallel()
	// A number is only reported once it cannot grow any more.
	text := `{"n": 123456, "m": [7, 89]}`
	for n := 0; n <= len(text); n++ {
		v, ok := ParsePartial(text[:n])
		if !ok {
			continue
		}
		obj := v.(map[string]any)
		if x, ok := obj["n"]; ok {
			require.Equal(t, 123456.0, x, "prefix %q", text[:n])
		}
		if m, ok := obj["m"].([]any); ok {
			require.Equal(t, []any{7.0, 89.0}[:len(m)], m, "prefix %q", text[:n])
		}
	}
}

func TestParsePartialDepthLimit(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", maxPartialDepth+10)
	v, ok := ParsePartial(deep)
	require.True(t, ok)
	require.IsType(t, []any{}, v)
}

func TestHasDuplicateKeys(t *testing.T) {
	t.Parallel()
	require.False(t, hasDuplicateKeys(`{"a":{"a":1},"b":["a","a"],"c":"a"}`))
	require.True(t, hasDuplicateKeys(`{"a":1,"b":{"x":[{}],"y":2},"a":2}`))
	require.True(t, hasDuplicateKeys(`[{"x":{"k":1,"k":2}}]`))
}

func FuzzParsePartial(f *testing.F) {
	for _, a := range answers {
		f.Add(a)
		f.Add(a[:len(a)/2])
	}
	for _, s := range []string{``, `{`, `[`, `{"a`, `{"a":"\`, `{"a":"\ud83d\`, "{\"a\":\"\xc3", `[1,2`, `{"a":tru`, "```json\n{", `{"a":1e400}`, `-`, `{]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, ok := ParsePartial(text)
		if !ok {
			require.Nil(t, v)
		}
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || (trimmed[0] != '{' && trimmed[0] != '[') {
			return
		}
		var want any
		if json.Unmarshal([]byte(text), &want) != nil {
			return
		}
		// Valid JSON: the full parse agrees, and a prefix is extended by it.
		require.True(t, ok)
		require.Equal(t, want, v)
		// With a repeated key the later value replaces the earlier one, so
		// a prefix legitimately disagrees with the whole.
		if utf8.ValidString(text) && !hasDuplicateKeys(text) {
			for _, n := range []int{len(text) / 3, len(text) / 2, len(text) - 1} {
				if p, ok := ParsePartial(text[:n]); ok {
					requireExtends(t, p, v, "")
				}
			}
		}
	})
}

// hasDuplicateKeys reports whether some object of the valid JSON text
// repeats a key.
func hasDuplicateKeys(text string) bool {
	dec := json.NewDecoder(strings.NewReader(text))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token of an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.key
		if top != nil && top.object {
			top.key = !top.key
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, &frame{keys: map[string]bool{}, object: true, key: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				// A container's value-toggle in its parent happened
				// when it opened.
				stack = stack[:len(stack)-1]
			}
		case string:
			if isKey {
				if top.keys[tok] {
					return true
				}
				top.keys[tok] = true
			}
		}
	}
}

// answer4K is a realistic ~4 KiB structured answer.
func answer4K() string {
	var sb strings.Builder
	sb.WriteString(`{"title": "Quarterly report", "items": [`)
	for i := 0; sb.Len() < 4000; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, `{"id": %d, "name": "item \"%d\" – café", "price": %d.25, "tags": ["a", "b"], "ok": true}`, i, i, i*3)
	}
	sb.WriteString(`], "total": 12345.5}`)
	return sb.String()
}

func BenchmarkParsePartial4K(b *testing.B) {
	text := answer4K()
	cut := text[:len(text)-7] // mid-stream, as on the hot path
	b.SetBytes(int64(len(cut)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParsePartial(cut); !ok {
			b.Fatal("no parse")
		}
	}
}

func TestDecodeStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`plain`, `a\"b\\c\/d\b\f\n\r\t`, `\u00e9\u00E9`, `\ud83d\ude00`, `\ud83d`, `\ude00\ud83d`,
		`\ud83dx`, `\ud83d\n`, "caf\xc3", `\x`, `東京 😀`,
	} {
		var want string
		wantErr := json.Unmarshal([]byte(`"`+body+`"`), &want)
		got, ok := decodeString(body, strings.Contains(body, `\`))
		require.Equal(t, wantErr == nil, ok, "body %q", body)
		require.Equal(t, want, got, "body %q", body)
	}
}
