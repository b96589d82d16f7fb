package policy

import (
	"context"
	"slices"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/fallback"

	"github.com/switchyard/switchyard/pkg/llm"
)

// chain runs the request on g and, when g fails in a way its options send
// elsewhere, on its fallback chain. Each link is a failsafe-go fallback
// policy whose function runs the next group's chain, so a group reached by
// a fallback falls back by its own lists; no group is visited twice.
func (x *execution) chain(ctx context.Context, g *group) (*Outcome, error) {
	x.visited[g.Name] = true
	fb := fallback.NewBuilderWithFunc(func(e failsafe.Execution[*Outcome]) (*Outcome, error) {
		return x.fallBack(ctx, g, e.LastError())
	}).HandleIf(func(_ *Outcome, err error) bool {
		return err != nil && x.fallsBack(ctx, g, err)
	}).Build()
	// No context for the fallback's executor: it never waits, and a
	// cancelled one would replace the group's failure by ctx's error.
	return failsafe.With(fb).Get(func() (*Outcome, error) { return x.group(ctx, g) })
}

// group runs g, or skips it when none of its deployments can take what the
// request needs (tools, images).
func (x *execution) group(ctx context.Context, g *group) (*Outcome, error) {
	if caps := g.missing(x.needs); caps != nil {
		x.incapable = append(x.incapable, g.Name)
		for _, c := range caps {
			if !slices.Contains(x.missingCaps, c) {
				x.missingCaps = append(x.missingCaps, c)
			}
		}
		x.lastSkipped = g.Name
		return nil, missingCapability(caps, []string{g.Name})
	}
	if x.maxCostUSD > 0 && !x.anyAffordable(g) {
		return nil, x.overBudget(g)
	}
	res, err := x.retry(ctx, g)
	if err != nil {
		x.lastErr = err
		return nil, err
	}
	res.Group = g.Name
	return res, nil
}

// fallsBack reports whether g's failure err goes on to g's fallbacks: a
// skipped group always does; a failed one unless the caller gave up or the
// error table says fail, which also ends the rest of the chain.
func (x *execution) fallsBack(ctx context.Context, g *group, err error) bool {
	if x.skipped(g) {
		return true
	}
	if ctx.Err() != nil || g.opts.action(llm.KindOf(err)) == ActionFail {
		x.halted = true
		return false
	}
	return true
}

// fallBack tries g's fallback list for err in order, depth first as
// LiteLLM's router does: each fallback group with its own fallbacks before
// the next of the list; a group the chain already tried is passed over, and
// max_fallbacks (the requested group's) bounds the groups tried.
func (x *execution) fallBack(ctx context.Context, g *group, err error) (*Outcome, error) {
	k := llm.KindOf(err)
	list := g.opts.Fallbacks
	switch k {
	case llm.KindContextWindow:
		list = g.opts.ContextWindowFallbacks
	case llm.KindContentPolicy:
		list = g.opts.ContentPolicyFallbacks
	}
	for _, name := range list {
		if x.visited[name] {
			continue
		}
		if x.halted || x.maxFallbacks > 0 && x.out.Fallbacks >= x.maxFallbacks {
			break
		}
		next := x.cfg.groups[name]
		x.out.Fallbacks++
		x.emit(Event{Type: EventFallback, Group: next.Name, Code: llm.KindOf(err).String(), Reason: errText(err), Err: err})
		res, ferr := x.chain(ctx, next)
		if ferr == nil {
			return res, nil
		}
		err = ferr
	}
	return nil, x.finalErr()
}

// finalErr is the failure of a chain that ran out of groups: that of the
// last group that was tried, else the missing capability of those skipped,
// else their cost.
func (x *execution) finalErr() error {
	switch {
	case x.lastErr != nil:
		return x.lastErr
	case len(x.incapable) > 0:
		return missingCapability(x.missingCaps, x.incapable)
	case len(x.unaffordable) > 0:
		e := x.budgetErr
		return &e
	}
	return nil
}

// skipped reports whether g was passed over before any call (capability or
// cost), which always goes on to g's fallbacks.
func (x *execution) skipped(g *group) bool {
	return x.lastSkipped == g.Name
}
