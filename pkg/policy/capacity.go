package policy

import (
	"cmp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/switchyard/switchyard/pkg/llm"
)

// AdaptiveOptions turn on a deployment's learned capacity: failsafe-go's
// adaptive concurrency limiter, which keeps the calls in flight on this
// router at what the deployment sustains. It raises the limit while the
// deployment's latency holds and lowers it when latency rises with the
// calls in flight, or when the deployment answers 429: a rate-limited call
// keeps its permit for the Retry-After (else Hold), so the refusal counts as
// a slow call, and the slot stays taken for as long as the provider asked.
// A call that finds the limit full waits for a permit within its deadline
// (in a worker: in its slot, the jobs beyond the worker's slots wait in
// JetStream), and a rate-limited attempt on such a deployment is retried
// without spending the group's retries (up to RequeueLimit times), so a
// client sees rate_limited only when its deadline passes.
//
// The limit is per router (per worker process); a fleet of N workers sends
// the deployment at most N times its limit, each worker learning its share.
type AdaptiveOptions struct {
	// Initial is the limit before anything was learned (default 20, or
	// Max when that is lower).
	Initial int `yaml:"initial"`
	// Min and Max bound the limit (default 1 and 200).
	Min int `yaml:"min"`
	Max int `yaml:"max"`
	// Window is the shortest time the limiter samples latencies for before
	// it changes the limit (default 1s; at least 20 calls are sampled).
	Window time.Duration `yaml:"window"`
	// Hold is how long a 429 without a Retry-After keeps its permit
	// (default 1s). A Retry-After is honoured up to 10s.
	Hold time.Duration `yaml:"hold"`
}

// RequeueLimit bounds how many times one request retries a 429 of an
// adaptive deployment without spending a retry; past it, rate_limited
// counts as any failure does.
const RequeueLimit = 10

// maxHold caps the time a 429 keeps its permit, whatever its Retry-After.
const maxHold = 10 * time.Second

// WithDefaults returns o with zero fields set to their defaults.
func (o AdaptiveOptions) WithDefaults() AdaptiveOptions {
	o.Min = cmp.Or(o.Min, 1)
	o.Max = cmp.Or(o.Max, 200)
	o.Initial = cmp.Or(o.Initial, min(20, o.Max))
	o.Window = cmp.Or(o.Window, 250*time.Millisecond)
	o.Hold = cmp.Or(o.Hold, time.Second)
	return o
}

func (o *AdaptiveOptions) validate() error {
	if o == nil {
		return nil
	}
	d := o.WithDefaults()
	switch {
	case o.Min < 0 || o.Max < 0 || o.Initial < 0:
		return optionError("adaptive_concurrency", "negative limit")
	case d.Min > d.Max:
		return optionError("adaptive_concurrency", "min %d > max %d", d.Min, d.Max)
	case d.Initial < d.Min || d.Initial > d.Max:
		return optionError("adaptive_concurrency", "initial %d not in [min %d, max %d]", d.Initial, d.Min, d.Max)
	case o.Window < 0 || o.Hold < 0:
		return optionError("adaptive_concurrency", "negative duration")
	}
	return nil
}

// learned is a deployment's adaptive limiter and the options it was built
// from; it survives a Reload that leaves the options alone.
//
// failsafe-go's limiter learns from latency alone: a fast 429 looks like a
// healthy call to it. The 429s set its max limit instead (WithMaxLimitFunc,
// called at each of its updates): a 429 seen with n calls in flight means
// the deployment takes fewer than n, so the ceiling drops to n-1; after
// probeAfter updates without a 429 it rises by one, to find capacity that
// came back. A rise that brings a 429 back doubles the quiet updates the
// next rise waits for (up to maxProbeAfter), so a deployment held at its
// quota is probed ever less often instead of every probeAfter updates; a
// rise that stays quiet until the next one resets the wait.
type learned struct {
	opts AdaptiveOptions // with defaults
	lim  adaptivelimiter.AdaptiveLimiter[any]
	held atomic.Int64 // permits kept by 429s

	mu      sync.Mutex
	ceiling float64 // the most calls in flight the 429s allow
	refused bool    // a 429 since the limiter's last update
	lowest  int     // the fewest calls in flight at a 429 since then
	quiet   int     // updates since the last 429 or rise
	wait    int     // quiet updates the next rise waits for
	rose    bool    // the ceiling rose and no 429 came since
}

// probeAfter is how many limiter updates without a 429 raise the ceiling by
// one call.
const probeAfter = 3

// maxProbeAfter bounds the doubled wait: with the default 250ms window, a
// deployment at its quota is probed about every 16s.
const maxProbeAfter = 64

func newLearned(d AdaptiveOptions) *learned {
	l := &learned{opts: d, ceiling: float64(d.Max), wait: probeAfter}
	l.lim = adaptivelimiter.NewBuilder[any]().
		WithLimits(uint(d.Min), uint(d.Max), uint(d.Initial)).
		WithRecentWindow(d.Window, 30*time.Second, 20).
		WithMaxLimitFunc(l.maxLimit).
		Build()
	return l
}

// maxLimit is the limiter's max limit for inflight calls in flight: its
// default headroom (5x) under the ceiling the 429s set. It runs under the
// limiter's lock, so it must not call the limiter.
func (l *learned) maxLimit(inflight int) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.refused:
		l.ceiling = max(float64(l.opts.Min), float64(l.lowest-1))
		if l.rose {
			l.wait = min(2*l.wait, maxProbeAfter)
		}
		l.refused, l.quiet, l.rose = false, 0, false
	case l.quiet+1 >= l.wait:
		if l.rose {
			l.wait = probeAfter
		}
		l.ceiling = min(l.ceiling+1, float64(l.opts.Max))
		l.quiet, l.rose = 0, true
	default:
		l.quiet++
	}
	return min(5*float64(inflight), l.ceiling)
}

// rateLimited notes a 429 that came with the limiter's permits taken, less
// those kept by earlier 429s, as the calls in flight.
func (l *learned) rateLimited() {
	n := l.lim.Inflight() - int(l.held.Load())
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.refused || n < l.lowest {
		l.lowest = n
	}
	l.refused = true
}

// setLimiter gives s the limiter o asks for: none, the one it has when its
// options are unchanged, else a new one (which learns from Initial again).
func (s *depState) setLimiter(o *AdaptiveOptions) {
	if o == nil {
		s.limiter.Store(nil)
		return
	}
	d := o.WithDefaults()
	if cur := s.limiter.Load(); cur != nil && cur.opts == d {
		return
	}
	s.limiter.Store(newLearned(d))
}

// tryPermit takes a place under s's adaptive limit: ok false when the limit
// is full; a nil permit when s has no limiter.
func (s *depState) tryPermit() (p *permit, ok bool) {
	l := s.limiter.Load()
	if l == nil {
		return nil, true
	}
	ap, ok := l.lim.TryAcquirePermit()
	if !ok {
		return nil, false
	}
	return &permit{p: ap, l: l}, true
}

// learnedLimit returns s's adaptive limit and the permits taken (0, 0: no
// limiter).
func (s *depState) learnedLimit() (limit, inflight int) {
	if l := s.limiter.Load(); l != nil {
		return l.lim.Limit(), l.lim.Inflight()
	}
	return 0, 0
}

// permit is a call's place under its deployment's adaptive limit; the nil
// *permit (no limiter) does nothing.
type permit struct {
	p adaptivelimiter.Permit
	l *learned
}

// done gives the place back as the call's end says: a success or a timeout
// is a latency sample; a 429 keeps the place for its Retry-After (else
// hold) and is then a sample that long; any other failure, or a caller that
// gave up, is no sample at all (a fast refusal says nothing of the
// deployment's load).
func (p *permit) done(err error, callerEnded bool) {
	if p == nil {
		return
	}
	switch k := llm.KindOf(err); {
	case err == nil || !callerEnded && k == llm.KindTimeout:
		p.p.Record()
	case !callerEnded && k == llm.KindRateLimited:
		p.l.rateLimited()
		p.l.held.Add(1)
		hold := cmp.Or(llm.RetryAfterOf(err), p.l.opts.Hold)
		time.AfterFunc(min(hold, maxHold), func() {
			p.l.held.Add(-1)
			p.p.Drop()
		})
	default:
		p.p.Drop()
	}
}

// drop gives the place back unused.
func (p *permit) drop() {
	if p != nil {
		p.p.Drop()
	}
}

// adaptive reports whether d learns its capacity.
func (d *deployment) adaptive() bool { return d.state.limiter.Load() != nil }

// requeues reports whether a failure err of d is retried without spending
// one of the group's retries: a 429 of a deployment that learns its
// capacity, while the request has requeues left.
func (run *groupRun) requeues(d *deployment, err error) bool {
	return d.adaptive() && llm.KindOf(err) == llm.KindRateLimited && run.requeued < RequeueLimit
}

// anyAdaptive reports whether a deployment of g learns its capacity.
func (x *execution) anyAdaptive(g *group) bool {
	for _, d := range g.deps {
		if d.adaptive() {
			return true
		}
	}
	return false
}
