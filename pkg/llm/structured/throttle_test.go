package structured

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestThrottle(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := NewThrottle(0, clk.now) // default: 4 per second

	require.False(t, th.Offer(false), "nothing changed yet")
	require.True(t, th.Offer(true), "the first change goes out at once")

	// A burst of changes inside 250ms is held back...
	for range 5 {
		clk.advance(40 * time.Millisecond)
		require.False(t, th.Offer(true))
	}
	// ...and folded into the next event once the interval passed, even
	// when the step that crosses it brings no new change.
	clk.advance(50 * time.Millisecond)
	require.True(t, th.Offer(false))
	require.False(t, th.Offer(false), "nothing pending any more")

	// A change after a quiet period is sent at once.
	clk.advance(3 * time.Second)
	require.True(t, th.Offer(true))

	// Rate: 60 changes over 3 seconds, one every 50ms, give at most 4/s.
	sent := 0
	for range 60 {
		clk.advance(50 * time.Millisecond)
		if th.Offer(true) {
			sent++
		}
	}
	require.Equal(t, 12, sent)

	// Flush reports the held-back change once.
	clk.advance(10 * time.Millisecond)
	require.False(t, th.Offer(true))
	require.True(t, th.Flush())
	require.False(t, th.Flush())
}

func TestThrottleRate(t *testing.T) {
	t.Parallel()
	for _, perSecond := range []int{1, 4, 10} {
		clk := &fakeClock{t: time.Unix(0, 0)}
		th := NewThrottle(perSecond, clk.now)
		sent := 0
		for range 1000 { // 10 seconds in 10ms steps
			if th.Offer(true) {
				sent++
			}
			clk.advance(10 * time.Millisecond)
		}
		require.Equal(t, 10*perSecond, sent, "perSecond=%d", perSecond)
	}
}

func TestThrottleNilClock(t *testing.T) {
	t.Parallel()
	th := NewThrottle(4, nil)
	require.True(t, th.Offer(true))
	require.False(t, th.Offer(true), "the real clock did not move 250ms")
}
