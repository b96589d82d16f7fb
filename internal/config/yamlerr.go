package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/switchyard/switchyard/internal/spell"
)

// The YAML decoder reports a bad value in Go's terms ("cannot unmarshal
// uint64 into Go struct field Models.Groups of type time.Duration") over
// several lines of source excerpt. decodeError says the same in the terms of
// the file: the file, line and key, what was written and what is wanted
// ("ttft: 10 needs a unit, for example 10s"), a "did you mean" for a
// misspelt key, on one line.

// decodeError rewrites an error of yaml.Decode of src into Models.
func (m *Models) decodeError(err error) error {
	nodes := keyPaths(m.src)
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		tk := ye.GetToken()
		n, ok := nodes.at(tk)
		if !ok {
			return m.lineErr(tk.Position.Line, "%s", ye.GetMessage())
		}
		if _, ok := errors.AsType[*yaml.UnknownFieldError](err); ok {
			return m.unknownKey(n)
		}
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			return m.lineErr(n.line, "%s: %s", n.path, wantValue(te.DstType, tk.Value))
		}
		return m.lineErr(n.line, "%s: %s", n.path, ye.GetMessage())
	}
	// Errors without a position (a quoted duration without a unit comes
	// back from time.ParseDuration as is): find the value that fails.
	for _, n := range nodes {
		if n.value == nil {
			continue
		}
		if t, ok := typeAt(reflect.TypeFor[Models](), n.segs); ok && t == reflect.TypeFor[time.Duration]() {
			if _, perr := time.ParseDuration(n.value.Value); perr != nil {
				return m.lineErr(n.line, "%s: %s", n.path, wantValue(t, n.value.Value))
			}
		}
	}
	return fmt.Errorf("config: %s: %v", m.path, err)
}

func (m *Models) lineErr(line int, format string, args ...any) error {
	return fmt.Errorf("config: %s:%d: %s", m.path, line, fmt.Sprintf(format, args...))
}

// unknownKey names the key's place, and the key probably meant or, when
// none is close, the keys that are valid there.
func (m *Models) unknownKey(n keyNode) error {
	parent := n.segs[:len(n.segs)-1]
	key := n.segs[len(n.segs)-1]
	where := pathString(parent)
	if where == "" {
		where = "the top level"
	}
	valid := []string(nil)
	if t, ok := typeAt(reflect.TypeFor[Models](), parent); ok {
		valid = yamlKeys(t)
	}
	if s, ok := spell.Closest(key, valid); ok {
		return m.lineErr(n.line, "%s: unknown key %q; did you mean %q?", where, key, s)
	}
	return m.lineErr(n.line, "%s: unknown key %q (valid keys: %s)", where, key, strings.Join(valid, ", "))
}

// wantValue says what a value of type t looks like, given what was written.
func wantValue(t reflect.Type, got string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		if _, err := strconv.ParseFloat(got, 64); err == nil {
			return fmt.Sprintf("%s needs a unit, for example %ss", got, got)
		}
		return fmt.Sprintf("%q is not a duration (for example 500ms, 30s, 5m, 1h30m)", got)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return fmt.Sprintf("%q is not a whole number", got)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return fmt.Sprintf("%q is not a number", got)
	case t.Kind() == reflect.Bool:
		return fmt.Sprintf("%q is not true or false", got)
	case t.Kind() == reflect.String:
		return fmt.Sprintf("%q: want a single value, not a list or a map", got)
	case t.Kind() == reflect.Slice:
		return fmt.Sprintf("%q: want a list", got)
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return fmt.Sprintf("%q: want a map of keys", got)
	}
	return fmt.Sprintf("%q is not a valid %s", got, t)
}

// keyNode is one key of the file and the place it sits at.
type keyNode struct {
	segs  []string // groups, g, timeouts, ttft; a list item is [0]
	path  string   // groups.g.timeouts.ttft
	line  int
	key   *token.Token
	value *token.Token // the scalar value, if it is one
}

type keyNodes []keyNode

// at returns the key whose key or scalar value is tk.
func (ns keyNodes) at(tk *token.Token) (keyNode, bool) {
	for _, n := range ns {
		for _, t := range []*token.Token{n.key, n.value} {
			if t != nil && t.Position.Line == tk.Position.Line && t.Position.Column == tk.Position.Column {
				return n, true
			}
		}
	}
	return keyNode{}, false
}

// keyPaths lists every key of a YAML document with its path.
func keyPaths(src []byte) keyNodes {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil
	}
	var out keyNodes
	var walk func(n ast.Node, segs []string)
	walk = func(n ast.Node, segs []string) {
		switch n := n.(type) {
		case *ast.DocumentNode:
			walk(n.Body, segs)
		case *ast.MappingNode:
			for _, v := range n.Values {
				walk(v, segs)
			}
		case *ast.MappingValueNode:
			k := strings.TrimSpace(n.Key.String())
			s := append(append([]string(nil), segs...), k)
			kn := keyNode{segs: s, path: pathString(s), line: n.Key.GetToken().Position.Line, key: n.Key.GetToken()}
			if sc, ok := n.Value.(ast.ScalarNode); ok {
				kn.value = sc.GetToken()
			}
			out = append(out, kn)
			walk(n.Value, s)
		case *ast.SequenceNode:
			for i, v := range n.Values {
				walk(v, append(append([]string(nil), segs...), fmt.Sprintf("[%d]", i)))
			}
		case *ast.AnchorNode:
			walk(n.Value, segs)
		case *ast.TagNode:
			walk(n.Value, segs)
		}
	}
	for _, d := range f.Docs {
		walk(d, nil)
	}
	return out
}

// pathString writes [groups g deployments [0] name] as groups.g.deployments[0].name.
func pathString(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// typeAt follows a key path through the Go types of the model file: a key
// of a struct is its yaml tag (inline structs included), any key of a map
// and any index of a list lead to the element type.
func typeAt(t reflect.Type, segs []string) (reflect.Type, bool) {
	for _, s := range segs {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Slice:
			if !strings.HasPrefix(s, "[") {
				return nil, false
			}
			t = t.Elem()
		case reflect.Struct:
			f, ok := yamlField(t, s)
			if !ok {
				return nil, false
			}
			t = f.Type
		default:
			return nil, false
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, true
}

// keyField is a struct field and its yaml key.
type keyField struct {
	key   string
	field reflect.StructField
}

// yamlFields lists the keyed fields of struct t, inline structs' included,
// in declaration order.
func yamlFields(t reflect.Type) []keyField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []keyField
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case tag == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			out = append(out, yamlFields(f.Type)...)
		case tag != "":
			out = append(out, keyField{tag, f})
		}
	}
	return out
}

// yamlField finds the field of struct t whose yaml key is name.
func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, kf := range yamlFields(t) {
		if kf.key == name {
			return kf.field, true
		}
	}
	return reflect.StructField{}, false
}

// yamlKeys lists the yaml keys of struct t (inline structs included), in
// declaration order.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for _, kf := range yamlFields(t) {
		out = append(out, kf.key)
	}
	return out
}

// KeyPaths lists every key of the model file as a path, for its reference
// (docs/configuration.md, whose test checks it has a row for each):
// groups.<group>.strategy, groups.<group>.deployments[].mock.script[].error,
// ... A map of structs is written <name> (its key, singular), a list of
// structs [].
func KeyPaths() []string {
	leaf := map[reflect.Type]bool{reflect.TypeFor[time.Duration](): true, reflect.TypeFor[Secret](): true}
	var out []string
	var walk func(t reflect.Type, prefix string, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, prefix string, seen map[reflect.Type]bool) {
		t = deref(t)
		if seen[t] {
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for _, kf := range yamlFields(t) {
			path := prefix + kf.key
			out = append(out, path)
			ft := deref(kf.field.Type)
			switch {
			case leaf[ft]:
			case ft.Kind() == reflect.Struct:
				walk(ft, path+".", seen)
			case ft.Kind() == reflect.Slice && deref(ft.Elem()).Kind() == reflect.Struct:
				walk(ft.Elem(), path+"[].", seen)
			case ft.Kind() == reflect.Map && deref(ft.Elem()).Kind() == reflect.Struct:
				walk(ft.Elem(), path+".<"+singular(kf.key)+">.", seen)
			}
		}
	}
	walk(reflect.TypeFor[Models](), "", map[reflect.Type]bool{})
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func singular(s string) string {
	if s == "aliases" {
		return "alias"
	}
	return strings.TrimSuffix(s, "s")
}
