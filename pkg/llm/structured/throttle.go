package structured

import "time"

// DefaultPartialsPerSecond is the Throttle rate used when none is given.
const DefaultPartialsPerSecond = 4

// Throttle decides when a streaming worker sends a `partial` event: at most
// PerSecond of them, spaced by at least 1/PerSecond. A change that comes
// after a quiet period (no event for that long) is sent at once, so the
// first partial of an answer and one after a pause of the model are never
// delayed; changes inside the interval are held back and folded into the
// next event. Call Flush when the stream ends to learn whether a held-back
// change is still unsent.
//
// A Throttle serves one stream and is not safe for concurrent use.
type Throttle struct {
	interval time.Duration
	now      func() time.Time
	last     time.Time
	sent     bool
	pending  bool
}

// NewThrottle returns a Throttle allowing perSecond events per second
// (DefaultPartialsPerSecond when <= 0), reading time from now (time.Now when
// nil; tests pass a fake clock).
func NewThrottle(perSecond int, now func() time.Time) *Throttle {
	if perSecond <= 0 {
		perSecond = DefaultPartialsPerSecond
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{interval: time.Second / time.Duration(perSecond), now: now}
}

// Offer records one step of the stream (changed: the partial parse differs
// from the one last offered) and reports whether to send a partial event
// now. It returns false while nothing changed since the last event sent.
func (t *Throttle) Offer(changed bool) bool {
	if changed {
		t.pending = true
	}
	if !t.pending {
		return false
	}
	now := t.now()
	if t.sent && now.Sub(t.last) < t.interval {
		return false
	}
	t.sent, t.last, t.pending = true, now, false
	return true
}

// Flush reports whether a change was held back and not sent yet, and
// counts it as sent: at the end of a stream the caller sends the last
// partial when Flush returns true.
func (t *Throttle) Flush() bool {
	if !t.pending {
		return false
	}
	t.sent, t.last, t.pending = true, t.now(), false
	return true
}
