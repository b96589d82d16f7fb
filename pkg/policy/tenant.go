package policy

import (
	"cmp"
	"context"
	"time"
)

// Tenants returns the executor that runs a call on its tenant's own
// executor (a router built with the tenant's keys) when it has one, and on
// def otherwise: a tenant's keys are never used for another tenant's call.
// It is the base of a chain, under the middlewares, so that their work
// (re-asks, budget) happens on the tenant's keys too.
func Tenants(def Executor, own map[string]Executor) Executor {
	if len(own) == 0 {
		return def
	}
	return ExecutorFunc(func(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
		if e, ok := own[c.Tenant]; ok && c.Tenant != "" {
			return e.Execute(ctx, c, emit)
		}
		return def.Execute(ctx, c, emit)
	})
}

// Budget checks and charges tenants' spending; internal/tenant's *Budgets is
// one. Allow returns an error (one that names its wire code, such as
// budget_exceeded) when the tenant may not run another call now.
type Budget interface {
	Allow(ctx context.Context, tenant string) error
	Charge(ctx context.Context, tenant string, tokens int, costUSD float64) error
}

// BudgetOptions configure TenantBudget.
type BudgetOptions struct {
	// Timeout bounds each budget operation (default 5s): a slow store must
	// not hold a call.
	Timeout time.Duration
	// OnChargeError, when set, is told when a finished call could not be
	// charged (the call's result stands).
	OnChargeError func(tenant string, err error)
}

// TenantBudget returns the middleware that asks b before a tenant's call
// runs (a refusal ends the call with b's error, before any provider call)
// and charges the tenant with the call's usage and cost after it ran,
// whatever its outcome. Calls of the anonymous tenant pass through.
func TenantBudget(b Budget, o BudgetOptions) Middleware {
	o.Timeout = cmp.Or(o.Timeout, 5*time.Second)
	return func(next Executor) Executor {
		return ExecutorFunc(func(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
			if c.Tenant == "" || b == nil {
				return next.Execute(ctx, c, emit)
			}
			// The budget's store is asked on a context of its own: a call
			// cancelled or out of time is still charged.
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Timeout)
			err := b.Allow(bctx, c.Tenant)
			cancel()
			if err != nil {
				return &Outcome{Group: c.Group}, err
			}
			out, err := next.Execute(ctx, c, emit)
			if out != nil && (out.Usage.TotalTokens > 0 || out.CostUSD > 0) {
				bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Timeout)
				if cerr := b.Charge(bctx, c.Tenant, out.Usage.TotalTokens, out.CostUSD); cerr != nil && o.OnChargeError != nil {
					o.OnChargeError(c.Tenant, cerr)
				}
				cancel()
			}
			return out, err
		})
	}
}
