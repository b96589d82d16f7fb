package structured

import (
	"bytes"
	"cmp"
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// MaxExpandedNodes bounds the size of the schema with every $ref
	// inlined each time it is used, recursive ones MaxRecursion levels deep.
	// It stops "billion laughs" schemas whose $defs reference each other in
	// layers or in circles, which are small as text but exponential to
	// validate or to answer. Default 100000.
	MaxExpandedNodes int
	// MaxRecursion is how many times a recursive $ref (one back into a
	// schema it is part of) is expanded along one path when counting
	// MaxExpandedNodes. Default 4.
	MaxRecursion int
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
	l.MaxRecursion = cmp.Or(l.MaxRecursion, 4)
	l.CacheSize = cmp.Or(l.CacheSize, 256)
	return l
}

// SchemaError reports a schema that cannot be used: not JSON, not a valid
// JSON Schema, an unresolvable or remote $ref, a $ref cycle (a schema that
// refers back to itself without descending into the value, such as
// {"$ref":"#"}), or over a [Limits] bound. It is
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
	if err := checkGraph(s, c.limits); err != nil {
		return nil, err
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

// checkShape enforces MaxDepth and MaxRefs on the parsed schema document
// before the compiler sees it.
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
	return walk(doc, 1)
}

// checkGraph enforces the limits that need the compiled schema, whose $refs
// (JSON pointers, anchors, $id-relative and dynamic ones) the compiler has
// resolved: no $ref cycle, and the expanded size.
func checkGraph(root *jsonschema.Schema, l Limits) error {
	if s := inPlaceCycle(root); s != nil {
		return &SchemaError{Reason: "$ref cycle", Detail: fmt.Sprintf("%s refers back to itself without descending into the value, so validating it never ends", location(s))}
	}
	e := expansion{limit: l.MaxExpandedNodes, maxRecursion: l.MaxRecursion, onPath: map[*jsonschema.Schema]int{}}
	if !e.walk(root, 0) {
		return &SchemaError{Reason: "too large once $refs are expanded", Detail: fmt.Sprintf("more than %d schema nodes (recursive $refs expanded %d levels deep), the limit", l.MaxExpandedNodes, l.MaxRecursion)}
	}
	return nil
}

// location is a compiled schema's place in the requester's document.
func location(s *jsonschema.Schema) string {
	if loc, ok := strings.CutPrefix(s.Location, rootURL); ok {
		return cmp.Or(loc, "#")
	}
	return s.Location
}

// inPlace calls fn for the subschemas that apply to the same value as s:
// a cycle of these is a schema that validates a value by validating the same
// value against itself, forever.
func inPlace(s *jsonschema.Schema, fn func(*jsonschema.Schema)) {
	for _, c := range []*jsonschema.Schema{s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else} {
		if c != nil {
			fn(c)
		}
	}
	if s.DynamicRef != nil && s.DynamicRef.Ref != nil {
		fn(s.DynamicRef.Ref)
	}
	for _, list := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for _, c := range list {
			fn(c)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.DependentSchemas)) {
		fn(s.DependentSchemas[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.Dependencies)) {
		if c, ok := s.Dependencies[k].(*jsonschema.Schema); ok {
			fn(c)
		}
	}
}

// descending calls fn for the subschemas that apply to values inside the
// one s validates (properties, items, ...).
func descending(s *jsonschema.Schema, fn func(*jsonschema.Schema)) {
	for _, c := range []*jsonschema.Schema{s.PropertyNames, s.UnevaluatedProperties, s.Contains, s.Items2020, s.UnevaluatedItems, s.ContentSchema} {
		if c != nil {
			fn(c)
		}
	}
	for _, v := range []any{s.AdditionalProperties, s.AdditionalItems, s.Items} {
		switch c := v.(type) {
		case *jsonschema.Schema:
			fn(c)
		case []*jsonschema.Schema:
			for _, x := range c {
				fn(x)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		fn(s.Properties[k])
	}
	for _, c := range s.PatternProperties {
		fn(c)
	}
	for _, c := range s.PrefixItems {
		fn(c)
	}
}

// inPlaceCycle returns a schema on a cycle of in-place subschemas reachable
// from root, or nil. Each schema is visited once.
func inPlaceCycle(root *jsonschema.Schema) *jsonschema.Schema {
	const (
		unseen = iota
		active
		done
	)
	state := map[*jsonschema.Schema]int{}
	var found *jsonschema.Schema
	// Every reachable schema starts a search of its in-place subgraph;
	// descending edges only lead to more starting points.
	var reach, search func(s *jsonschema.Schema)
	search = func(s *jsonschema.Schema) {
		switch state[s] {
		case active:
			found = cmp.Or(found, s)
			return
		case done:
			return
		}
		state[s] = active
		inPlace(s, func(c *jsonschema.Schema) {
			if found == nil {
				search(c)
			}
		})
		state[s] = done
	}
	seen := map[*jsonschema.Schema]bool{}
	reach = func(s *jsonschema.Schema) {
		if seen[s] || found != nil {
			return
		}
		seen[s] = true
		search(s)
		inPlace(s, reach)
		descending(s, reach)
	}
	reach(root)
	return found
}

// expansion counts the nodes of a schema with every $ref replaced by its
// target each time it is reached. A $ref back into a schema already being
// expanded (recursion) is expanded again too, up to maxRecursion such
// re-entries along one path: a recursive schema counts as large as an
// answer nesting it that deep is to validate, so that mutually recursive
// definitions, small as text, cannot pass as small.
type expansion struct {
	limit, maxRecursion int
	n                   int
	onPath              map[*jsonschema.Schema]int
}

// walk reports false once the count passes the limit; it stops there, so it
// costs at most limit steps.
func (e *expansion) walk(s *jsonschema.Schema, recursion int) bool {
	if e.n++; e.n > e.limit {
		return false
	}
	if e.onPath[s] > 0 {
		if recursion++; recursion > e.maxRecursion {
			return true
		}
	}
	e.onPath[s]++
	defer func() { e.onPath[s]-- }()
	ok := true
	visit := func(c *jsonschema.Schema) {
		if ok {
			ok = e.walk(c, recursion)
		}
	}
	inPlace(s, visit)
	descending(s, visit)
	return ok
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
