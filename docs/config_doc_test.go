package docs

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
)

// modelKeys lists every key of the model file as a path: groups.<group>.strategy,
// groups.<group>.deployments[].mock.script[].error, ... (maps of structs
// are <name>, lists of structs []).
func modelKeys() []string {
	var out []string
	leaf := map[reflect.Type]bool{reflect.TypeFor[time.Duration](): true, reflect.TypeFor[config.Secret](): true}
	var walk func(t reflect.Type, prefix string, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, prefix string, seen map[reflect.Type]bool) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if seen[t] {
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			f := t.Field(i)
			tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if strings.Contains(opts, "inline") {
				walk(f.Type, prefix, seen)
				continue
			}
			if tag == "" {
				continue
			}
			path := prefix + tag
			out = append(out, path)
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case leaf[ft]:
			case ft.Kind() == reflect.Struct:
				walk(ft, path+".", seen)
			case ft.Kind() == reflect.Slice && deref(ft.Elem()).Kind() == reflect.Struct:
				walk(ft.Elem(), path+"[].", seen)
			case ft.Kind() == reflect.Map && deref(ft.Elem()).Kind() == reflect.Struct:
				walk(ft.Elem(), path+".<"+singular(tag)+">.", seen)
			}
		}
	}
	walk(reflect.TypeFor[config.Models](), "", map[reflect.Type]bool{})
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

// TestConfigurationDocListsEveryKey: every key of the model file has a row
// in docs/configuration.md, so a key added to the config structs without
// documentation fails here.
func TestConfigurationDocListsEveryKey(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "configuration.md"))
	var missing []string
	for _, k := range modelKeys() {
		if !strings.Contains(doc, "| `"+k+"` |") {
			missing = append(missing, k)
		}
	}
	require.Empty(t, missing, "configuration.md has no row for these model-file keys")
}

// TestConfigurationDocListsEveryVariable: every environment variable has a
// row with its default.
func TestConfigurationDocListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "configuration.md"))
	for _, v := range config.Variables() {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(v.Name) + "` \\|.*$").FindString(doc)
		require.NotEmpty(t, row, "configuration.md has no row for %s", v.Name)
		if v.Default != "" {
			require.Contains(t, row, "`"+v.Default+"`", "the row of %s does not state its default", v.Name)
		}
		require.Contains(t, row, "| "+v.Type+" |", "the row of %s does not state its type (%s)", v.Name, v.Type)
	}
}
