package mock

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
}

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
		name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
		next := s.root.Defs[name]
		if next == nil {
			next = s.root.Definitions[name]
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

// generate returns a value valid against s (for the subset understood).
func generate(s *schema, rng *rand.Rand, depth int) any {
	if s == nil {
		return "x"
	}
	s = s.resolve()
	if s.Const != nil {
		return s.Const
	}
	if len(s.Enum) > 0 {
		return s.Enum[rng.IntN(len(s.Enum))]
	}
	if alts := append(append([]*schema(nil), s.AnyOf...), s.OneOf...); len(alts) > 0 {
		return generate(s.child(alts[0]), rng, depth+1)
	}
	switch s.typ() {
	case "object", "":
		obj := map[string]any{}
		if depth > 8 {
			return obj
		}
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			obj[n] = generate(s.child(s.Properties[n]), rng, depth+1)
		}
		return obj
	case "array":
		lo, hi := 1, 3
		if s.MinItems != nil {
			lo = *s.MinItems
		}
		if s.MaxItems != nil {
			hi = *s.MaxItems
		}
		hi = max(lo, hi)
		n := lo
		if depth > 8 {
			n = lo
		} else if hi > lo {
			n = lo + rng.IntN(min(hi, lo+3)-lo+1)
		}
		arr := make([]any, n)
		for i := range arr {
			arr[i] = generate(s.child(s.Items), rng, depth+1)
		}
		return arr
	case "integer":
		lo, hi := bounds(s, 0, 100)
		l, h := int64(ceil(lo)), int64(floor(hi))
		if h < l {
			return l
		}
		return l + rng.Int64N(h-l+1)
	case "number":
		lo, hi := bounds(s, 0, 100)
		v := lo + rng.Float64()*(hi-lo)
		return float64(int64(v*100)) / 100
	case "boolean":
		return rng.IntN(2) == 1
	case "null":
		return nil
	}
	return genString(s, rng)
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

func ceil(f float64) float64 {
	if i := float64(int64(f)); i < f {
		return i + 1
	}
	return float64(int64(f))
}

func floor(f float64) float64 {
	if i := float64(int64(f)); i > f {
		return i - 1
	}
	return float64(int64(f))
}

func genString(s *schema, rng *rand.Rand) string {
	switch s.Format {
	case "date-time":
		return fmt.Sprintf("2025-%02d-%02dT12:00:00Z", 1+rng.IntN(12), 1+rng.IntN(28))
	case "date":
		return fmt.Sprintf("2025-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28))
	case "email":
		return vocabulary[rng.IntN(len(vocabulary))] + "@example.com"
	case "uri", "url":
		return "https://example.com/" + vocabulary[rng.IntN(len(vocabulary))]
	case "uuid":
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48))
	}
	str := words(rng, 1+rng.IntN(3))
	if s.MinLength != nil {
		for len([]rune(str)) < *s.MinLength {
			str += " " + vocabulary[rng.IntN(len(vocabulary))]
		}
	}
	if s.MaxLength != nil && len([]rune(str)) > *s.MaxLength {
		str = string([]rune(str)[:*s.MaxLength])
	}
	return str
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
