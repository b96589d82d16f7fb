package worker

import (
	"math"

	"github.com/switchyard/switchyard/pkg/bus"
)

// checkCost refuses a max_cost_usd that bounds nothing it could mean.
func checkCost(r *bus.Request) error {
	if c := r.MaxCostUSD; c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
		return invalidf("max_cost_usd: %v must be a positive number of US dollars (or absent)", c)
	}
	return nil
}
