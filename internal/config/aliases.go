package config

import (
	"errors"
	"maps"
	"slices"
	"strings"
)

// Alias is another name for a group: a client (the HTTP gateway's `model`,
// for one) may name the group by it. In YAML an alias is either the group's
// name or {group: <name>, hidden: true}; a hidden alias works but is not
// listed (GET /v1/models).
type Alias struct {
	Group  string `yaml:"group"`
	Hidden bool   `yaml:"hidden,omitempty"`
}

// UnmarshalYAML takes the short form (the group's name) or the long one.
func (a *Alias) UnmarshalYAML(unmarshal func(any) error) error {
	var name string
	if err := unmarshal(&name); err == nil {
		*a = Alias{Group: name}
		return nil
	}
	type plain Alias
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	*a = Alias(p)
	return nil
}

// MarshalYAML writes the short form when the alias is listed.
func (a Alias) MarshalYAML() (any, error) {
	if !a.Hidden {
		return a.Group, nil
	}
	type plain Alias
	return plain(a), nil
}

// ModelName is a name a client may ask for: a group's own name or an alias.
type ModelName struct {
	Name   string
	Group  string
	Hidden bool
}

// Resolve returns the group a client's model name means: the group of that
// name, else the group an alias of that name points to.
func (m *Models) Resolve(name string) (group string, ok bool) {
	if _, ok := m.Groups[name]; ok {
		return name, true
	}
	if a, ok := m.Aliases[name]; ok {
		return a.Group, true
	}
	return "", false
}

// ModelNames lists every name Resolve accepts, sorted: each group's own name,
// then the aliases. The group names a LiteLLM file's model names were mapped
// to are hidden: its clients know the model names.
func (m *Models) ModelNames() []ModelName {
	out := make([]ModelName, 0, len(m.Groups)+len(m.Aliases))
	for _, g := range m.groupNames() {
		out = append(out, ModelName{Name: g, Group: g, Hidden: m.unlisted[g]})
	}
	for _, name := range slices.Sorted(maps.Keys(m.Aliases)) {
		a := m.Aliases[name]
		out = append(out, ModelName{Name: name, Group: a.Group, Hidden: a.Hidden})
	}
	return out
}

func (m *Models) validateAliases() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m.Aliases)) {
		a := m.Aliases[name]
		p := "$.aliases." + pathKey(name)
		switch {
		case name == "":
			errs = append(errs, m.errAt("$.aliases", "an alias needs a name"))
		case m.Groups[a.Group] == nil:
			errs = append(errs, m.errAt(p, "alias %q points to %q, which is not a group (groups: %v)", name, a.Group, m.groupNames()))
		case m.Groups[name] != nil && name != a.Group:
			errs = append(errs, m.errAt(p, "alias %q is also the name of a group", name))
		}
	}
	return errors.Join(errs...)
}

// pathKey writes a map key for a YAML path (errAt): quoted when it holds a
// character the path syntax reserves, as model names such as gpt-3.5-turbo
// or openai/gpt-4o do.
func pathKey(k string) string {
	if k != "" && !strings.ContainsAny(k, ".[]*$' ") {
		return k
	}
	return "'" + strings.ReplaceAll(k, "'", `\'`) + "'"
}
