package llm

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a secret in text that leaves a provider package.
const Redacted = "[redacted]"

// Scrub replaces every secret in s with "[redacted]", for provider packages
// (and the worker, as a second line) building text from vendor bodies or
// transport errors that may echo a key. A vendor may echo a key in another
// form than it was sent, so each secret of 8 characters or more is looked
// for as is, URL-query-escaped, URL-path-escaped, JSON-escaped (with or
// without "\/"), in base64
// (standard and URL alphabets, at any alignment inside a longer base64 text,
// as in an echoed "Basic" header), and in any letter case. Shorter secrets
// are replaced only as they are.
func Scrub(s string, secrets []string) string { return NewScrubber(secrets).Scrub(s) }

// Scrubber is Scrub with the forms of its secrets worked out once, for
// callers that scrub often. It is safe for concurrent use.
type Scrubber struct {
	exact []string // secrets too short for the other forms
	forms []string // every form of the others, longest first
}

// NewScrubber returns a Scrubber of secrets.
func NewScrubber(secrets []string) *Scrubber {
	sc := &Scrubber{}
	for _, k := range secrets {
		switch {
		case k == "":
		case len(k) < 8:
			sc.exact = append(sc.exact, k)
		default:
			sc.forms = append(sc.forms, secretForms(k)...)
		}
	}
	slices.SortStableFunc(sc.forms, func(a, b string) int { return len(b) - len(a) })
	return sc
}

// Scrub returns s with every form of every secret replaced by "[redacted]".
func (sc *Scrubber) Scrub(s string) string {
	if s == "" {
		return s
	}
	for _, k := range sc.exact {
		s = strings.ReplaceAll(s, k, Redacted)
	}
	for _, f := range sc.forms {
		s = replaceFold(s, f)
	}
	return s
}

// secretForms returns the forms a vendor may echo k in, longest first so
// that a longer form is replaced before a shorter one inside it.
func secretForms(k string) []string {
	forms := []string{k, url.QueryEscape(k), url.PathEscape(k)}
	if b, err := json.Marshal(k); err == nil {
		// Go escapes <, > and &; PHP and others also escape /.
		j := string(b[1 : len(b)-1])
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		forms = append(forms, base64Fragments(enc, []byte(k))...)
	}
	// Longest first; drop repeats and fragments too short to be telling.
	out := forms[:0]
	for _, f := range forms {
		if len(f) >= 8 && !containsFold(out, f) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// base64Fragments returns, for each of the three alignments k can have
// inside a longer base64-encoded text, the characters that depend only on
// k's bytes.
func base64Fragments(enc *base64.Encoding, k []byte) []string {
	var out []string
	for shift := range 3 {
		buf := make([]byte, shift+len(k))
		copy(buf[shift:], k)
		e := enc.EncodeToString(buf)
		// Character i carries input bits [6i, 6i+6).
		first := (8*shift + 5) / 6
		last := (8*(shift+len(k)))/6 - 1
		if last >= first && last < len(e) {
			out = append(out, e[first:last+1])
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

// replaceFold replaces every occurrence of old in s, in any letter case.
func replaceFold(s, old string) string {
	lower, lold := strings.ToLower(s), strings.ToLower(old)
	if len(lower) != len(s) || len(lold) != len(old) {
		// Case mapping changed lengths (non-ASCII): fall back to exact.
		return strings.ReplaceAll(s, old, Redacted)
	}
	if !strings.Contains(lower, lold) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lold)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(Redacted)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}
