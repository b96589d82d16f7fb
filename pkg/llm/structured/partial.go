package structured

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxPartialDepth mirrors encoding/json's nesting limit, so ParsePartial of
// a complete document agrees with json.Unmarshal and never recurses without
// bound on hostile input.
const maxPartialDepth = 10000

// ParsePartial parses the text of a JSON object or array that is still
// being streamed and returns the best-effort value so far, decoded as
// json.Unmarshal would (map[string]any, []any, float64, string, bool, nil).
//
// The JSON may follow leading prose or sit inside a ```json fence, which may
// be unclosed. Open strings, arrays and objects are closed; a key without a
// value, a number that may still grow (one touching the end of the text)
// and a half-written literal (`tru`) are dropped. A syntax error ends the
// parse: what was complete before it is kept.
//
// The result is monotonic as text is appended: a scalar present in one parse
// keeps its value in every later one (a string may only grow), an array only
// grows, and the parse of a complete document equals json.Unmarshal of it.
// ok is false until an object or array has started. The top-level value must
// be an object or an array: a bare scalar cannot be told complete.
func ParsePartial(text string) (any, bool) {
	start := partialStart(text)
	if start < 0 {
		return nil, false
	}
	p := partialParser{s: text, i: start}
	v, st := p.value()
	if st == absent {
		return nil, false
	}
	return v, true
}

// partialStart finds where the JSON starts: at the text's first non-space
// byte when that opens an object or array, else after a ``` fence's opening
// line, else at the first '{' after leading prose. Each rule looks only at a
// prefix, so the start does not move as text is appended.
func partialStart(text string) int {
	k := skipSpace(text, 0)
	if k < len(text) && (text[k] == '{' || text[k] == '[') {
		return k
	}
	if f := strings.Index(text, "```"); f >= 0 {
		i := f + 3
		j := skipSpace(text, i)
		if j < len(text) && (text[j] == '{' || text[j] == '[') {
			return j
		}
		nl := strings.IndexByte(text[i:], '\n')
		if nl < 0 {
			return -1 // the language tag is still being written
		}
		j = skipSpace(text, i+nl+1)
		if j >= len(text) {
			return -1
		}
		if text[j] == '{' || text[j] == '[' {
			return j
		}
	}
	return strings.IndexByte(text, '{')
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// state says how much of a value the text held.
type state int

const (
	absent   state = iota // nothing usable: the value is missing, cut short or broken
	partial               // usable but the text ended inside it
	complete              // the whole value
)

type partialParser struct {
	s     string
	i     int
	depth int
	stop  bool // a syntax error: keep what we have and parse no further
}

func (p *partialParser) eof() bool { return p.i >= len(p.s) }

func (p *partialParser) fail() (any, state) {
	p.stop = true
	return nil, absent
}

func (p *partialParser) value() (any, state) {
	p.i = skipSpace(p.s, p.i)
	if p.eof() {
		return nil, absent
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, st := p.str()
		if st == absent {
			return nil, absent
		}
		return s, st
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return p.fail()
}

func (p *partialParser) object() (any, state) {
	if p.depth++; p.depth > maxPartialDepth {
		return p.fail()
	}
	defer func() { p.depth-- }()
	p.i++ // '{'
	obj := map[string]any{}
	for first := true; ; first = false {
		p.i = skipSpace(p.s, p.i)
		if p.eof() {
			return obj, partial
		}
		if p.s[p.i] == '}' {
			p.i++
			return obj, complete
		}
		if !first {
			if p.s[p.i] != ',' {
				p.stop = true
				return obj, partial
			}
			p.i = skipSpace(p.s, p.i+1)
			if p.eof() {
				return obj, partial
			}
		}
		if p.s[p.i] != '"' {
			p.stop = true
			return obj, partial
		}
		key, st := p.str()
		if st != complete {
			return obj, partial // a key still being written is dropped
		}
		p.i = skipSpace(p.s, p.i)
		if p.eof() {
			return obj, partial
		}
		if p.s[p.i] != ':' {
			p.stop = true
			return obj, partial
		}
		p.i++
		v, st := p.value()
		if st == absent {
			return obj, partial // a dangling key is dropped
		}
		obj[key] = v
		if st == partial {
			return obj, partial
		}
	}
}

func (p *partialParser) array() (any, state) {
	if p.depth++; p.depth > maxPartialDepth {
		return p.fail()
	}
	defer func() { p.depth-- }()
	p.i++ // '['
	arr := []any{}
	for first := true; ; first = false {
		p.i = skipSpace(p.s, p.i)
		if p.eof() {
			return arr, partial
		}
		if p.s[p.i] == ']' {
			p.i++
			return arr, complete
		}
		if !first {
			if p.s[p.i] != ',' {
				p.stop = true
				return arr, partial
			}
			p.i++
		}
		v, st := p.value()
		if st == absent {
			return arr, partial
		}
		arr = append(arr, v)
		if st == partial {
			return arr, partial
		}
	}
}

// str parses the string at p.i (which is '"'). An unterminated string is
// returned as partial, cut before any escape or UTF-8 sequence that is not
// complete yet, so that later parses only ever extend it.
func (p *partialParser) str() (string, state) {
	body := p.s[p.i+1:]
	escaped := false
	for j := 0; j < len(body); j++ {
		c := body[j]
		switch {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			s, ok := decodeString(body[:j], escaped)
			if !ok {
				p.stop = true
				return "", absent
			}
			p.i += j + 2
			return s, complete
		case c < 0x20:
			p.stop = true
			return "", absent
		}
	}
	p.i = len(p.s)
	body = body[:safeCut(body)]
	s, ok := decodeString(body, escaped)
	if !ok {
		p.stop = true
		return "", absent
	}
	return s, partial
}

// safeCut returns the length of the longest prefix of an unterminated string
// body that later text cannot change the decoding of.
func safeCut(body string) int {
	for j := 0; j < len(body); j++ {
		if body[j] != '\\' {
			continue
		}
		if j+1 >= len(body) {
			return j
		}
		if body[j+1] != 'u' {
			j++
			continue
		}
		if j+6 > len(body) {
			return j
		}
		// A high surrogate decodes differently once its low half follows.
		if h, err := strconv.ParseUint(body[j+2:j+6], 16, 16); err == nil && h >= 0xD800 && h < 0xDC00 {
			if j+6 == len(body) || (body[j+6] == '\\' && j+12 > len(body)) {
				return j
			}
		}
		j += 5
	}
	// Drop a trailing UTF-8 sequence that is not complete yet.
	n := len(body)
	for k := n - 1; k >= 0 && k >= n-utf8.UTFMax; k-- {
		if utf8.RuneStart(body[k]) {
			if !utf8.FullRuneInString(body[k:]) {
				return k
			}
			break
		}
	}
	return n
}

func decodeString(body string, escaped bool) (string, bool) {
	if utf8.ValidString(body) {
		if !escaped {
			return body, true
		}
		if s, ok := unescape(body); ok {
			return s, true
		}
	}
	// Invalid UTF-8, lone surrogates and bad escapes: let encoding/json
	// decide, so the result matches json.Unmarshal exactly.
	var s string
	if err := json.Unmarshal([]byte(`"`+body+`"`), &s); err != nil {
		return "", false
	}
	return s, true
}

// unescape decodes the escapes of a valid UTF-8 string body; ok is false
// for anything it does not handle exactly as encoding/json does.
func unescape(body string) (string, bool) {
	b := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+1 >= len(body) {
			return "", false
		}
		i++
		switch body[i] {
		case '"', '\\', '/':
			b = append(b, body[i])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(body, i+1)
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
					return "", false
				}
				lo, ok := hex4(body, i+3)
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, lo)
				if r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", false
		}
	}
	return string(b), true
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *partialParser) literal(word string, v any) (any, state) {
	rest := p.s[p.i:]
	if len(rest) < len(word) {
		if strings.HasPrefix(word, rest) {
			p.i = len(p.s)
			return nil, absent // "tru": may become true
		}
		return p.fail()
	}
	if rest[:len(word)] != word {
		return p.fail()
	}
	p.i += len(word)
	return v, complete
}

func (p *partialParser) number() (any, state) {
	j := p.i
	for j < len(p.s) && strings.IndexByte("0123456789+-.eE", p.s[j]) >= 0 {
		j++
	}
	if j == len(p.s) {
		p.i = j
		return nil, absent // more digits may follow
	}
	lit := p.s[p.i:j]
	if !isJSONNumber(lit) {
		return p.fail()
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return p.fail() // out of range, as json.Unmarshal refuses it
	}
	p.i = j
	return f, complete
}

// isJSONNumber reports whether s matches JSON's number grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}
