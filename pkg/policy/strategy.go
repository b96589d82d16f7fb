package policy

import (
	"cmp"
	"slices"
	"time"
)

// order returns g's deployments in the order its strategy prefers them for
// x's request.
func (r *Router) order(g *group, x *execution) []*deployment {
	ds := slices.Clone(g.deps)
	switch g.opts.Strategy {
	case StrategyWeighted:
		byWeightedShuffle(ds, r.rng)
	case StrategyLeastBusy:
		in := map[*deployment]int{}
		for _, d := range ds {
			in[d], _, _, _, _ = d.state.snapshot()
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(in[a], in[b]) })
	case StrategyLowestLatency:
		lat := map[*deployment]time.Duration{}
		for _, d := range ds {
			_, _, _, t, measured := d.state.snapshot()
			if measured {
				lat[d] = t
			} else {
				lat[d] = -1 // measure the unknown first
			}
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(lat[a], lat[b]) })
	case StrategyCost:
		est := make(map[*deployment]float64, len(ds))
		for _, d := range ds {
			est[d] = x.expectedCost(d)
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(est[a], est[b]) })
	case StrategyUsageBased:
		use := map[*deployment]float64{}
		for _, d := range ds {
			use[d] = d.usage()
		}
		slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(use[a], use[b]) })
	}
	// Priority is a tier for every strategy: the strategy's order holds
	// within a tier (for the priority strategy, config order).
	slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(a.opts.Priority, b.opts.Priority) })
	return ds
}

// byWeightedShuffle puts ds in a weighted random order
// (Efraimidis-Spirakis).
func byWeightedShuffle(ds []*deployment, rng *lockedRand) {
	keys := make(map[*deployment]float64, len(ds))
	for _, d := range ds {
		keys[d] = -rng.ExpFloat64() / float64(max(d.opts.Weight, 1))
	}
	slices.SortStableFunc(ds, func(a, b *deployment) int { return cmp.Compare(keys[b], keys[a]) })
}

// usage is the fraction of d's rpm or tpm used in this minute, whichever is
// higher; an unlimited deployment counts its tokens, so that the least used
// goes first.
func (d *deployment) usage() float64 {
	_, reqs, toks, _, _ := d.state.snapshot()
	if d.opts.RPM == 0 && d.opts.TPM == 0 {
		return float64(toks) / 1e9
	}
	var u float64
	if d.opts.RPM > 0 {
		u = max(u, float64(reqs)/float64(d.opts.RPM))
	}
	if d.opts.TPM > 0 {
		u = max(u, float64(toks)/float64(d.opts.TPM))
	}
	return u
}
