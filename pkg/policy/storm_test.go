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

// TestFaultStorm: 500 requests against a group whose deployments fail 30%
// with 5xx and 20% with 429 + Retry-After, and one deployment hangs. Every
// request must end ok within its deadline, and the attempts must add up.
func TestFaultStorm(t *testing.T) {
	t.Parallel()
	// Fake time (testing/synctest): timeouts, backoffs and the hang cost no
	// wall time, and no load on the machine can make a deadline pass.
	synctest.Test(t, func(t *testing.T) {
		faulty := func(seed int64) *mock.Provider {
			return mock.New(mock.Config{Seed: seed, Tokens: 5, RetryAfter: 5 * time.Millisecond,
				ErrorRate: map[string]float64{"unavailable": 0.3, "rate_limited": 0.2}})
		}
		a, b, c := faulty(1), faulty(2), faulty(3)
		hang := mock.New(mock.Config{HangRate: 1})
		o := GroupOptions{
			Strategy: StrategyWeighted,
			// Half the calls fail: the retry budget (TestRetryBudget) would end
			// requests with their failure, by design; this storm is about
			// retries absorbing faults.
			Retry: RetryOptions{MaxRetries: 30, Backoff: BackoffOptions{Initial: time.Millisecond, Max: 4 * time.Millisecond}, Budget: RetryBudgetOptions{MaxRate: -1}},
			// A rate-based breaker trips on the hanging deployment (100% failures)
			// but not on the merely flaky ones (30%).
			Breaker:  BreakerOptions{Failures: 3, FailureRate: 0.9, Period: 10 * time.Second, Cooldown: 10 * time.Second},
			Timeouts: TimeoutOptions{TTFT: 20 * time.Millisecond},
		}
		r := newRouter(t, Group{Name: "storm", Options: o, Deployments: []Deployment{
			dep("a", a, DeploymentOptions{}), dep("b", b, DeploymentOptions{}), dep("c", c, DeploymentOptions{}), dep("hang", hang, DeploymentOptions{}),
		}})

		const jobs, workers = 500, 25
		const deadline = 3 * time.Second
		type res struct {
			attempts, retries, fallbacks int
			took                         time.Duration
			err                          error
		}
		results := make(chan res, jobs)
		work := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range work {
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					start := time.Now()
					out, err := r.Execute(ctx, &Call{Group: "storm", Request: req("storm")}, nil)
					cancel()
					results <- res{len(out.Attempts), out.Retries, out.Fallbacks, time.Since(start), err}
				}
			})
		}
		for i := range jobs {
			work <- i
		}
		close(work)
		wg.Wait()
		close(results)

		var attempts, retries int
		for r := range results {
			require.NoError(t, r.err)
			require.Less(t, r.took, deadline)
			require.Equal(t, r.attempts, 1+r.retries+r.fallbacks, "every attempt is announced")
			attempts += r.attempts
			retries += r.retries
		}
		calls := a.Calls() + b.Calls() + c.Calls() + hang.Calls()
		require.EqualValues(t, attempts, calls, "every upstream call is an attempt")
		require.EqualValues(t, jobs, a.CallsOK()+b.CallsOK()+c.CallsOK())
		require.Equal(t, attempts-jobs, retries)
		require.Less(t, hang.Calls(), int64(workers+10), "once open, the breaker keeps the hanging deployment out")
		t.Logf("%d jobs, %d calls, %d retries, hang called %d times", jobs, calls, retries, hang.Calls())
	})
}
