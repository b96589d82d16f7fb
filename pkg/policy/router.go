package policy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// Router executes requests against model groups. It is safe for concurrent
// use. One request goes through these steps, one file each:
//
//	chain.go      the group, then its fallback chain (failsafe-go fallback)
//	retry.go      retries within a group (failsafe-go retrypolicy)
//	admission.go  which deployment takes the next attempt, or how long to wait
//	strategy.go   the order a group's strategy prefers its deployments in
//	hedge.go      a late first token raced on another deployment (failsafe-go hedgepolicy)
//	attempt.go    one call: total timeout (failsafe-go timeout), events, cost
//	watchdog.go   time to first token and idle timeouts of a stream
//	tools.go      streamed tool-call fragments joined into calls
type Router struct {
	cfg    atomic.Pointer[routerConfig]
	now    func() time.Time
	shared SharedState
	rng    *lockedRand // nil: the global source

	mu     sync.Mutex
	states map[string]*depState // by stateKey

	publishing sync.WaitGroup // breaker changes being shared with the fleet
}

// NewRouter returns a router over groups.
func NewRouter(groups []Group, opts ...Option) (*Router, error) {
	r := &Router{now: time.Now, states: map[string]*depState{}}
	for _, o := range opts {
		o(r)
	}
	if err := r.Reload(groups); err != nil {
		return nil, err
	}
	return r, nil
}

// Close waits for the breaker changes the router is still sharing with the
// fleet (each bounded by a 2 s timeout). Call it before closing the
// SharedState; the router may still execute requests afterwards.
func (r *Router) Close() {
	r.publishing.Wait()
}

// EstimateTokens estimates the tokens req needs from a context window: its
// prompt plus its MaxTokens.
func EstimateTokens(req *llm.Request) int {
	return catalog.EstimateTokens(req.Messages) + req.MaxTokens
}

// HasGroup reports whether the router serves group.
func (r *Router) HasGroup(name string) bool {
	_, ok := r.cfg.Load().groups[name]
	return ok
}

// CacheOptions returns group's response cache options (nil: it does not
// cache), as CacheConfig.Options wants them; they follow Reload.
func (r *Router) CacheOptions(group string) *CacheOptions {
	if g, ok := r.cfg.Load().groups[group]; ok {
		return g.opts.Cache
	}
	return nil
}

// Groups returns the names of the groups the router serves, in config order.
func (r *Router) Groups() []string {
	return slices.Clone(r.cfg.Load().names)
}

// Execute runs c.Request against c.Group: it picks a deployment by the
// group's strategy, retries within the group and follows the group's
// fallback chains. emit (may be nil) receives the events of every attempt,
// synchronously. The Outcome is returned even on failure, with every
// attempt. Execute reads c.Group, c.Request, c.MaxCostUSD and
// c.Priority (whether the group's hedge applies): the other
// fields of a Call are for the middlewares (see Chain).
func (r *Router) Execute(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
	groupName, req := c.Group, c.Request
	cfg := r.cfg.Load()
	g, ok := cfg.groups[groupName]
	if !ok {
		return &Outcome{Group: groupName}, fmt.Errorf("%w: %q", ErrUnknownGroup, groupName)
	}
	if emit == nil {
		emit = func(Event) {}
	}
	x := &execution{
		r: r, cfg: cfg, req: req, emit: emit, out: &Outcome{Group: groupName},
		tokens: EstimateTokens(req), prompt: catalog.EstimateTokens(req.Messages), needs: needsOf(req), visited: map[string]bool{},
		maxFallbacks: g.opts.MaxFallbacks, maxCostUSD: c.MaxCostUSD, interactive: c.Priority == PriorityInteractive,
	}
	res, err := x.chain(ctx, g)
	if err != nil {
		return x.out, err
	}
	res.Attempts, res.Retries, res.Fallbacks, res.Hedges = x.out.Attempts, x.out.Retries, x.out.Fallbacks, x.out.Hedges
	res.BudgetDenied = x.out.BudgetDenied
	res.CostUSD += x.out.CostUSD // what hedge races cancelled (see race.settle)
	return res, nil
}

// execution is the state of one Execute call.
type execution struct {
	r      *Router
	cfg    *routerConfig // the configuration the call started on
	req    *llm.Request
	emit   func(Event)
	out    *Outcome
	tokens int   // estimated prompt plus max_tokens, for context windows
	prompt int   // estimated prompt tokens, for costs
	needs  needs // capabilities the request needs beyond text

	maxCostUSD   float64     // the call's MaxCostUSD (0: no bound)
	interactive  bool        // the call is interactive: its group's hedge applies
	unaffordable []string    // groups skipped for max_cost_usd
	budgetErr    BudgetError // why they were
	lastSkipped  string      // the group skipped last (capability or cost)

	visited      map[string]bool // groups of the fallback chain tried so far
	halted       bool            // a failure ended the chain (caller gone, or fail)
	maxFallbacks int             // the requested group's max_fallbacks (0: no bound)
	lastErr      error           // the last failure of a group that was tried
	incapable    []string        // groups skipped for a missing capability
	missingCaps  []string        // the capabilities they missed

	streamed  bool   // the last failed attempt sent output
	streamErr error  // and how it failed
	prefix    string // text carried on under MidStreamContinue

	instructed *llm.Request // req with its schema in the system prompt, built once
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
