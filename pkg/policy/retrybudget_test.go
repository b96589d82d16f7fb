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

// outage sends 1000 requests, 50 at a time, to a deployment that fails
// every call after 50ms, with 3 retries each and no breaker, and returns
// the provider's calls and the retries the budget refused.
func outage(t *testing.T, b RetryBudgetOptions) (calls int64, denied int) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		p := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}, ErrorDelay: 50 * time.Millisecond})
		o := fast()
		o.Retry.MaxRetries = 3
		o.Retry.Budget = b
		o.Breaker.Disabled = true
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("down", p, DeploymentOptions{})}})
		const jobs, inFlight = 1000, 50
		work := make(chan struct{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				for range work {
					out, err := r.Execute(context.Background(), &Call{Group: "g", Request: req("x")}, nil)
					require.Error(t, err)
					mu.Lock()
					denied += out.BudgetDenied
					mu.Unlock()
				}
			})
		}
		for range jobs {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		calls = p.Calls()
	})
	return calls, denied
}

// TestRetryBudget: against a deployment that fails every call, the budget
// keeps retries near 20% of the calls (its rate of executions in flight);
// without it each request makes its 1+3 calls.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	t.Run("budget", func(t *testing.T) {
		t.Parallel()
		calls, denied := outage(t, RetryBudgetOptions{})
		t.Logf("calls %d for 1000 requests, %d retries refused", calls, denied)
		require.Positive(t, denied)
		retries := float64(calls - 1000)
		require.LessOrEqual(t, retries, 0.3*float64(calls), "retries stay near 20%% of the calls")
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		calls, denied := outage(t, RetryBudgetOptions{MaxRate: -1})
		require.Zero(t, denied)
		require.Equal(t, int64(4000), calls, "without a budget every request makes 1+3 calls")
	})
}
