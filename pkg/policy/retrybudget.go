package policy

import (
	"cmp"
	"fmt"

	"github.com/failsafe-go/failsafe-go/budget"
)

// RetryBudgetOptions bound a group's retries (and hedges) to a share of its calls,
// with failsafe-go's budget: a retry (or hedge) may start while at most
// MaxRate of the group's executions in flight on this router are retries or
// hedges, or while fewer than MinConcurrency are. A retry the budget refuses
// does not happen: the request fails with its last failure (or goes on to
// the group's fallbacks), so an outage does not multiply the calls a
// deployment gets.
//
// The budget is per router (per worker). Because it bounds a ratio, N
// workers that each keep their retries under MaxRate of their executions
// keep the fleet's under MaxRate of the fleet's, with no shared counter
// (and no store to fail): the fleet's retries in flight stay within
// max(MaxRate of its calls in flight, N x MinConcurrency).
type RetryBudgetOptions struct {
	// MaxRate is the share (0..1] of executions in flight that may be
	// retries or hedges (default 0.2; -1 disables the budget).
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
		return fmt.Errorf("retry.budget.max_rate: %v not in (0,1] (or -1: no budget)", o.MaxRate)
	case o.MinConcurrency < 0:
		return fmt.Errorf("retry.budget.min_concurrency: %d < 0", o.MinConcurrency)
	}
	return nil
}

// newBudget builds the budget of o, with defaults (nil: disabled).
func newBudget(o RetryBudgetOptions) budget.Budget {
	if o.MaxRate < 0 {
		return nil
	}
	return budget.NewBuilder().WithMaxRate(o.MaxRate).WithMinConcurrency(uint(o.MinConcurrency)).Build()
}
