package structured

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExtract(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want string // "" for ok == false
	}{
		{name: "whole object", text: ` {"a": 1} `, want: `{"a": 1}`},
		{name: "whole array", text: `[1, 2]`, want: `[1, 2]`},
		{name: "whole scalar", text: `"just a string"`, want: `"just a string"`},
		{name: "json fence", text: "Here you go:\n```json\n{\"a\": 1}\n```\nAnything else?", want: `{"a": 1}`},
		{name: "plain fence", text: "```\n[1,2,3]\n```", want: `[1,2,3]`},
		{name: "fence without newline", text: "Result: ```{\"a\":1}``` done", want: `{"a":1}`},
		{name: "unclosed fence", text: "```json\n{\"a\": 1}\n", want: `{"a": 1}`},
		{name: "second fence holds the json", text: "```bash\nls -l\n```\nthen\n```json\n{\"ok\":true}\n```", want: `{"ok":true}`},
		{name: "prose before and after", text: `The answer is {"a": {"b": [1, 2]}} as requested.`, want: `{"a": {"b": [1, 2]}}`},
		{name: "braces inside strings", text: `Result: {"s": "a } b { c ] [", "t": "\"}"} trailing }`, want: `{"s": "a } b { c ] [", "t": "\"}"}`},
		{name: "array after prose", text: `Items: [{"a": 1}, {"b": "]"}] end`, want: `[{"a": 1}, {"b": "]"}]`},
		{name: "skips non-json braces", text: `Use {braces} like this: {"a": 1}`, want: `{"a": 1}`},
		{name: "skips citation brackets", text: `As shown [1], the result is {"x": 2}.`, want: `{"x": 2}`},
		{name: "scalar array when nothing else", text: `The ids are [1, 2, 3].`, want: `[1, 2, 3]`},
		{name: "no json", text: "I'm sorry, I can't do that."},
		{name: "empty", text: "   "},
		{name: "unbalanced", text: `Here: {"a": [1, 2}`},
		{name: "truncated", text: `{"a": "unfinished`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Extract(tt.text)
			if tt.want == "" {
				require.False(t, ok, "got %q", got)
				require.Empty(t, got)
				return
			}
			require.True(t, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestExtractManyCandidatesIsBounded(t *testing.T) {
	t.Parallel()
	// Far more unbalanced openers than maxCandidates, then valid JSON: the
	// search gives up instead of trying every opener to the end.
	text := strings.Repeat("{ ", 10000) + `{"a":1}`
	_, ok := Extract(text)
	require.False(t, ok)
	got, ok := Extract(strings.Repeat("{ ", maxCandidates-1) + `{"a":1}`)
	require.True(t, ok, "the last candidate allowed is tried")
	require.Equal(t, `{"a":1}`, got)
	_, ok = Extract(strings.Repeat("{ ", maxCandidates) + `{"a":1}`)
	require.False(t, ok, "one candidate too many")
	got, ok = Extract(strings.Repeat("{x} ", maxCandidates-1) + `{"a":1}`)
	require.True(t, ok)
	require.Equal(t, `{"a":1}`, got)
}

func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		"", "{}", "```json\n{\"a\":1}\n```", "prose {\"a\":\"}\"} more", "[1,{]", "```", "```\n", "{\"a\":\"\\",
		"x ```{\"a\":1}```", "[[[[", "\"}\"{\"a\":1}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		raw, ok := Extract(text)
		if !ok {
			require.Empty(t, raw)
			return
		}
		require.True(t, json.Valid([]byte(raw)), "extracted invalid JSON %q", raw)
		require.Contains(t, text, raw)
	})
}
