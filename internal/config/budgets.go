package config

import "github.com/switchyard/switchyard/internal/tenant"

// BudgetLimits returns the tenants' budgets (those that have one), with
// their defaults: what the workers enforce and the console shows.
func (m *Models) BudgetLimits() map[string]tenant.Limit {
	out := map[string]tenant.Limit{}
	for _, name := range m.TenantNames() {
		if b := m.Tenants[name].Budget; b != nil {
			d := b.WithDefaults()
			out[name] = tenant.Limit{Tokens: d.Tokens, CostUSD: d.CostUSD, Window: d.Window}
		}
	}
	return out
}
