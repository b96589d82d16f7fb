package mock

import (
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// admit takes a place among the calls in flight, or refuses the call with
// a 429 when Config.Capacity of them are. It returns the factor the call's
// delays are multiplied by (its load when it started) and the release
// function, which gives the place back exactly once.
func (p *Provider) admit() (slowdown float64, release func(), err *llm.Error) {
	n := p.inflight.Add(1)
	if c := int64(p.cfg.Capacity); c > 0 && n > c {
		p.inflight.Add(-1)
		p.overCapacity.Add(1)
		e := p.newError(llm.KindRateLimited, p.cfg.RetryAfter)
		e.Message = "over capacity: too many concurrent requests"
		return 0, nil, e
	}
	for peak := p.peak.Load(); n > peak && !p.peak.CompareAndSwap(peak, n); peak = p.peak.Load() {
	}
	slowdown = 1
	if c := p.cfg.Capacity; c > 0 {
		slowdown += p.cfg.CapacitySlowdown * float64(n) / float64(c)
	}
	var done atomic.Bool
	return slowdown, func() {
		if done.CompareAndSwap(false, true) {
			p.inflight.Add(-1)
		}
	}, nil
}

// InFlight returns how many calls are in flight now.
func (p *Provider) InFlight() int64 { return p.inflight.Load() }

// PeakInFlight returns the most calls that were in flight at once.
func (p *Provider) PeakInFlight() int64 { return p.peak.Load() }

// OverCapacity returns how many calls were refused with a 429 because
// Config.Capacity calls were in flight.
func (p *Provider) OverCapacity() int64 { return p.overCapacity.Load() }

// scale multiplies d by f.
func scale(d time.Duration, f float64) time.Duration {
	if f == 1 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * f)
}
