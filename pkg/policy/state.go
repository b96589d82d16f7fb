package policy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/switchyard/switchyard/pkg/llm"
)

// depState is the mutable state of one deployment: breaker, limits and
// latency. It survives a Reload when the deployment's name, provider and model
// are unchanged.
type depState struct {
	name    string
	breaker circuitbreaker.CircuitBreaker[any] // nil when disabled
	brkOpts BreakerOptions
	limiter atomic.Pointer[learned] // nil: no adaptive_concurrency

	mu        sync.Mutex
	inflight  int
	window    time.Time // start of the current minute
	reqs      int       // requests in window
	toks      int       // tokens in window
	coolUntil time.Time // from a Retry-After
	// Cooldown (CooldownOptions): out of the group until downUntil; calls
	// that succeeded and failed in the current minute (window); counted
	// failures since the last cooldown, the last one at lastCounted.
	downUntil   time.Time
	oks, fails  int
	counted     int
	lastCounted time.Time
	ttft        time.Duration
	measured    bool
	ttfts       ttftSamples // the last first tokens, for the hedge's delay
	published   bool        // a breaker open was shared with the fleet
}

func newBreaker(o BreakerOptions, onOpen, onClose func()) circuitbreaker.CircuitBreaker[any] {
	if o.Disabled {
		return nil
	}
	b := circuitbreaker.NewBuilder[any]().
		WithDelay(o.Cooldown).
		WithSuccessThreshold(uint(o.HalfOpenProbes)).
		OnOpen(func(circuitbreaker.StateChangedEvent) { onOpen() }).
		OnClose(func(circuitbreaker.StateChangedEvent) { onClose() })
	if o.FailureRate > 0 {
		b = b.WithFailureRateThreshold(o.FailureRate, uint(o.Failures), o.Period)
	} else {
		b = b.WithFailureThresholdPeriod(uint(o.Failures), o.Period)
	}
	return b.Build()
}

// rollLocked starts a new minute window when now left the current one.
func (s *depState) rollLocked(now time.Time) {
	if w := now.Truncate(time.Minute); !w.Equal(s.window) {
		s.window, s.reqs, s.toks, s.oks, s.fails = w, 0, 0, 0, 0
	}
}

// check reports whether d may be called now without taking anything, and
// otherwise the earliest time it may become free (zero: unknown, poll). The
// local rpm/tpm counts apply even with fleet-wide counters: they are what
// holds when the fleet's store is gone.
func (s *depState) check(now time.Time, o *DeploymentOptions, tokens int, shared SharedState) (ok bool, freeAt time.Time) {
	if shared != nil {
		if until := shared.BreakerOpenUntil(s.name); until.After(now) {
			return false, until
		}
	}
	if s.breaker != nil && s.breaker.IsOpen() {
		if d := s.breaker.RemainingDelay(); d > 0 {
			return false, now.Add(d)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollLocked(now)
	if s.downUntil.After(now) {
		return false, s.downUntil
	}
	if s.coolUntil.After(now) {
		return false, s.coolUntil
	}
	if o.MaxConcurrency > 0 && s.inflight >= o.MaxConcurrency {
		return false, time.Time{}
	}
	next := s.window.Add(time.Minute)
	if o.RPM > 0 && s.reqs >= o.RPM {
		return false, next
	}
	if o.TPM > 0 && s.toks > 0 && s.toks+tokens > o.TPM {
		return false, next
	}
	return true, time.Time{}
}

// brokenAt reports whether the deployment is skipped because its breaker (local
// or a peer's) is open or it is cooling down.
func (s *depState) brokenAt(now time.Time, shared SharedState) bool {
	if shared != nil && shared.BreakerOpenUntil(s.name).After(now) {
		return true
	}
	s.mu.Lock()
	down := s.downUntil.After(now)
	s.mu.Unlock()
	return down || s.breaker != nil && s.breaker.IsOpen() && s.breaker.RemainingDelay() > 0
}

// acquire takes a concurrency slot and counts the request in the window.
func (s *depState) acquire(now time.Time, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollLocked(now)
	s.inflight++
	s.reqs++
	s.toks += tokens
}

func (s *depState) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
}

func (s *depState) cool(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.After(s.coolUntil) {
		s.coolUntil = until
	}
}

// observe feeds a time to first token into the latency average (EWMA,
// 0.3) and the hedge's window.
func (s *depState) observe(ttft time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttfts.add(ttft)
	if !s.measured {
		s.ttft, s.measured = ttft, true
		return
	}
	s.ttft = time.Duration(0.7*float64(s.ttft) + 0.3*float64(ttft))
}

func (s *depState) snapshot() (inflight, reqs, toks int, ttft time.Duration, measured bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight, s.reqs, s.toks, s.ttft, s.measured
}

// record feeds an attempt's result to the breaker, as the error table says;
// a failure after the caller gave up (callerEnded) has no verdict.
func (s *depState) record(err error, callerEnded bool) {
	if s.breaker == nil {
		return
	}
	if err == nil {
		s.breaker.RecordSuccess()
		return
	}
	verdict := Behaviour(llm.KindOf(err)).Breaker
	if callerEnded {
		verdict = BreakerNoVerdict
	}
	switch verdict {
	case BreakerCountsFailure:
		s.breaker.RecordFailure()
	case BreakerCountsSuccess:
		s.breaker.RecordSuccess()
	case BreakerNoVerdict:
		// A half-open permit must still be returned, and reopening is the
		// safe side.
		if s.breaker.IsHalfOpen() {
			s.breaker.RecordFailure()
		}
	}
}

// publishBreaker shares a breaker change with the fleet without blocking the
// caller: it is called under the breaker's lock. Close waits for it.
func (r *Router) publishBreaker(name string, until time.Time) {
	if r.shared == nil {
		return
	}
	r.publishing.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.shared.PublishBreaker(ctx, name, until) // best effort: local state still holds
	})
}
