package mock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
)

// schema is the subset of JSON Schema the generator understands.
type schema struct {
	Type        any                `json:"type"`
	Properties  map[string]*schema `json:"properties"`
	Required    []string           `json:"required"`
	Items       *schema            `json:"items"`
	Enum        []any              `json:"enum"`
	Const       any                `json:"const"`
	MinLength   *int               `json:"minLength"`
	MaxLength   *int               `json:"maxLength"`
	Minimum     *float64           `json:"minimum"`
	Maximum     *float64           `json:"maximum"`
	MinItems    *int               `json:"minItems"`
	MaxItems    *int               `json:"maxItems"`
	Format      string             `json:"format"`
	AnyOf       []*schema          `json:"anyOf"`
	OneOf       []*schema          `json:"oneOf"`
	Ref         string             `json:"$ref"`
	Defs        map[string]*schema `json:"$defs"`
	Definitions map[string]*schema `json:"definitions"`

	root *schema
	// valueSize caches the JSON size of Const (or of the largest Enum
	// value), so that an array of many items does not re-measure it.
	valueSize int
}

// Bounds of what one schema can make the generator do. A schema comes from a
// requester; whatever it asks, generating an answer costs at most
// MaxAnswerBytes of output and a proportional amount of time.
const (
	// MaxAnswerBytes is the largest JSON answer (or tool-call arguments) the
	// mock generates. A schema whose smallest valid value is larger fails
	// the call with a bad_request error, as a vendor refuses a request it
	// cannot answer within its output limit.
	MaxAnswerBytes = 8 << 20
	// maxDepth is how deep generated values nest. A schema with no valid
	// value shallower than that (an array that must contain itself) fails
	// the call.
	maxDepth = 32
	// fullDepth is the depth down to which optional properties are
	// generated and arrays get more than their minimum of items; below it
	// only what the schema requires is, so that schemas whose properties
	// refer to each other stay small.
	fullDepth = 4
	// ctxEvery is how many generated values pass between checks of the
	// context.
	ctxEvery = 1024
	// maxSafeInt bounds generated integers to those every JSON parser reads
	// exactly.
	maxSafeInt = 1 << 53
	// maxPlainNumber bounds generated numbers whose schema allows anything
	// wider, so that they print without an exponent and round to cents.
	maxPlainNumber = 1e15
)

// errTooLarge is returned by the generator when the answer would be larger
// than MaxAnswerBytes; errTooDeep when it would nest deeper than maxDepth.
var (
	errTooLarge = fmt.Errorf("the schema asks for an answer larger than %d bytes", MaxAnswerBytes)
	errTooDeep  = fmt.Errorf("the schema has no valid value nested less than %d levels deep", maxDepth)
)

// schemaOf parses raw; a schema it cannot parse generates an empty object.
func schemaOf(raw json.RawMessage) *schema {
	s := &schema{}
	if len(raw) == 0 || json.Unmarshal(raw, s) != nil {
		return &schema{Type: "object", root: s}
	}
	s.root = s
	return s
}

func (s *schema) resolve() *schema {
	for range 8 {
		if s.Ref == "" || s.root == nil {
			break
		}
		var next *schema
		if s.Ref == "#" {
			next = s.root
		} else {
			name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
			next = s.root.Defs[name]
			if next == nil {
				next = s.root.Definitions[name]
			}
		}
		if next == nil {
			break
		}
		next.root = s.root
		s = next
	}
	return s
}

func (s *schema) child(c *schema) *schema {
	if c != nil {
		c.root = s.root
	}
	return c
}

func (s *schema) typ() string {
	switch t := s.Type.(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if x, ok := x.(string); ok && x != "null" {
				return x
			}
		}
	}
	switch {
	case s.Properties != nil:
		return "object"
	case s.Items != nil:
		return "array"
	}
	return ""
}

// generator builds one value valid against a schema (for the subset
// understood) within a budget of output bytes, a depth and a context.
type generator struct {
	ctx   context.Context
	rng   *rand.Rand
	left  int // bytes the answer may still take
	nodes int
	err   error
}

// generate returns a value valid against s and its JSON text, or an error:
// errTooLarge, errTooDeep or the context's.
func generate(ctx context.Context, s *schema, rng *rand.Rand) (any, string, error) {
	g := &generator{ctx: ctx, rng: rng, left: MaxAnswerBytes}
	v := g.value(s, 0)
	if g.err != nil {
		return nil, "", g.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	if len(b) > MaxAnswerBytes {
		return nil, "", errTooLarge
	}
	return v, string(b), nil
}

// spend takes n bytes from the budget and reports whether the generator may
// go on; it also checks the context now and then.
func (g *generator) spend(n int) bool {
	if g.err != nil {
		return false
	}
	if g.left -= n; g.left < 0 {
		g.err = errTooLarge
		return false
	}
	if g.nodes++; g.nodes%ctxEvery == 0 {
		if err := g.ctx.Err(); err != nil {
			g.err = err
			return false
		}
	}
	return true
}

func (g *generator) value(s *schema, depth int) any {
	if s == nil {
		g.spend(3)
		return "x"
	}
	if depth > maxDepth {
		if g.err == nil {
			g.err = errTooDeep
		}
		return nil
	}
	s = s.resolve()
	if s.Const != nil {
		g.spend(s.sizeOfValues())
		return s.Const
	}
	if len(s.Enum) > 0 {
		g.spend(s.sizeOfValues())
		return s.Enum[g.rng.IntN(len(s.Enum))]
	}
	if len(s.AnyOf) > 0 || len(s.OneOf) > 0 {
		return g.alternative(s, depth)
	}
	switch s.typ() {
	case "object", "":
		return g.object(s, depth)
	case "array":
		return g.array(s, depth)
	case "integer":
		g.spend(20)
		return g.integer(s)
	case "number":
		g.spend(20)
		return g.number(s)
	case "boolean":
		g.spend(5)
		return g.rng.IntN(2) == 1
	case "null":
		g.spend(4)
		return nil
	}
	return g.string(s)
}

// alternative generates the first of s's anyOf / oneOf alternatives that
// has a value shallow enough. Each try costs a byte of the budget, so that
// alternatives nested in alternatives cannot make the search exponential.
func (g *generator) alternative(s *schema, depth int) any {
	alts := append(slices.Clip(s.AnyOf), s.OneOf...)
	for i, a := range alts {
		if !g.spend(1) {
			return nil
		}
		v := g.value(s.child(a), depth+1)
		if !errors.Is(g.err, errTooDeep) || i == len(alts)-1 {
			return v
		}
		g.err = nil
	}
	return nil
}

func (g *generator) object(s *schema, depth int) any {
	obj := map[string]any{}
	if !g.spend(2) {
		return obj
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		if depth < fullDepth || slices.Contains(s.Required, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		if !g.spend(len(n) + 4) {
			return obj
		}
		obj[n] = g.value(s.child(s.Properties[n]), depth+1)
	}
	return obj
}

func (g *generator) array(s *schema, depth int) any {
	lo, hi := 1, 3
	if s.MinItems != nil {
		lo = max(*s.MinItems, 0)
	}
	if s.MaxItems != nil {
		hi = max(*s.MaxItems, 0)
	}
	hi = max(lo, hi)
	n := lo
	if depth < fullDepth && hi > lo {
		n = lo + g.rng.IntN(min(hi-lo, 3)+1)
	}
	// Every item takes at least one byte and a comma: refuse an impossible
	// count before allocating anything for it.
	if n > g.left/2 {
		g.err = errTooLarge
		return nil
	}
	if !g.spend(2) {
		return nil
	}
	arr := make([]any, 0, min(n, 1024))
	for range n {
		if !g.spend(1) {
			return arr
		}
		arr = append(arr, g.value(s.child(s.Items), depth+1))
		if g.err != nil {
			return arr
		}
	}
	return arr
}

func (g *generator) integer(s *schema) any {
	lo, hi := bounds(s, 0, 100)
	l, h := math.Ceil(lo), math.Floor(hi)
	if h < l {
		return l
	}
	cl, ch := max(l, -maxSafeInt), min(h, maxSafeInt)
	if ch < cl {
		return l // every allowed integer is beyond 2^53: the smallest one
	}
	return int64(cl) + g.rng.Int64N(int64(ch-cl)+1)
}

func (g *generator) number(s *schema) any {
	lo, hi := bounds(s, 0, 100)
	cl, ch := max(lo, -maxPlainNumber), min(hi, maxPlainNumber)
	if ch < cl {
		return lo
	}
	v := cl + g.rng.Float64()*(ch-cl)
	if r := math.Round(v*100) / 100; r >= lo && r <= hi {
		return r
	}
	return v
}

func bounds(s *schema, lo, hi float64) (float64, float64) {
	if s.Minimum != nil {
		lo = *s.Minimum
		if s.Maximum == nil {
			hi = lo + 100
		}
	}
	if s.Maximum != nil {
		hi = *s.Maximum
		if s.Minimum == nil {
			lo = min(lo, hi)
		}
	}
	return lo, max(lo, hi)
}

func (g *generator) string(s *schema) string {
	var str string
	switch s.Format {
	case "date-time":
		str = fmt.Sprintf("2025-%02d-%02dT12:00:00Z", 1+g.rng.IntN(12), 1+g.rng.IntN(28))
	case "date":
		str = fmt.Sprintf("2025-%02d-%02d", 1+g.rng.IntN(12), 1+g.rng.IntN(28))
	case "email":
		str = vocabulary[g.rng.IntN(len(vocabulary))] + "@example.com"
	case "uri", "url":
		str = "https://example.com/" + vocabulary[g.rng.IntN(len(vocabulary))]
	case "uuid":
		str = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12), g.rng.IntN(1<<12), g.rng.Int64N(1<<48))
	default:
		str = g.words(s)
	}
	if s.MaxLength != nil && len([]rune(str)) > max(*s.MaxLength, 0) {
		str = string([]rune(str)[:max(*s.MaxLength, 0)])
	}
	g.spend(len(str) + 2)
	return str
}

// words returns one to three words, then more until minLength. The
// vocabulary is ASCII, so bytes count characters.
func (g *generator) words(s *schema) string {
	minLen := 0
	if s.MinLength != nil {
		minLen = *s.MinLength
	}
	if minLen > g.left {
		g.err = errTooLarge
		return ""
	}
	var b strings.Builder
	for i := range 1 + g.rng.IntN(3) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vocabulary[g.rng.IntN(len(vocabulary))])
	}
	if b.Len() < minLen {
		b.Grow(minLen - b.Len() + 16)
		for b.Len() < minLen {
			b.WriteByte(' ')
			b.WriteString(vocabulary[g.rng.IntN(len(vocabulary))])
		}
	}
	return b.String()
}

// sizeOfValues returns the JSON size of Const, or of the largest Enum value.
func (s *schema) sizeOfValues() int {
	if s.valueSize == 0 {
		vals := s.Enum
		if s.Const != nil {
			vals = []any{s.Const}
		}
		for _, v := range vals {
			b, _ := json.Marshal(v)
			s.valueSize = max(s.valueSize, len(b), 1)
		}
	}
	return s.valueSize
}

// violate breaks v against s: it drops a required property (or, without
// one, changes the type of the whole value).
func violate(s *schema, v any) any {
	s = s.resolve()
	if obj, ok := v.(map[string]any); ok && len(s.Required) > 0 {
		delete(obj, s.Required[0])
		return obj
	}
	if _, ok := v.(string); ok {
		return 42
	}
	return "not what the schema asks for"
}

// generationError is the call's error when no answer could be generated.
func generationError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctxError(ctx, false)
	}
	return &llm.Error{Kind: llm.KindBadRequest, Provider: "mock", Status: 400, Message: "mock: " + err.Error()}
}

func words(rng *rand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = vocabulary[rng.IntN(len(vocabulary))]
	}
	return strings.Join(ws, " ")
}

// vocabulary is what generated answers are made of: readable, lower-case
// ASCII words.
var vocabulary = strings.Fields(`the a of and to in is it that for on with as at by from this
river stone cloud signal garden window engine harbor lantern meadow copper orbit pattern
quiet rapid gentle bright hollow silver amber north south early late simple steady
travels builds carries finds keeps opens turns holds reads writes sends answers
message worker queue token stream result model group switch yard rail train station
morning evening forest valley bridge market letter number future history`)
