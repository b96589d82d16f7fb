package structured

import (
	"encoding/json"
	"strings"
)

// maxCandidates bounds how many '{' / '[' positions Extract tries after
// leading prose, so a long run of unbalanced brackets costs O(n), not O(n²).
const maxCandidates = 32

// Extract returns the JSON in a model's answer, trying in order:
//
//  1. the whole text (trimmed), when it is valid JSON;
//  2. the content of the first ```json (or plain ```) fence that holds
//     valid JSON; an unclosed fence runs to the end of the text;
//  3. the first balanced top-level {...} or [...] after leading prose that
//     is valid JSON; brackets inside JSON strings do not count, trailing
//     prose is ignored. An object, or an array holding one, is preferred
//     to an earlier array of scalars, which in prose is more likely a
//     citation ("as shown in [1]") than the answer. At most 32 opening
//     brackets are tried.
//
// ok is false when none of them yields valid JSON.
func Extract(text string) (raw string, ok bool) {
	raw, _, ok = extract(text)
	return raw, ok
}

// extract is Extract that also returns, when nothing valid was found, the
// most likely intended JSON text (for a useful parse error in a re-ask).
func extract(text string) (raw, guess string, ok bool) {
	t := strings.TrimSpace(text)
	if t == "" {
		return "", "", false
	}
	if json.Valid([]byte(t)) {
		return t, t, true
	}
	for rest := t; ; {
		body, after, found := nextFence(rest)
		if !found {
			break
		}
		b := strings.TrimSpace(body)
		if json.Valid([]byte(b)) && b != "" {
			return b, b, true
		}
		if guess == "" && b != "" {
			guess = b
		}
		rest = after
	}
	// Prose often holds bracketed bits that are valid JSON ("see [1]"), so
	// the first object, or array holding objects, wins over the first
	// valid candidate of any kind.
	var fallback string
	start, tried := 0, 0
	for tried < maxCandidates {
		i := strings.IndexAny(t[start:], "{[")
		if i < 0 {
			break
		}
		i += start
		tried++
		start = i + 1
		end, balanced := matchBracket(t, i)
		if !balanced {
			if guess == "" {
				guess = t[i:]
			}
			continue
		}
		cand := t[i:end]
		if !json.Valid([]byte(cand)) {
			if guess == "" {
				guess = cand
			}
			continue
		}
		if cand[0] == '{' || strings.IndexByte(cand, '{') >= 0 {
			return cand, cand, true
		}
		if fallback == "" {
			fallback = cand
		}
		start = end // nothing inside a scalar-only array is an object
	}
	if fallback != "" {
		return fallback, fallback, true
	}
	if guess == "" {
		guess = t
	}
	return "", guess, false
}

// nextFence finds the next ``` fence in s and returns its body (the text
// after the opening line up to the closing ```, or to the end when unclosed)
// and the text after the closing fence.
func nextFence(s string) (body, after string, found bool) {
	i := strings.Index(s, "```")
	if i < 0 {
		return "", "", false
	}
	rest := s[i+3:]
	// The opening line is the language tag (json, JSON, jsonc, ...) or empty.
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		// "```{...}```" on one line: no tag, the body starts right away.
		if j := strings.Index(rest, "```"); j >= 0 {
			return rest[:j], rest[j+3:], true
		}
		return "", "", false
	}
	tag := strings.TrimSpace(rest[:nl])
	if tag != "" && (strings.HasPrefix(tag, "{") || strings.HasPrefix(tag, "[")) {
		nl = -1 // no tag: JSON starts on the fence line
	}
	rest = rest[nl+1:]
	if j := strings.Index(rest, "```"); j >= 0 {
		return rest[:j], rest[j+3:], true
	}
	return rest, "", true
}

// matchBracket returns the end (exclusive) of the bracketed value starting at
// s[start] ('{' or '['), skipping brackets inside JSON strings. balanced is
// false when the text ends first or a closer does not match its opener.
func matchBracket(s string, start int) (end int, balanced bool) {
	var stack []byte
	inString := false
	for i := start; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{':
			stack = append(stack, '}')
		case '[':
			stack = append(stack, ']')
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return 0, false
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}
