package llm

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScrubCoversTheFormsVendorsEcho(t *testing.T) {
	t.Parallel()
	const key = "sk-proj-AbC+/=dEf_123456789"
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + key))
	for name, echo := range map[string]string{
		"raw":              key,
		"upper case":       strings.ToUpper(key),
		"lower case":       strings.ToLower(key),
		"query-escaped":    url.QueryEscape(key),
		"path-escaped":     url.PathEscape(key),
		"json-escaped":     `sk-proj-AbC+\/=dEf_123456789`, // some encoders escape '/'
		"json (Go, html)":  `sk-<\u003e&`,
		"base64":           base64.StdEncoding.EncodeToString([]byte(key)),
		"base64url":        base64.URLEncoding.EncodeToString([]byte(key)),
		"base64 raw":       base64.RawStdEncoding.EncodeToString([]byte(key)),
		"base64 in basic":  "Basic " + basic,
		"base64 shifted 2": base64.StdEncoding.EncodeToString([]byte("ab" + key + "z")),
	} {
		k := key
		if name == "json (Go, html)" {
			k = "sk-<>&-long-enough"
			echo = `sk-\u003c\u003e\u0026-long-enough`
		}
		msg := "Incorrect API key provided: " + echo + ". Check it."
		got := Scrub(msg, []string{k})
		require.Contains(t, got, Redacted, name)
		require.NotContains(t, strings.ToLower(got), strings.ToLower(k), name)
		require.NotContains(t, got, echo, name)
		require.True(t, strings.HasPrefix(got, "Incorrect API key provided: "), "%s: %q", name, got)
	}
	require.Equal(t, "no key here", Scrub("no key here", []string{key}))
	require.Equal(t, "a [redacted] b", Scrub("a tiny b", []string{"tiny"}), "short secrets: exact only")
	require.Equal(t, "a TINY b", Scrub("a TINY b", []string{"tiny"}))
	require.Equal(t, "x", Scrub("x", []string{""}))
}

func FuzzScrub(f *testing.F) {
	f.Add("Incorrect API key provided: sk-abcdefgh1234", "sk-abcdefgh1234")
	f.Add("ÅÅÅ sk-ÅÅÅÅÅÅÅÅ", "sk-ÅÅÅÅÅÅÅÅ")
	f.Fuzz(func(t *testing.T, s, key string) {
		if len(key) < 8 {
			return
		}
		got := Scrub(s, []string{key})
		if strings.Contains(got, key) {
			t.Fatalf("Scrub(%q, %q) = %q still holds the key", s, key, got)
		}
	})
}
