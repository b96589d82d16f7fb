package gateway

import (
	"fmt"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Model is a name a request's model may use: a group's own name, or an
// alias of it (e.g. "gpt-4o-mini" for a group named "fast"). A hidden name
// works but is not listed by GET /v1/models.
type Model struct {
	Name   string
	Group  string
	Hidden bool
}

// Catalog resolves a request's model to its group. It is immutable and safe
// for concurrent use.
type Catalog struct {
	models []Model
	byName map[string]string
}

// NewCatalog checks that each name is used once and names a valid group.
// The order of models is the order GET /v1/models lists them in.
func NewCatalog(models []Model) (*Catalog, error) {
	c := &Catalog{byName: map[string]string{}}
	for _, m := range models {
		switch {
		case !bus.ValidGroup(m.Group):
			return nil, fmt.Errorf("gateway: model %q: invalid group name %q", m.Name, m.Group)
		case m.Name == "":
			return nil, fmt.Errorf("gateway: group %s: empty model name", m.Group)
		}
		if prev, dup := c.byName[m.Name]; dup {
			return nil, fmt.Errorf("gateway: model name %q names both group %s and group %s", m.Name, prev, m.Group)
		}
		c.byName[m.Name] = m.Group
		c.models = append(c.models, m)
	}
	return c, nil
}

// Resolve returns the group a model names.
func (c *Catalog) Resolve(model string) (string, bool) {
	g, ok := c.byName[model]
	return g, ok
}

// Models returns the names that are listed (not hidden).
func (c *Catalog) Models() []Model {
	out := make([]Model, 0, len(c.models))
	for _, m := range c.models {
		if !m.Hidden {
			out = append(out, m)
		}
	}
	return out
}
