package policy

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// outageCounts are one router's counts in an outage.
type outageCounts struct {
	inFlight int   // its requests in flight
	jobs     int64 // requests it served
	retries  int64 // retries its outcomes report
	denied   int   // retries (and hedges) its budget refused
}

// calls are the router's provider calls: each request's first, and its
// retries.
func (c outageCounts) calls() int64 { return c.jobs + c.retries }

// outage runs one router per entry of inFlight, all calling one deployment
// (one mock) that fails every call after 50ms, 3 retries each, no breaker:
// each router serves 10 x its inFlight requests, inFlight at a time. It
// returns each router's counts, and checks them against the provider's.
func outage(t *testing.T, b RetryBudgetOptions, inFlight ...int) []outageCounts {
	t.Helper()
	counts := make([]outageCounts, len(inFlight))
	synctest.Test(t, func(t *testing.T) {
		p := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}, ErrorDelay: 50 * time.Millisecond})
		o := fast()
		o.Retry.MaxRetries = 3
		o.Retry.Budget = b
		o.Breaker.Disabled = true
		var all sync.WaitGroup
		for i, n := range inFlight {
			r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("down", p, DeploymentOptions{})}})
			c := &counts[i]
			c.inFlight = n
			all.Go(func() { c.serve(t, r) })
		}
		all.Wait()
		var calls int64
		for _, c := range counts {
			calls += c.calls()
		}
		require.Equal(t, p.Calls(), calls, "every call is a request's first or a retry")
	})
	return counts
}

// serve sends 10 x c.inFlight requests to r, c.inFlight at a time.
func (c *outageCounts) serve(t *testing.T, r *Router) {
	work := make(chan struct{})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range c.inFlight {
		wg.Go(func() {
			for range work {
				out, err := r.Execute(context.Background(), &Call{Group: "g", Request: req("x")}, nil)
				require.Error(t, err)
				mu.Lock()
				c.jobs++
				c.retries += int64(out.Retries)
				c.denied += out.BudgetDenied
				mu.Unlock()
			}
		})
	}
	for range 10 * c.inFlight {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
}

// bound is what RetryBudgetOptions promise for c's calls: a retry starts
// only when, with it, the retries in flight are at most max(MinConcurrency,
// MaxRate x requests in flight), so at most MaxRate x requests +
// MinConcurrency (the floor matters as the run ends, with fewer requests
// in flight). Every call of the outage lasts as long, and the 1ms backoff
// is short beside it, so that share of the requests in flight is the share
// of the calls.
func (c outageCounts) bound(b RetryBudgetOptions) float64 {
	b = b.WithDefaults()
	share := b.MaxRate + float64(b.MinConcurrency)/float64(c.inFlight)
	return share * float64(c.calls())
}

// TestRetryBudget: against a deployment that fails every call, the budget
// keeps retries within 20% of the calls (and its floor); without it each
// request makes its 1+3 calls. (Given 0.2 as is, failsafe-go's budget lets
// 25% of the requests in flight retry: 25.5% of the calls here, over the
// bound.)
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	t.Run("budget", func(t *testing.T) {
		t.Parallel()
		c := outage(t, RetryBudgetOptions{}, 200)[0]
		t.Logf("%d calls for %d requests: %d retries (%.1f%%), %d refused", c.calls(), c.jobs, c.retries,
			100*float64(c.retries)/float64(c.calls()), c.denied)
		require.Positive(t, c.denied)
		require.LessOrEqual(t, float64(c.retries), c.bound(RetryBudgetOptions{}),
			"retries <= 20% of the calls + 3/200 (the floor)")
	})
	t.Run("floor", func(t *testing.T) {
		t.Parallel()
		// With 5 requests in flight, 20% is one retry: min_concurrency (3)
		// governs, 3 retries in flight whatever the rate.
		c := outage(t, RetryBudgetOptions{}, 5)[0]
		require.Positive(t, c.denied)
		require.LessOrEqual(t, float64(c.retries), c.bound(RetryBudgetOptions{}))
		require.Greater(t, float64(c.retries), 0.4*float64(c.calls()), "the floor, not the rate, bounds a few requests")
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		c := outage(t, RetryBudgetOptions{MaxRate: -1}, 50)[0]
		require.Zero(t, c.denied)
		require.Equal(t, int64(2000), c.calls(), "without a budget every request makes 1+3 calls")
	})
}

// TestRetryBudgetFleet: two routers (two workers) calling one failing
// deployment, each with its own budget and no shared counter, keep the
// fleet's retries within 20% of the fleet's calls plus each one's floor.
func TestRetryBudgetFleet(t *testing.T) {
	t.Parallel()
	cs := outage(t, RetryBudgetOptions{}, 150, 50)
	var retries, calls int64
	var bound float64
	for i, c := range cs {
		t.Logf("router %d: %d calls for %d requests, %d retries, %d refused", i, c.calls(), c.jobs, c.retries, c.denied)
		require.Positive(t, c.denied)
		retries, calls, bound = retries+c.retries, calls+c.calls(), bound+c.bound(RetryBudgetOptions{})
	}
	t.Logf("fleet: %d calls, %d retries (%.1f%%)", calls, retries, 100*float64(retries)/float64(calls))
	require.LessOrEqual(t, float64(retries), bound, "retries <= 20% of the fleet's calls + each router's floor")
}

// TestRetryBudgetShare: with n requests in flight on a router, the budget
// built from max_rate admits retries until they are max_rate of the
// requests, counting the last one admitted (failsafe-go alone checks
// before it counts it, and would admit one more), or min_concurrency when
// that is more.
func TestRetryBudgetShare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate     float64
		min, n   int
		admitted int
	}{
		{0.2, 3, 200, 40}, {0.2, 3, 100, 20}, {0.2, 3, 50, 10}, {0.2, 3, 12, 3}, {0.2, 3, 5, 3},
		{0.2, 0, 3, 0}, {0.2, 1, 3, 1}, {0.1, 0, 100, 10}, {0.5, 0, 10, 5}, {1, 0, 10, 10}, {0.3, 3, 5, 3},
	} {
		b := newBudget(RetryBudgetOptions{MaxRate: tc.rate, MinConcurrency: tc.min}).(budgetInternals)
		for range tc.n {
			b.RecordExecution()
		}
		admitted := 0
		for b.TryAcquirePermit() && admitted <= tc.n {
			admitted++
		}
		require.Equal(t, tc.admitted, admitted, "max_rate %v, min_concurrency %d, %d requests", tc.rate, tc.min, tc.n)
	}
}
