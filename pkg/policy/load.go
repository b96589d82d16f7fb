package policy

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// routerConfig is one loaded configuration: it never changes once stored, so
// a call runs on the configuration it started on.
type routerConfig struct {
	groups map[string]*group
	names  []string
}

type group struct {
	Group
	opts   GroupOptions // with defaults
	deps   []*deployment
	budget budget.Budget // the retry budget (nil: none)
}

type deployment struct {
	Deployment
	opts DeploymentOptions // with defaults
	info catalog.Model     // ResolveModel's record
	// price is USD per million prompt plus completion tokens; +Inf when
	// unknown (see expectedCost and maxCost).
	price    float64
	timeouts TimeoutOptions // group's, overridden by the deployment's
	total    timeout.Timeout[*Outcome]
	watch    watchSpec
	state    *depState
}

// Reload swaps the router's groups. Deployments whose name, provider and
// model are unchanged keep their breaker, limit and latency state (a breaker
// is rebuilt, closed, if its options changed). Calls in flight finish on the
// old configuration.
func (r *Router) Reload(groups []Group) error {
	cfg := &routerConfig{groups: make(map[string]*group, len(groups))}
	r.mu.Lock()
	defer r.mu.Unlock()
	states := map[string]*depState{}
	for i := range groups {
		g, err := r.loadGroup(&groups[i], cfg, states)
		if err != nil {
			return err
		}
		cfg.groups[g.Name] = g
		cfg.names = append(cfg.names, g.Name)
	}
	if err := cfg.checkFallbacks(); err != nil {
		return err
	}
	r.states = states
	r.cfg.Store(cfg)
	return nil
}

func (r *Router) loadGroup(g *Group, cfg *routerConfig, states map[string]*depState) (*group, error) {
	switch {
	case g.Name == "":
		return nil, errors.New("policy: group without a name")
	case len(g.Deployments) == 0:
		return nil, fmt.Errorf("policy: group %q has no deployments", g.Name)
	case cfg.groups[g.Name] != nil:
		return nil, fmt.Errorf("policy: group %q defined twice", g.Name)
	}
	if err := g.Options.Validate(); err != nil {
		return nil, fmt.Errorf("policy: group %q: %w", g.Name, err)
	}
	rg := &group{Group: *g, opts: g.Options.WithDefaults()}
	rg.budget = newBudget(rg.opts.Retry.Budget)
	if rg.opts.Cooldown != nil {
		rg.opts.Breaker.Disabled = true // the cooldown takes its place
	}
	seen := map[string]bool{}
	for j := range g.Deployments {
		d := &g.Deployments[j]
		if d.Name == "" || d.Provider == nil {
			return nil, fmt.Errorf("policy: group %q: deployment %d needs a name and a provider", g.Name, j)
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("policy: group %q: deployment %q defined twice", g.Name, d.Name)
		}
		seen[d.Name] = true
		if err := d.Options.Validate(); err != nil {
			return nil, fmt.Errorf("policy: group %q: deployment %q: %w", g.Name, d.Name, err)
		}
		rd := newDeployment(d, &rg.opts)
		key := stateKey(d)
		st := cmp.Or(states[key], r.states[key])
		if st == nil || st.brkOpts != rg.opts.Breaker {
			st = r.newState(d.Name, rg.opts.Breaker, st)
		}
		st.setLimiter(d.Options.Adaptive)
		states[key] = st
		rd.state = st
		rg.deps = append(rg.deps, rd)
	}
	return rg, nil
}

// newDeployment resolves what does not change until the next load: the
// model record, the timeouts and the policies built from them.
func newDeployment(d *Deployment, g *GroupOptions) *deployment {
	rd := &deployment{Deployment: *d, opts: d.Options.WithDefaults(), info: ResolveModel(d)}
	rd.price = price(d, rd.info)
	rd.timeouts = TimeoutOptions{
		TTFT:  cmp.Or(d.Options.Timeouts.TTFT, g.Timeouts.TTFT),
		Idle:  cmp.Or(d.Options.Timeouts.Idle, g.Timeouts.Idle),
		Total: cmp.Or(d.Options.Timeouts.Total, g.Timeouts.Total),
	}
	if rd.timeouts.Total > 0 {
		rd.total = timeout.New[*Outcome](rd.timeouts.Total)
	}
	rd.watch = newWatchSpec(rd.timeouts)
	return rd
}

func (cfg *routerConfig) checkFallbacks() error {
	for _, name := range cfg.names {
		g := cfg.groups[name]
		for _, list := range [][]string{g.opts.Fallbacks, g.opts.ContextWindowFallbacks, g.opts.ContentPolicyFallbacks} {
			for _, f := range list {
				if _, ok := cfg.groups[f]; !ok {
					return fmt.Errorf("policy: group %q: fallback to unknown group %q", name, f)
				}
			}
		}
	}
	return nil
}

// stateKey names a deployment's state across reloads.
func stateKey(d *Deployment) string {
	prov := fmt.Sprintf("%T", d.Provider)
	if n, ok := d.Provider.(llm.Namer); ok {
		prov = n.ProviderName()
	}
	return d.Name + "\x00" + prov + "\x00" + d.Model
}

// newState returns a fresh state, keeping old's counters when given.
func (r *Router) newState(name string, bo BreakerOptions, old *depState) *depState {
	st := &depState{name: name, brkOpts: bo}
	if old != nil {
		_, st.reqs, st.toks, st.ttft, st.measured = old.snapshot()
		old.mu.Lock()
		st.ttfts = old.ttfts.clone()
		old.mu.Unlock()
		st.window = old.window
		st.limiter.Store(old.limiter.Load())
	}
	st.breaker = newBreaker(bo, func() {
		st.mu.Lock()
		st.published = true
		st.mu.Unlock()
		r.publishBreaker(name, r.now().Add(bo.Cooldown))
	}, func() {
		st.mu.Lock()
		was := st.published
		st.published = false
		st.mu.Unlock()
		if was {
			r.publishBreaker(name, time.Time{})
		}
	})
	return st
}

// price is the deployment's price per million prompt plus completion
// tokens from its model record, +Inf when nobody knows it (the catalogue's 0
// means unknown; an override's 0 is a free model): the cost strategy tries
// such a deployment last, and a call with a MaxCostUSD never uses it.
func price(d *Deployment, m catalog.Model) float64 {
	if d.Options.InputCostPerMTok == nil && d.Options.OutputCostPerMTok == nil && m.InputPerMTok+m.OutputPerMTok == 0 {
		return math.Inf(1)
	}
	return m.InputPerMTok + m.OutputPerMTok
}
