package policy

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// pollInterval is how often a wait for a concurrency slot looks again: a
// slot has no known time to free up.
const pollInterval = 5 * time.Millisecond

// admit chooses the deployment of g that takes the next attempt, waiting
// for one to become free within ctx's deadline. It fails with a
// context-window error when the prompt fits no deployment, and with lastErr
// (or rate_limited / unavailable) when none frees up in time.
func (x *execution) admit(ctx context.Context, g *group, excluded map[*deployment]bool, lastErr error) (*deployment, *permit, error) {
	for {
		now := x.r.now()
		s := x.scan(ctx, g, excluded, now)
		if s.chosen != nil {
			return s.chosen, s.permit, nil
		}
		if err := s.exhausted(x, g, len(excluded) > 0, lastErr); err != nil {
			return nil, nil, err
		}
		wait := s.earliest.Sub(now)
		if pastDeadline(ctx, wait) {
			return nil, nil, cmp.Or(lastErr, error(&llm.Error{Kind: llm.KindRateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("every deployment of group %q is at its limit or unavailable", g.Name)}))
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, nil, cmp.Or(lastErr, error(&llm.Error{Kind: llm.KindOf(err), Err: err}))
		}
	}
}

// scan is one look at a group's deployments.
type scan struct {
	chosen   *deployment // admitted (its slot taken)
	permit   *permit     // chosen's place under its learned capacity
	fits     bool        // some deployment can take the request at all
	limited  bool        // some deployment is busy or at a limit
	broken   bool        // some deployment is behind an open breaker
	earliest time.Time   // when the first limited one frees up
}

func (x *execution) scan(ctx context.Context, g *group, excluded map[*deployment]bool, now time.Time) scan {
	var s scan
	for _, d := range x.r.order(g, x) {
		if excluded[d] || !d.serves(x.needs) || !d.fits(x.tokens) || !x.affordable(d) {
			continue
		}
		s.fits = true
		switch v, freeAt, p := x.try(ctx, d, now); v {
		case admitted:
			d.state.acquire(now, x.tokens)
			s.chosen, s.permit = d, p
			return s
		case broken:
			s.broken = true
		case limited:
			s.limited = true
			freeAt = cmp.Or(freeAt, now.Add(pollInterval))
			if s.earliest.IsZero() || freeAt.Before(s.earliest) {
				s.earliest = freeAt
			}
		}
	}
	return s
}

// exhausted is the error that ends the wait when nothing can free up: no
// deployment fits the prompt, or none is left but those behind an open
// breaker (which are not waited for: the group's fallbacks take over).
func (s *scan) exhausted(x *execution, g *group, triedSome bool, lastErr error) error {
	switch {
	case !s.fits && lastErr != nil && triedSome:
		return lastErr
	case !s.fits:
		return &llm.Error{Kind: llm.KindContextWindow, Message: fmt.Sprintf("the prompt (about %d tokens) fits no deployment of group %q", x.tokens, g.Name)}
	case s.limited:
		return nil
	case s.broken:
		return cmp.Or(lastErr, error(&llm.Error{Kind: llm.KindUnavailable, Message: "every deployment's circuit breaker is open"}))
	}
	return cmp.Or(lastErr, error(&llm.Error{Kind: llm.KindUnavailable, Message: "no deployment left"}))
}

type admission int

const (
	admitted admission = iota
	limited
	broken
)

// try decides whether d may take the call now: its local state (breakers
// seen here or by the fleet, Retry-After, concurrency, rpm/tpm), its
// learned capacity (a permit of its adaptive limiter), the fleet's rpm/tpm
// counters, then a breaker permit. An admitted call gets the limiter's
// permit (nil without a limiter).
func (x *execution) try(ctx context.Context, d *deployment, now time.Time) (admission, time.Time, *permit) {
	shared := x.r.shared
	ok, freeAt := d.state.check(now, &d.opts, x.tokens, shared)
	var p *permit
	if ok {
		p, ok = d.state.tryPermit()
	}
	if ok && shared != nil && (d.opts.RPM > 0 || d.opts.TPM > 0) {
		// A store that fails leaves the decision to the local counts.
		if fits, err := shared.Reserve(ctx, d.Name, x.tokens, d.opts.RPM, d.opts.TPM); err == nil && !fits {
			ok, freeAt = false, now.Truncate(time.Minute).Add(time.Minute)
		}
	}
	v := admitted
	switch {
	case ok && d.state.breaker != nil && !d.state.breaker.TryAcquirePermit():
		v, freeAt = broken, time.Time{}
	case !ok && d.state.brokenAt(now, shared):
		v, freeAt = broken, time.Time{}
	case !ok:
		v = limited
	}
	if v != admitted {
		p.drop()
		return v, freeAt, nil
	}
	return admitted, time.Time{}, p
}

// soonest returns when the first of g's candidates leaves its cool-down or
// open breaker (now when one is free), for the retry delay after a
// Retry-After.
func (x *execution) soonest(g *group, excluded map[*deployment]bool, now time.Time) time.Time {
	var first time.Time
	for _, d := range g.deps {
		if excluded[d] || !d.serves(x.needs) || !d.fits(x.tokens) {
			continue
		}
		ok, freeAt := d.state.check(now, &d.opts, x.tokens, x.r.shared)
		if ok || freeAt.IsZero() {
			return now
		}
		if first.IsZero() || freeAt.Before(first) {
			first = freeAt
		}
	}
	return cmp.Or(first, now)
}

// fits reports whether a request of tokens tokens fits d's context window.
func (d *deployment) fits(tokens int) bool {
	return d.info.ContextWindow <= 0 || tokens <= d.info.ContextWindow
}

// pastDeadline reports whether waiting wait would pass ctx's deadline.
func pastDeadline(ctx context.Context, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < wait
}

// sleep waits for d (at least a millisecond) or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
