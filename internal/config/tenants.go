package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Tenant is one customer of the fleet: its own provider keys and budget.
//
// A job's tenant is the one whose subjects it was published on
// (llm.t.<tenant>.req.<group>), which the tenant's NATS permissions force
// (docs/security.md); a body naming another tenant is refused. On a
// deployment for which the tenant has a key, its jobs use that key and only
// that key; a tenant never uses another tenant's key (jobs of tenants
// without a key of their own use the deployment's api_key).
type Tenant struct {
	// Keys maps a deployment name to this tenant's API key for it.
	Keys map[string]Secret `yaml:"keys"`
	// Budget, when set, stops the tenant's jobs with budget_exceeded once
	// spent within the current window, before any provider call.
	Budget *Budget `yaml:"budget"`
}

// Budget limits a tenant's spending per window, fleet-wide.
type Budget struct {
	Tokens  int64         `yaml:"tokens"`   // prompt + completion tokens; 0: no token limit
	CostUSD float64       `yaml:"cost_usd"` // 0: no cost limit
	Window  time.Duration `yaml:"window"`   // default 24h; windows are aligned to the epoch
}

// WithDefaults returns the budget with its defaults applied.
func (b Budget) WithDefaults() Budget {
	if b.Window == 0 {
		b.Window = 24 * time.Hour
	}
	return b
}

func (m *Models) resolveTenants(lookup func(string) (string, bool)) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m.Tenants)) {
		t := m.Tenants[name]
		if t == nil {
			continue
		}
		for dep, k := range t.Keys {
			v, err := expandSecret(k.Reveal(), lookup)
			if err != nil {
				errs = append(errs, m.errAt("$.tenants."+name+".keys."+dep, "%v", err))
			}
			t.Keys[dep] = Secret(v)
		}
	}
	return errors.Join(errs...)
}

func (m *Models) validateTenants() error {
	var errs []error
	names := map[string]bool{}
	for _, g := range m.Groups {
		if g == nil {
			continue
		}
		for _, d := range g.Deployments {
			if d != nil {
				names[d.Name] = true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Tenants)) {
		t := m.Tenants[name]
		tp := "$.tenants." + name
		switch {
		case !bus.ValidTenant(name):
			errs = append(errs, m.errAt(tp, "tenant name %q must be [a-z0-9][a-z0-9_-]{0,31}, exactly (no capitals, no spaces)", name))
		case name == UnknownDeny || name == UnknownAnonymous:
			errs = append(errs, m.errAt(tp, "%q is a value of unknown_tenants, not a tenant name", name))
		}
		if t == nil {
			errs = append(errs, m.errAt(tp, "empty tenant"))
			continue
		}
		for _, dep := range slices.Sorted(maps.Keys(t.Keys)) {
			if !names[dep] {
				errs = append(errs, m.errAt(tp+".keys."+dep, "no deployment is named %q", dep))
			}
		}
		if b := t.Budget; b != nil {
			if b.Tokens < 0 || b.CostUSD < 0 || b.Window < 0 {
				errs = append(errs, m.errAt(tp+".budget", "limits and window must not be negative"))
			}
			if b.Tokens == 0 && b.CostUSD == 0 {
				errs = append(errs, m.errAt(tp+".budget", "set tokens, cost_usd or both"))
			}
		}
	}
	switch u := m.UnknownTenants; {
	case u == "", u == UnknownDeny, u == UnknownAnonymous:
	case m.Tenants[u] == nil:
		errs = append(errs, m.errAt("$.unknown_tenants", "%q is neither deny, anonymous nor a tenant of this file", u))
	}
	return errors.Join(errs...)
}

// Values of unknown_tenants besides a tenant's name.
const (
	UnknownDeny      = "deny"
	UnknownAnonymous = "anonymous"
)

// AnonymousJobs says what jobs on the anonymous (v1) subjects run as, from
// unknown_tenants: refused (deny), or as tenant ("" the anonymous tenant).
func (m *Models) AnonymousJobs() (tenant string, deny bool) {
	switch u := m.UnknownTenants; u {
	case UnknownAnonymous:
		return "", false
	case UnknownDeny:
		return "", true
	case "":
		return "", len(m.Tenants) > 0
	default:
		return u, false
	}
}

// TenantNames returns the names of the configured tenants, sorted.
func (m *Models) TenantNames() []string { return slices.Sorted(maps.Keys(m.Tenants)) }

// BuildTenant returns the groups a tenant's jobs run on: base (from Build)
// with the tenant's own key on every deployment it has one for. Those
// deployments are renamed <name>@<tenant> so that their breakers and rate
// counters (per key, at the vendor) are the tenant's own; the others are
// shared with base, provider instance included.
func (m *Models) BuildTenant(ctx context.Context, tenant string, base []policy.Group) ([]policy.Group, error) {
	t, ok := m.Tenants[tenant]
	if !ok || t == nil {
		return nil, fmt.Errorf("config: unknown tenant %q", tenant)
	}
	specs := map[string]*Deployment{}
	for _, g := range m.Groups {
		for _, d := range g.Deployments {
			specs[d.Name] = d
		}
	}
	var errs []error
	out := make([]policy.Group, 0, len(base))
	for _, g := range base {
		tg := g
		tg.Deployments = nil
		for _, d := range g.Deployments {
			key, has := t.Keys[d.Name]
			if !has {
				tg.Deployments = append(tg.Deployments, d)
				continue
			}
			spec := *specs[d.Name]
			spec.APIKey = key
			p, err := spec.provider(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("config: tenant %s, deployment %s: %w", tenant, d.Name, err))
				continue
			}
			d.Provider = p
			d.Name = d.Name + "@" + tenant
			tg.Deployments = append(tg.Deployments, d)
		}
		out = append(out, tg)
	}
	return out, errors.Join(errs...)
}
