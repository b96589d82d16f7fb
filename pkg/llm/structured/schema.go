package structured

import (
	"bytes"
	"cmp"
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Limits bound the work one requester's schema can cause. A schema over any
// limit is refused with a *SchemaError before it reaches the compiler.
type Limits struct {
	// MaxBytes is the largest schema document accepted. Default 256 KiB.
	MaxBytes int
	// MaxDepth is the deepest nesting of JSON objects and arrays in the
	// schema document. Default 64.
	MaxDepth int
	// MaxRefs is the most $ref / $dynamicRef keywords a schema may hold.
	// Default 256.
	MaxRefs int
	// MaxExpandedNodes bounds the size of the schema with every local
	// "#/..." $ref inlined once per use (a recursive ref counts once). It
	// stops "billion laughs" schemas whose $defs reference each other in
	// layers, which are small as text but exponential to validate. Default
	// 100000.
	MaxExpandedNodes int
	// CacheSize is how many compiled schemas (and compile errors) a
	// Compiler keeps, least recently used out first. Default 256; negative
	// disables the cache.
	CacheSize int
}

// DefaultLimits returns the limits used by [Compile].
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	l.MaxBytes = cmp.Or(l.MaxBytes, 256<<10)
	l.MaxDepth = cmp.Or(l.MaxDepth, 64)
	l.MaxRefs = cmp.Or(l.MaxRefs, 256)
	l.MaxExpandedNodes = cmp.Or(l.MaxExpandedNodes, 100_000)
	l.CacheSize = cmp.Or(l.CacheSize, 256)
	return l
}

// SchemaError reports a schema that cannot be used: not JSON, not a valid
// JSON Schema, an unresolvable or remote $ref, or over a [Limits] bound. It is
// the requester's fault (invalid_request), never worth a retry.
type SchemaError struct {
	// Reason is a short, stable description ("not valid JSON", "too large",
	// "invalid schema", "unresolvable $ref", ...).
	Reason string
	// Detail is the validator's or parser's own message, if any.
	Detail string
	// Err is the cause, if any.
	Err error
}

func (e *SchemaError) Error() string {
	if e.Detail == "" {
		return "structured: bad JSON schema: " + e.Reason
	}
	return "structured: bad JSON schema: " + e.Reason + ": " + e.Detail
}

// Unwrap returns the cause.
func (e *SchemaError) Unwrap() error { return e.Err }

// Violation is one way a value fails its schema.
type Violation struct {
	// Path is the JSON pointer (RFC 6901) of the offending value: "" for
	// the root, "/items/0/name" for a nested field.
	Path string
	// Message says what is wrong, e.g. "missing property 'name'".
	Message string
}

// String returns `at "/a/0": message`, or `at root: message`.
func (v Violation) String() string {
	if v.Path == "" {
		return "at root: " + v.Message
	}
	return fmt.Sprintf("at %q: %s", v.Path, v.Message)
}

// Schema is a compiled JSON Schema. It is immutable and safe for concurrent
// use.
//
// A nil *Schema stands for the json_object response format: it accepts any
// JSON object and reports one violation for anything else.
type Schema struct {
	s *jsonschema.Schema
}

// Compiler compiles schemas under a set of [Limits] and caches the results
// by the SHA-256 of the schema bytes. It is safe for concurrent use.
type Compiler struct {
	limits Limits

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	index map[[sha256.Size]byte]*list.Element
}

type cacheEntry struct {
	key    [sha256.Size]byte
	schema *Schema
	err    error
}

// NewCompiler returns a Compiler; zero fields of limits take their defaults.
func NewCompiler(limits Limits) *Compiler {
	return &Compiler{
		limits: limits.withDefaults(),
		lru:    list.New(),
		index:  map[[sha256.Size]byte]*list.Element{},
	}
}

var defaultCompiler = NewCompiler(Limits{})

// Compile compiles a JSON Schema (draft 2020-12 unless it names another
// draft in $schema) with [DefaultLimits] and a process-wide cache. Errors are
// *SchemaError.
func Compile(schema json.RawMessage) (*Schema, error) {
	return defaultCompiler.Compile(schema)
}

// Compile compiles schema, or returns the cached result of compiling the
// same bytes before (a broken schema's error is cached too, so a requester
// repeating a schema bomb pays once). Errors are *SchemaError.
func (c *Compiler) Compile(schema json.RawMessage) (*Schema, error) {
	if len(schema) > c.limits.MaxBytes {
		// Not cached: hashing a huge body is the cost we refuse.
		return nil, &SchemaError{Reason: "too large", Detail: fmt.Sprintf("%d bytes, the limit is %d", len(schema), c.limits.MaxBytes)}
	}
	if c.limits.CacheSize < 0 {
		return c.compile(schema)
	}
	key := sha256.Sum256(schema)
	c.mu.Lock()
	if el, ok := c.index[key]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		c.mu.Unlock()
		return e.schema, e.err
	}
	c.mu.Unlock()

	// Compiled outside the lock: two callers racing on a new schema both
	// compile it, which is cheaper than serialising every compile.
	s, err := c.compile(schema)

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[key]; !ok {
		c.index[key] = c.lru.PushFront(&cacheEntry{key: key, schema: s, err: err})
		for c.lru.Len() > c.limits.CacheSize {
			old := c.lru.Remove(c.lru.Back()).(*cacheEntry)
			delete(c.index, old.key)
		}
	}
	return s, err
}

// cacheLen reports the number of cached entries (for tests).
func (c *Compiler) cacheLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// rootURL names the requester's schema inside the compiler. Relative refs
// resolve against it and then hit noLoader, so nothing is ever fetched.
const rootURL = "mem:///schema.json"

func (c *Compiler) compile(raw json.RawMessage) (*Schema, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, &SchemaError{Reason: "empty"}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(trimmed))
	if err != nil {
		return nil, &SchemaError{Reason: "not valid JSON", Detail: err.Error(), Err: err}
	}
	if err := checkShape(doc, c.limits); err != nil {
		return nil, err
	}

	jc := jsonschema.NewCompiler()
	jc.DefaultDraft(jsonschema.Draft2020)
	// Models are asked to honour "format" (date-time, email, ...), and
	// OpenAI's strict mode does; so assert it rather than treat it as an
	// annotation as 2020-12 does by default.
	jc.AssertFormat()
	jc.UseLoader(noLoader{})
	if err := jc.AddResource(rootURL, doc); err != nil {
		return nil, &SchemaError{Reason: "invalid schema", Detail: err.Error(), Err: err}
	}
	s, err := jc.Compile(rootURL)
	if err != nil {
		return nil, classifyCompileError(err)
	}
	return &Schema{s: s}, nil
}

// errRemoteRef is what noLoader returns for every URL.
var errRemoteRef = errors.New("remote and file references are not loaded")

// noLoader refuses every URL: a requester's schema must be self-contained.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) { return nil, errRemoteRef }

func classifyCompileError(err error) *SchemaError {
	var (
		sve  *jsonschema.SchemaValidationError
		load *jsonschema.LoadURLError
		anf  *jsonschema.AnchorNotFoundError
		pnf  *jsonschema.JSONPointerNotFoundError
	)
	switch {
	case errors.As(err, &sve):
		detail := oneLine(sve.Err.Error())
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			// The leaves say what is wrong where ("at "/type": value must
			// be one of ..."); the tree around them is noise.
			vs := violationsOf(ve)
			parts := make([]string, 0, 3)
			for i, v := range vs {
				if i == 3 {
					parts = append(parts, fmt.Sprintf("and %d more", len(vs)-i))
					break
				}
				parts = append(parts, v.String())
			}
			detail = strings.Join(parts, "; ")
		}
		return &SchemaError{Reason: "invalid schema", Detail: detail, Err: err}
	case errors.As(err, &load):
		return &SchemaError{Reason: "unresolvable $ref", Detail: fmt.Sprintf("%s (%v)", load.URL, load.Err), Err: err}
	case errors.As(err, &anf), errors.As(err, &pnf):
		return &SchemaError{Reason: "unresolvable $ref", Detail: err.Error(), Err: err}
	}
	return &SchemaError{Reason: "invalid schema", Detail: oneLine(err.Error()), Err: err}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.Join(strings.Fields(s), " ")
}

// checkShape enforces MaxDepth, MaxRefs and MaxExpandedNodes on the parsed
// schema document before the compiler sees it.
func checkShape(doc any, l Limits) error {
	refs := 0
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if depth > l.MaxDepth {
			return &SchemaError{Reason: "too deeply nested", Detail: fmt.Sprintf("the limit is %d levels", l.MaxDepth)}
		}
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "$ref" || k == "$dynamicRef" || k == "$recursiveRef" {
					if refs++; refs > l.MaxRefs {
						return &SchemaError{Reason: "too many $refs", Detail: fmt.Sprintf("the limit is %d", l.MaxRefs)}
					}
				}
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
		case []any:
			for _, c := range v {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc, 1); err != nil {
		return err
	}
	if n := expandedSize(doc, l.MaxExpandedNodes+1); n > l.MaxExpandedNodes {
		return &SchemaError{Reason: "too large once $refs are expanded", Detail: fmt.Sprintf("more than %d schema nodes, the limit", l.MaxExpandedNodes)}
	}
	return nil
}

// expandedSize counts the nodes of doc with every local JSON-pointer $ref
// ("#/$defs/x") replaced by its target, recursively; a ref back into a
// target being expanded counts 1 (validation recursion through it is paid
// per level of the instance, not per schema). The count saturates at limit.
func expandedSize(doc any, limit int) int {
	memo := map[string]int{}
	inProgress := map[string]bool{}
	var size func(v any) int
	size = func(v any) int {
		n := 1
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if ref, ok := c.(string); ok && k == "$ref" && strings.HasPrefix(ref, "#") {
					n = satAdd(n, refSize(doc, ref, memo, inProgress, size), limit)
					continue
				}
				n = satAdd(n, size(c), limit)
			}
		case []any:
			for _, c := range v {
				n = satAdd(n, size(c), limit)
			}
		}
		return n
	}
	return size(doc)
}

func refSize(doc any, ref string, memo map[string]int, inProgress map[string]bool, size func(any) int) int {
	if n, ok := memo[ref]; ok {
		return n
	}
	if inProgress[ref] {
		return 1
	}
	target, ok := lookupPointer(doc, strings.TrimPrefix(ref, "#"))
	if !ok {
		return 1 // an anchor or a bad pointer: the compiler decides
	}
	inProgress[ref] = true
	n := size(target)
	delete(inProgress, ref)
	memo[ref] = n
	return n
}

func satAdd(a, b, limit int) int {
	if a+b > limit {
		return limit
	}
	return a + b
}

// lookupPointer resolves a JSON pointer (without the leading '#').
func lookupPointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

var printer = message.NewPrinter(language.English)

// Validate checks v (a value as decoded by encoding/json into any) against
// the schema and returns the violations, sorted by path; an empty slice when
// v is valid.
func (s *Schema) Validate(v any) []Violation {
	if s == nil {
		if _, ok := v.(map[string]any); ok {
			return []Violation{}
		}
		return []Violation{{Message: fmt.Sprintf("got %s, want object", jsonTypeName(v))}}
	}
	err := s.s.Validate(v)
	if err == nil {
		return []Violation{}
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{{Message: err.Error()}}
	}
	return violationsOf(ve)
}

// violationsOf flattens a validation error tree into its leaves, the
// specific failures, deduplicated and sorted by path.
func violationsOf(ve *jsonschema.ValidationError) []Violation {
	var out []Violation
	seen := map[Violation]bool{}
	var leaves func(e *jsonschema.ValidationError)
	leaves = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			v := Violation{Path: pointer(e.InstanceLocation), Message: e.ErrorKind.LocalizedString(printer)}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
			return
		}
		for _, c := range e.Causes {
			leaves(c)
		}
	}
	leaves(ve)
	// The validator walks objects in map order: sort for stable messages.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Message < out[j].Message
	})
	return out
}

func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return sb.String()
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number, int, int64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// ErrNoJSON is returned (wrapped) by ValidateText when the answer holds no
// JSON value at all.
var ErrNoJSON = errors.New("structured: no JSON found in the answer")

// ValidateText extracts the JSON of a model's answer (see [Extract]),
// parses and validates it. raw is the extracted JSON text (what the result's
// json field should carry), value its decoded form. err is non-nil when no
// JSON was found (ErrNoJSON) or it does not parse; violations are then nil.
func (s *Schema) ValidateText(text string) (value any, raw string, violations []Violation, err error) {
	raw, guess, ok := extract(text)
	if !ok {
		if guess == "" || (!strings.ContainsAny(guess, "{[")) {
			return nil, "", nil, ErrNoJSON
		}
		// Report the parse error of what the model meant to be its JSON,
		// so a re-ask can name it ("invalid character '}' ...").
		raw = guess
	}
	if err := json.Unmarshal([]byte(raw), &value); err != nil {
		return nil, raw, nil, fmt.Errorf("structured: the answer is not valid JSON: %w", err)
	}
	return value, raw, s.Validate(value), nil
}
