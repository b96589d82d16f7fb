package mock

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

func TestCapacityRefusesTheCallOverIt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Config{Tokens: 2, TTFT: 100 * time.Millisecond, Capacity: 3, RetryAfter: 250 * time.Millisecond})
		var open []llm.Stream
		for range 3 {
			s, err := p.Stream(t.Context(), userReq("x"))
			require.NoError(t, err)
			open = append(open, s)
		}
		require.EqualValues(t, 3, p.InFlight())

		_, err := p.Stream(t.Context(), userReq("x"))
		e, ok := errors.AsType[*llm.Error](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, llm.KindRateLimited, e.Kind)
		require.Equal(t, 429, e.Status)
		require.Equal(t, 250*time.Millisecond, e.RetryAfter)
		require.EqualValues(t, 1, p.OverCapacity())
		require.EqualValues(t, 3, p.InFlight(), "a refused call takes no place")

		// A stream drained to its end gives its place back, and so does
		// one closed early; closing twice gives back one place.
		for open[0].Next() {
		}
		require.NoError(t, open[0].Err())
		require.EqualValues(t, 2, p.InFlight())
		require.NoError(t, open[1].Close())
		require.NoError(t, open[1].Close())
		require.EqualValues(t, 1, p.InFlight())

		s, err := p.Stream(t.Context(), userReq("x"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, open[2].Close())
		require.EqualValues(t, 0, p.InFlight())
		require.EqualValues(t, 3, p.PeakInFlight())
	})
}

func TestCapacityFaultsGiveTheirPlaceBack(t *testing.T) {
	t.Parallel()
	p := New(Config{Capacity: 1, ErrorRate: map[string]float64{"unavailable": 1}})
	for range 5 {
		_, err := p.Stream(t.Context(), userReq("x"))
		require.Equal(t, llm.KindUnavailable, llm.KindOf(err), "a failed call is not counted in flight: never over capacity")
	}
	require.EqualValues(t, 0, p.InFlight())
	require.EqualValues(t, 0, p.OverCapacity())
}

// ttftOf measures the time to the first chunk of one call started while
// others are in flight.
func ttftOf(t *testing.T, p *Provider) time.Duration {
	t.Helper()
	start := time.Now()
	s, err := p.Stream(t.Context(), userReq("x"))
	require.NoError(t, err)
	require.True(t, s.Next())
	d := time.Since(start)
	require.NoError(t, s.Close())
	return d
}

func TestLatencyRisesAsTheMockFills(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Config{Tokens: 2, TTFT: 100 * time.Millisecond, Capacity: 4})
		require.Equal(t, 125*time.Millisecond, ttftOf(t, p), "alone: 1 + 1×1/4")
		var held []llm.Stream
		for range 3 {
			s, err := p.Stream(t.Context(), userReq("x"))
			require.NoError(t, err)
			held = append(held, s)
		}
		require.Equal(t, 200*time.Millisecond, ttftOf(t, p), "the fourth of four: twice as slow")
		for _, s := range held {
			require.NoError(t, s.Close())
		}

		flat := New(Config{Tokens: 2, TTFT: 100 * time.Millisecond, Capacity: 4, CapacitySlowdown: -1})
		require.Equal(t, 100*time.Millisecond, ttftOf(t, flat))
	})
}

func TestSlowFirstTokensAreSeededAndHeavy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{Tokens: 1, TTFT: 10 * time.Millisecond, SlowRate: 0.1, Seed: 42}
		draws := func() []bool {
			p := New(cfg)
			var slow []bool
			for range 400 {
				slow = append(slow, ttftOf(t, p) == 100*time.Millisecond)
			}
			return slow
		}
		a, b := draws(), draws()
		require.Equal(t, a, b, "the same seed, the same slow calls")
		n := 0
		for _, s := range a {
			if s {
				n++
			}
		}
		require.InDelta(t, 40, n, 15, "about 10%% of 400 calls are slow")

		cfg.Seed = 43
		require.NotEqual(t, a, draws(), "another seed, other slow calls")
	})
}

func TestCapacityConfigValidation(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{Capacity: 10, CapacitySlowdown: -1, SlowRate: 0.5, SlowFactor: 3}.Validate())
	for _, c := range []Config{{Capacity: -1}, {CapacitySlowdown: -2}, {SlowRate: 1.5}, {SlowFactor: 0.5}} {
		require.Error(t, c.Validate(), "%+v", c)
	}
}
