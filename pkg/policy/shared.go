package policy

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// SharedState is fleet-wide breaker and rate state, e.g. internal/fleet on
// NATS KV. Every method may fail (the store is gone); the router then decides
// from its local state alone. Implementations are safe for concurrent use.
type SharedState interface {
	// PublishBreaker tells the fleet that deployment's breaker is open until
	// openUntil (a zero time: closed).
	PublishBreaker(ctx context.Context, deployment string, openUntil time.Time) error
	// BreakerOpenUntil returns until when a peer saw deployment's breaker
	// open (zero if closed or unknown). It must be cheap: it is called for
	// every candidate of every attempt.
	BreakerOpenUntil(deployment string) time.Time
	// Reserve counts one request of tokens tokens against deployment's
	// fleet-wide rpm and tpm limits (0: none) in the current minute and
	// reports whether it fit; a reservation that does not fit is not counted.
	Reserve(ctx context.Context, deployment string, tokens, rpm, tpm int) (ok bool, err error)
}

// Option configures a Router.
type Option func(*Router)

// WithSharedState shares breaker and rate state with the fleet through s.
func WithSharedState(s SharedState) Option { return func(r *Router) { r.shared = s } }

// WithClock sets the clock used for rate windows and latency (default time.Now).
func WithClock(now func() time.Time) Option { return func(r *Router) { r.now = now } }

// WithRand sets the source of the router's weighted shuffle; default: math/rand/v2's global source. A seeded
// source makes a test's draws repeatable. The router locks around it.
func WithRand(src rand.Source) Option {
	return func(r *Router) { r.rng = &lockedRand{r: rand.New(src)} }
}

// lockedRand makes a *rand.Rand, which is not safe for concurrent use, so.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) ExpFloat64() float64 {
	if l == nil {
		return rand.ExpFloat64()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.ExpFloat64()
}
