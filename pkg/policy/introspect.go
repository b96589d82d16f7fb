package policy

import (
	"sort"
	"time"
)

// BreakerState is the state of a deployment's circuit breaker.
type BreakerState string

// Breaker states. Open includes an open breaker reported by a peer through
// the shared state.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerHalfOpen BreakerState = "half-open"
	BreakerOpen     BreakerState = "open"
)

// DeploymentStatus is a snapshot of one deployment of one group.
type DeploymentStatus struct {
	Group      string
	Deployment string
	Model      string
	Provider   string // llm.Namer's name, or "" when the provider has none
	Breaker    BreakerState
	InFlight   int
	// MaxConcurrency, RPM and TPM are the deployment's configured limits
	// (0: none). Requests and Tokens are what this router counted against
	// RPM and TPM in the current minute (tokens as estimated at admission).
	MaxConcurrency, RPM, TPM int
	Requests, Tokens         int
	// Limit is the deployment's learned concurrency limit on this router
	// (0: no adaptive_concurrency); InFlight counts the calls under it.
	Limit int
}

// Status returns a snapshot of every deployment, sorted by group and
// deployment. It is cheap enough to call on every metrics scrape.
func (r *Router) Status() []DeploymentStatus {
	cfg := r.cfg.Load()
	now := r.now()
	var out []DeploymentStatus
	for _, name := range cfg.names {
		g := cfg.groups[name]
		for _, d := range g.deps {
			st := DeploymentStatus{Group: name, Deployment: d.Name, Model: d.Model, Provider: d.info.Provider, Breaker: BreakerClosed}
			s := d.state
			if b := s.breaker; b != nil {
				switch {
				case b.IsOpen():
					st.Breaker = BreakerOpen
				case b.IsHalfOpen():
					st.Breaker = BreakerHalfOpen
				}
			}
			if r.shared != nil && st.Breaker == BreakerClosed && r.shared.BreakerOpenUntil(d.Name).After(now) {
				st.Breaker = BreakerOpen
			}
			st.MaxConcurrency, st.RPM, st.TPM = d.opts.MaxConcurrency, d.opts.RPM, d.opts.TPM
			st.Limit, _ = s.learnedLimit()
			s.mu.Lock()
			st.InFlight = s.inflight
			if s.window.Equal(now.Truncate(time.Minute)) {
				st.Requests, st.Tokens = s.reqs, s.toks
			}
			if s.downUntil.After(now) {
				st.Breaker = BreakerOpen // cooling down: out of the group
			}
			s.mu.Unlock()
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Deployment < out[j].Deployment
	})
	return out
}
