package policy

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// capacityRun is what a load of 100 requests in flight against a mock with
// a hidden capacity of 40 produced.
type capacityRun struct {
	calls, refused    int64 // provider calls and 429s, after the first 10s
	failed            int   // requests that failed
	rateLimited       int   // of which with rate_limited
	meanInFlight      float64
	limit, peakLimit  int
	requests, retries int
	took              time.Duration
}

// runCapacity sends 2000 requests, 100 at a time, to one deployment with a
// hidden capacity of 40 (fake time: no load on the machine changes it),
// whose latency rises by slowdown as it fills (-1: flat). failsafe-go's
// limiter takes any latency that rises with the calls in flight for
// queueing and settles where it starts (below 30 with a slowdown of 0.1),
// so the test's mock is flat until its capacity, as a vendor's concurrency
// quota is.
func runCapacity(t *testing.T, adaptive *AdaptiveOptions, slowdown float64) capacityRun {
	t.Helper()
	var run capacityRun
	synctest.Test(t, func(t *testing.T) {
		p := mock.New(mock.Config{Capacity: 40, Tokens: 10, TTFT: 100 * time.Millisecond, ChunkDelay: 15 * time.Millisecond, RetryAfter: 200 * time.Millisecond, CapacitySlowdown: slowdown})
		o := fast()
		o.Retry.Backoff = BackoffOptions{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("d", p, DeploymentOptions{Adaptive: adaptive})}})
		const jobs, inFlight = 2000, 100
		var next atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		var calls0, refused0 int64
		var samples, sum int64
		stop := make(chan struct{})
		wg.Go(func() { // after 10s, count calls and sample those in flight every 10ms
			select {
			case <-time.After(10 * time.Second):
			case <-stop:
				return
			}
			calls0, refused0 = p.Calls(), p.OverCapacity()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
					samples++
					sum += p.InFlight()
					if st := r.Status(); st[0].Limit > run.peakLimit {
						run.peakLimit = st[0].Limit
					}
				}
			}
		})
		var workers sync.WaitGroup
		for range inFlight {
			workers.Go(func() {
				for next.Add(1) <= jobs {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					out, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
					cancel()
					mu.Lock()
					run.requests++
					run.retries += out.Retries
					if err != nil {
						run.failed++
						if llm.KindOf(err) == llm.KindRateLimited {
							run.rateLimited++
						}
					}
					mu.Unlock()
				}
			})
		}
		workers.Wait()
		close(stop)
		wg.Wait()
		run.took = time.Since(start)
		run.calls, run.refused = p.Calls()-calls0, p.OverCapacity()-refused0
		run.meanInFlight = float64(sum) / float64(max(samples, 1))
		run.limit = r.Status()[0].Limit
	})
	return run
}

// TestLearnedCapacity: with adaptive_concurrency, a deployment hiding a
// capacity of 40 behind 429s gets about 40 calls in flight, almost no 429
// once the limit is learned, and no request fails; without it the same
// load keeps running into the capacity (one 429 in six calls when this was
// written).
func TestLearnedCapacity(t *testing.T) {
	t.Parallel()
	t.Run("adaptive", func(t *testing.T) {
		t.Parallel()
		run := runCapacity(t, &AdaptiveOptions{}, -1)
		t.Logf("%+v", run)
		require.Greater(t, run.took, 12*time.Second, "the run is long enough to measure past its first 10s")
		require.Zero(t, run.failed, "no request fails")
		require.Less(t, float64(run.refused), 0.01*float64(run.calls), "under 1%% of the calls after 10s got a 429")
		require.InDelta(t, 40, run.meanInFlight, 5, "calls in flight converge to the hidden capacity")
	})
	t.Run("fixed", func(t *testing.T) {
		t.Parallel()
		run := runCapacity(t, nil, -1)
		t.Logf("%+v", run)
		// The share of 429s is not the machine's (fake time) but varies
		// with the order in which the bubble runs the 100 callers, and with
		// it how often the retry budget runs dry: 4.8 % to 28 % over 72 runs
		// when this was written, so "over 5 %" failed one run in ten. What
		// the test shows is the contrast with the adaptive run, held under
		// 1 %: the fixed one gets at least three times as many.
		require.Greater(t, float64(run.refused), 0.03*float64(run.calls), "without a learned capacity, over 3%% of the calls get a 429 (three times the adaptive run's bound)")
	})
}

// TestLearnedCeiling: a 429 with n calls in flight caps the limit at n-1;
// quiet updates raise the cap by one every probeAfter of them.
func TestLearnedCeiling(t *testing.T) {
	t.Parallel()
	l := newLearned(AdaptiveOptions{Initial: 10, Max: 50}.WithDefaults())
	require.Equal(t, 50.0, l.maxLimit(100), "no 429 yet: the max")
	var ps []*permit
	for range 8 {
		p, ok := withLearned(l).tryPermit()
		require.True(t, ok)
		ps = append(ps, p)
	}
	ps[7].done(&llm.Error{Kind: llm.KindRateLimited, RetryAfter: time.Millisecond}, false)
	require.Equal(t, 7.0, l.maxLimit(8), "8 in flight got a 429: at most 7")
	require.Equal(t, 7.0, l.maxLimit(8))
	require.Equal(t, 7.0, l.maxLimit(8))
	require.Equal(t, 8.0, l.maxLimit(8), "probeAfter quiet updates: one more")
	require.Equal(t, 5.0, l.maxLimit(1), "the default headroom of 5x the calls in flight still holds")
	for _, p := range ps[:7] {
		p.done(nil, false)
	}
	require.Eventually(t, func() bool { return l.held.Load() == 0 }, 10*time.Second, time.Millisecond, "the 429's permit is given back after its Retry-After")
}

// TestLearnedCeilingBacksOff: a rise that brings a 429 back doubles the
// quiet updates before the next rise, so a deployment held at its quota is
// probed ever less often; a rise that stays quiet resets the wait.
func TestLearnedCeilingBacksOff(t *testing.T) {
	t.Parallel()
	l := newLearned(AdaptiveOptions{Initial: 10, Max: 50}.WithDefaults())
	refuse := func(n int) {
		l.mu.Lock()
		l.lowest, l.refused = n, true
		l.mu.Unlock()
	}
	// quietUntilRise counts the updates before the ceiling passes c.
	quietUntilRise := func(c float64) int {
		for i := 1; i <= 2*maxProbeAfter; i++ {
			if l.maxLimit(100) > c {
				return i
			}
		}
		t.Fatalf("the ceiling never rose above %v", c)
		return 0
	}
	refuse(41)
	require.Equal(t, 40.0, l.maxLimit(100), "a 429 at 41 in flight: at most 40")
	require.Equal(t, probeAfter, quietUntilRise(40), "the first probe comes after probeAfter quiet updates")
	for _, want := range []int{2 * probeAfter, 4 * probeAfter, 8 * probeAfter, 16 * probeAfter, maxProbeAfter, maxProbeAfter} {
		refuse(41)
		require.Equal(t, 40.0, l.maxLimit(100), "the probe to 41 got a 429")
		require.Equal(t, want, quietUntilRise(40), "each probe that brings a 429 back doubles the wait, up to maxProbeAfter")
	}
	require.Equal(t, maxProbeAfter, quietUntilRise(41), "the probe to 41 stayed quiet: the next rise waits as long")
	require.Equal(t, probeAfter, quietUntilRise(42), "a probe that stayed quiet until the next rise resets the wait")
}

func withLearned(l *learned) *depState {
	s := &depState{}
	s.limiter.Store(l)
	return s
}
