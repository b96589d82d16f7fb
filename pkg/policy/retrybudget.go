package policy

import (
	"cmp"

	"github.com/failsafe-go/failsafe-go/budget"
)

// RetryBudgetOptions bound a group's retries (and hedges) to a share of its
// calls, with failsafe-go's budget. A retry (or hedge) may start when, with
// it, the retries and hedges in flight on this router are at most
//
//	max(MinConcurrency, MaxRate x requests in flight)
//
// of the group. A request in flight counts once, whether it is in its first
// call, in a retry, in a race with its hedges or waiting for a backoff; so
// when calls last about as long as each other and backoffs are short beside
// them, retries and hedges are at most MaxRate of the calls, or the
// MinConcurrency floor when the group has few requests in flight. A
// request waiting in a backoff or for a deployment counts without calling.
//
// A retry the budget refuses does not happen: the request fails with its
// last failure (or goes on to the group's fallbacks), so an outage does not
// multiply the calls a deployment gets. A hedge it refuses does not start.
//
// The budget is per router (per worker). Because it bounds a ratio, N
// workers that each keep their retries within MaxRate of their requests
// keep the fleet's within MaxRate of the fleet's, with no shared counter
// (and no store to fail); the floor is per worker: the fleet's retries and
// hedges in flight stay within MaxRate of its requests in flight, or
// N x MinConcurrency.
type RetryBudgetOptions struct {
	// MaxRate is the share (0..1] of the requests in flight that may be
	// in a retry or a hedge (default 0.2; -1 disables the budget).
	MaxRate float64 `yaml:"max_rate"`
	// MinConcurrency retries or hedges may run at once whatever the rate
	// (default 3).
	MinConcurrency int `yaml:"min_concurrency"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o RetryBudgetOptions) WithDefaults() RetryBudgetOptions {
	o.MaxRate = cmp.Or(o.MaxRate, 0.2)
	o.MinConcurrency = cmp.Or(o.MinConcurrency, 3)
	return o
}

func (o RetryBudgetOptions) validate() error {
	switch {
	case o.MaxRate != -1 && (o.MaxRate < 0 || o.MaxRate > 1):
		return optionError("retry.budget.max_rate", "%v not in (0,1] (or -1: no budget)", o.MaxRate)
	case o.MinConcurrency < 0:
		return optionError("retry.budget.min_concurrency", "%d < 0", o.MinConcurrency)
	}
	return nil
}

// newBudget builds the budget of o, with defaults (nil: disabled).
func newBudget(o RetryBudgetOptions) budget.Budget {
	if o.MaxRate < 0 {
		return nil
	}
	b := budget.NewBuilder().WithMaxRate(failsafeRate(o.MaxRate)).WithMinConcurrency(uint(o.MinConcurrency) + 1).Build()
	return countingBudget{b.(budgetInternals)}
}

// failsafeRate is the rate to give failsafe-go's budget for retries and
// hedges to be at most share of the requests in flight. failsafe-go counts
// as executions each request's run (its retry or hedge policy records one
// per run) and each retry or hedge while it runs, so a request in a retry
// counts twice; it admits a retry while retries/executions <= its rate:
// k/(n+k) <= rate with k retries and n requests, that is k <= n x
// rate/(1-rate). For k <= share x n the rate is share/(1+share): 1/6 for
// the default 20% (given 0.2 as is, it admits 25% of the requests).
func failsafeRate(share float64) float64 {
	return share / (1 + share)
}

// countingBudget is failsafe-go's budget with the retry (or hedge) it
// admits counted in its check: failsafe-go compares the retries in flight
// before it adds the one it admits, so they could reach share x n + 1.
// countingBudget takes that permit first and then asks for a second one,
// which failsafe-go grants only if the first kept the budget; the second
// is given back at once, and the first too when the second is refused.
// Its floor is one above min_concurrency for the same reason. So a permit
// is granted when, with it, at most max(min_concurrency, share x n)
// retries and hedges are in flight.
type countingBudget struct{ budgetInternals }

func (b countingBudget) TryAcquirePermit() bool {
	if !b.budgetInternals.TryAcquirePermit() {
		return false
	}
	ok := b.budgetInternals.TryAcquirePermit()
	// One goes back: the probe, or the first, which did not keep the budget.
	b.budgetInternals.ReleasePermit()
	return ok
}
