package policy

import (
	"fmt"
	"math"
	"slices"
)

// What a call costs, before it is made: the cost strategy orders a group's
// deployments by it, and a call's MaxCostUSD skips the deployments that may
// charge more (see Call.MaxCostUSD). Both read the deployment's resolved
// prices (ResolveModel) and the request's estimated prompt
// (catalog.EstimateTokens): an estimate, not a tokenizer count.

// expectedCost is what the cost strategy orders by: the prompt at d's input
// price plus the answer at its output price, the answer counted as the
// request's max_tokens or, when it has none, as long as the prompt (so that
// without max_tokens the order is that of the price per token, input plus
// output). +Inf when d's price is unknown: tried last.
func (x *execution) expectedCost(d *deployment) float64 {
	if math.IsInf(d.price, 1) {
		return d.price
	}
	out := x.req.MaxTokens
	if out <= 0 {
		out = x.prompt
	}
	return (float64(x.prompt)*d.info.InputPerMTok + float64(out)*d.info.OutputPerMTok) / 1e6
}

// maxCost is the most a call on d may charge: the prompt at d's input price
// plus the longest answer it may get (the request's max_tokens, else the
// model's output limit) at d's output price. ok is false when that cannot
// be known: an unknown price, or no bound on the answer of a model whose
// output is not free.
func (x *execution) maxCost(d *deployment) (usd float64, ok bool) {
	if math.IsInf(d.price, 1) {
		return 0, false
	}
	out := x.req.MaxTokens
	if out <= 0 {
		out = d.info.MaxOutput
	}
	if out <= 0 && d.info.OutputPerMTok > 0 {
		return 0, false
	}
	return (float64(x.prompt)*d.info.InputPerMTok + float64(out)*d.info.OutputPerMTok) / 1e6, true
}

// affordable reports whether d stays within the call's MaxCostUSD (always,
// without one).
func (x *execution) affordable(d *deployment) bool {
	if x.maxCostUSD <= 0 {
		return true
	}
	usd, ok := x.maxCost(d)
	return ok && usd <= x.maxCostUSD
}

// cheapest returns the lowest bound of g's deployments that can serve the
// request, for the error of a group none of which is affordable (known
// false when no bound is known).
func (x *execution) cheapest(g *group) (usd float64, known bool) {
	usd = math.Inf(1)
	for _, d := range g.deps {
		if c, ok := x.maxCost(d); ok && d.serves(x.needs) {
			usd, known = min(usd, c), true
		}
	}
	return usd, known
}

// BudgetError is a call refused before any provider call because every
// deployment that could serve it may cost more than its MaxCostUSD (wire
// code budget_exceeded).
type BudgetError struct {
	MaxCostUSD float64
	// Estimate is the lowest upper bound of the groups tried (0 when no
	// bound could be computed: unknown prices or no max_tokens).
	Estimate float64
	Groups   []string
}

func (e *BudgetError) Error() string {
	if e.Estimate == 0 {
		return fmt.Sprintf("max_cost_usd %g: no deployment of %v has a known price and answer bound (set max_tokens, or the deployments' prices)", e.MaxCostUSD, e.Groups)
	}
	return fmt.Sprintf("max_cost_usd %g: the cheapest deployment of %v may cost $%.6f (estimated prompt at its input price plus max_tokens, or the model's output limit, at its output price)", e.MaxCostUSD, e.Groups, e.Estimate)
}

// WireCode implements WireCoder.
func (e *BudgetError) WireCode() (string, bool) { return "budget_exceeded", false }

// overBudget records that g was skipped because none of its deployments is
// affordable and returns the error that says so.
func (x *execution) overBudget(g *group) error {
	x.unaffordable = append(x.unaffordable, g.Name)
	x.lastSkipped = g.Name
	if usd, ok := x.cheapest(g); ok && (x.budgetErr.Estimate == 0 || usd < x.budgetErr.Estimate) {
		x.budgetErr.Estimate = usd
	}
	x.budgetErr.MaxCostUSD = x.maxCostUSD
	x.budgetErr.Groups = slices.Clone(x.unaffordable)
	e := x.budgetErr
	return &e
}

// anyAffordable reports whether some deployment of g can serve the request
// within its MaxCostUSD.
func (x *execution) anyAffordable(g *group) bool {
	return slices.ContainsFunc(g.deps, func(d *deployment) bool { return d.serves(x.needs) && x.affordable(d) })
}
