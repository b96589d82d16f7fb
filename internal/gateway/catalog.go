package gateway

import (
	"fmt"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Model is one model group as the gateway offers it: the group's name and
// the other names a request's model may use for it (e.g. "gpt-4o-mini" for
// a group named "fast").
type Model struct {
	Group   string
	Aliases []string
}

// Catalog resolves a request's model to its group. It is immutable and safe
// for concurrent use.
type Catalog struct {
	models []Model
	byName map[string]string
}

// NewCatalog checks that no name is used twice (as a group or an alias).
func NewCatalog(models []Model) (*Catalog, error) {
	c := &Catalog{byName: map[string]string{}}
	add := func(name, group string) error {
		if name == "" || strings.TrimSpace(name) != name {
			return fmt.Errorf("gateway: group %s: model name %q is empty or padded", group, name)
		}
		if prev, dup := c.byName[name]; dup {
			return fmt.Errorf("gateway: model name %q names both group %s and group %s", name, prev, group)
		}
		c.byName[name] = group
		return nil
	}
	for _, m := range models {
		if !bus.ValidGroup(m.Group) {
			return nil, fmt.Errorf("gateway: invalid group name %q", m.Group)
		}
		if err := add(m.Group, m.Group); err != nil {
			return nil, err
		}
	}
	for _, m := range models {
		for _, a := range m.Aliases {
			if err := add(a, m.Group); err != nil {
				return nil, err
			}
		}
		c.models = append(c.models, Model{Group: m.Group, Aliases: slices.Clone(m.Aliases)})
	}
	slices.SortFunc(c.models, func(a, b Model) int { return strings.Compare(a.Group, b.Group) })
	return c, nil
}

// Resolve returns the group a model names.
func (c *Catalog) Resolve(model string) (string, bool) {
	g, ok := c.byName[model]
	return g, ok
}

// Models returns the groups, sorted by name.
func (c *Catalog) Models() []Model { return c.models }
