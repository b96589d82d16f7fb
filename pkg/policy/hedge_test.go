package policy

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// The hedge tests run in fake time (testing/synctest): the mock's first
// tokens and the hedge's delay are timers, so the races are decided by the
// configured times, not by the machine's load.

// hedging is a group of two deployments, a then b (priority order), that
// hedges after delay.
func hedging(t *testing.T, a, b *mock.Provider, h HedgeOptions) *Router {
	t.Helper()
	o := fast()
	o.Hedge = &h
	price := DeploymentOptions{InputCostPerMTok: usd(1), OutputCostPerMTok: usd(2)}
	return newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", a, price), dep("b", b, price)}})
}

func interactive(text string) *Call {
	return &Call{Group: "g", Request: req(text), Priority: PriorityInteractive}
}

// requireOneAttemptsEvents checks that every event came from deployment d.
func requireEventsFrom(t *testing.T, rec *recorder, d string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.NotEmpty(t, rec.events)
	require.Equal(t, EventStart, rec.events[0].Type)
	for _, e := range rec.events {
		require.Equal(t, d, e.Deployment, "event %s of another attempt", e.Type)
	}
}

func TestHedgeWinsOnAnotherDeployment(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := mock.New(mock.Config{Text: "slow answer from a", TTFT: time.Second})
		b := mock.New(mock.Config{Text: "fast answer from b", TTFT: 20 * time.Millisecond})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		rec := &recorder{}
		start := time.Now()
		out, err := r.Execute(t.Context(), interactive("x"), rec.emit)
		require.NoError(t, err)
		// b's first token at 120ms won; a was cancelled, not waited for.
		require.Less(t, time.Since(start), time.Second)
		require.Equal(t, "b", out.Deployment)
		require.Equal(t, "fast answer from b", out.Text)
		requireEventsFrom(t, rec, "b")
		require.Equal(t, 1, out.Hedges)
		require.Len(t, out.Attempts, 2)
		lost, won := out.Attempts[0], out.Attempts[1]
		require.Equal(t, "a", lost.Deployment)
		require.False(t, lost.Hedge)
		require.Equal(t, RaceCancelled, lost.Race)
		require.Equal(t, "cancelled", lost.Code)
		require.Equal(t, llm.KindCancelled, llm.KindOf(lost.Err))
		require.Positive(t, lost.CostUSD, "the cancelled attempt's prompt is estimated")
		require.Equal(t, "b", won.Deployment)
		require.True(t, won.Hedge)
		require.Equal(t, RaceWon, won.Race)
		require.NoError(t, won.Err)
		require.InDelta(t, catalogCost(out)+lost.CostUSD, out.CostUSD, 1e-12, "cost_usd counts the cancelled attempt")
		require.EqualValues(t, 1, a.Calls())
		require.EqualValues(t, 1, b.Calls())
	})
}

// catalogCost is what the answer itself cost, at the test's prices.
func catalogCost(out *Outcome) float64 {
	return (float64(out.Usage.PromptTokens)*1 + float64(out.Usage.CompletionTokens)*2) / 1e6
}

func TestHedgeLosesToThePrimary(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := mock.New(mock.Config{Text: "answer from a", TTFT: 150 * time.Millisecond})
		b := mock.New(mock.Config{Text: "answer from b", TTFT: 500 * time.Millisecond})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		rec := &recorder{}
		out, err := r.Execute(t.Context(), interactive("x"), rec.emit)
		require.NoError(t, err)
		require.Equal(t, "a", out.Deployment)
		require.Equal(t, "answer from a", out.Text)
		requireEventsFrom(t, rec, "a")
		require.Len(t, out.Attempts, 2)
		require.Equal(t, RaceWon, out.Attempts[0].Race)
		require.Equal(t, "b", out.Attempts[1].Deployment)
		require.True(t, out.Attempts[1].Hedge)
		require.Equal(t, RaceCancelled, out.Attempts[1].Race)
	})
}

func TestNoHedgeWhenTheFirstTokenIsInTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := mock.New(mock.Config{TTFT: 50 * time.Millisecond, ChunkDelay: 100 * time.Millisecond, Tokens: 5})
		b := mock.New(mock.Config{})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		out, err := r.Execute(t.Context(), interactive("x"), nil)
		require.NoError(t, err)
		// The stream outlives the delay: the winner's first token is what
		// counts, not its end.
		require.Equal(t, "a", out.Deployment)
		require.Zero(t, out.Hedges)
		require.Len(t, out.Attempts, 1)
		require.Empty(t, out.Attempts[0].Race)
		require.EqualValues(t, 0, b.Calls())
	})
}

func TestNoHedgeForOtherClasses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := mock.New(mock.Config{Text: "from a", TTFT: time.Second})
		b := mock.New(mock.Config{})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		// default and batch jobs are not Interactive.
		out, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
		require.NoError(t, err)
		require.Equal(t, "from a", out.Text)
		require.Zero(t, out.Hedges)
		require.Len(t, out.Attempts, 1)
		require.EqualValues(t, 0, b.Calls())
	})
}

func TestHedgeWhenThePrimaryFailsBeforeItsFirstToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// a fails at 300ms, while the hedge (started at 100ms) runs: the
		// race goes on and the hedge answers, with no retry.
		a := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}, ErrorDelay: 300 * time.Millisecond})
		b := mock.New(mock.Config{Text: "from b", TTFT: 400 * time.Millisecond})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		rec := &recorder{}
		out, err := r.Execute(t.Context(), interactive("x"), rec.emit)
		require.NoError(t, err)
		require.Equal(t, "from b", out.Text)
		requireEventsFrom(t, rec, "b")
		require.Zero(t, out.Retries)
		require.Len(t, out.Attempts, 2)
		require.Equal(t, "unavailable", out.Attempts[0].Code)
		require.Empty(t, out.Attempts[0].Race, "a failed on its own")
		require.True(t, out.Attempts[1].Hedge)
		require.Equal(t, RaceWon, out.Attempts[1].Race)
	})
	synctest.Test(t, func(t *testing.T) {
		// a fails before the delay: no hedge, the retry takes over.
		a := mock.New(mock.Config{Script: []mock.Step{{Error: "unavailable"}}, Text: "from a"})
		b := mock.New(mock.Config{})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		out, err := r.Execute(t.Context(), interactive("x"), nil)
		require.NoError(t, err)
		require.Zero(t, out.Hedges)
		require.Equal(t, 1, out.Retries)
		require.Len(t, out.Attempts, 2)
	})
}

func TestHedgeEndsWithTheCaller(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := mock.New(mock.Config{TTFT: 10 * time.Second})
		b := mock.New(mock.Config{TTFT: 10 * time.Second})
		r := hedging(t, a, b, HedgeOptions{Delay: 100 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		rec := &recorder{}
		start := time.Now()
		out, err := r.Execute(ctx, interactive("x"), rec.emit)
		require.Error(t, err)
		require.True(t, errors.Is(err, context.Canceled) || llm.KindOf(err) == llm.KindCancelled, "%v", err)
		require.Less(t, time.Since(start), time.Second)
		require.Empty(t, rec.events, "nothing is emitted before a winner")
		require.Len(t, out.Attempts, 2, "both calls are recorded")
		require.True(t, out.Attempts[1].Hedge)
	})
}

func TestHedgeBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// Five calls at once; each one's hedge is due at 100ms, while the
		// others' run. The budget lets min_concurrency (3) hedges run
		// whatever the rate; for the fourth, 3 hedges for 5 requests in
		// flight are over max_rate 0.3 of them: refused, as is the fifth.
		// (Were each request counted twice, by the retry and the hedge
		// policy, 3 hedges would be under 0.3 of 10: allowed.)
		a := mock.New(mock.Config{TTFT: time.Second})
		b := mock.New(mock.Config{TTFT: 500 * time.Millisecond})
		o := fast()
		o.Hedge = &HedgeOptions{Delay: 100 * time.Millisecond}
		o.Retry.Budget.MaxRate = 0.3
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", a, DeploymentOptions{}), dep("b", b, DeploymentOptions{})}})
		var mu sync.Mutex
		var hedges, denied int
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				out, err := r.Execute(t.Context(), interactive("x"), nil)
				require.NoError(t, err)
				mu.Lock()
				hedges += out.Hedges
				denied += out.BudgetDenied
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Equal(t, 3, hedges)
		require.Equal(t, 2, denied)
		require.EqualValues(t, 3, b.Calls())
		require.EqualValues(t, 5, a.Calls())
	})
}

func TestHedgeByPercentile(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fastA := mock.New(mock.Config{Text: "from a", TTFT: 40 * time.Millisecond})
		slowA := mock.New(mock.Config{Text: "from a", TTFT: time.Second})
		a := &switching{first: fastA, then: slowA, after: ttftMinSamples}
		b := mock.New(mock.Config{Text: "from b", TTFT: 40 * time.Millisecond})
		o := fast()
		o.Hedge = &HedgeOptions{Percentile: 90}
		r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{
			{Name: "a", Model: "mock-a", Provider: a}, dep("b", b, DeploymentOptions{})}})
		// Until a has 10 first tokens there is no percentile, and no
		// min_delay: no hedge.
		for range ttftMinSamples {
			out, err := r.Execute(t.Context(), interactive("x"), nil)
			require.NoError(t, err)
			require.Zero(t, out.Hedges)
		}
		// Then a's p90 is 40ms: its slow first token is hedged at 40ms.
		start := time.Now()
		out, err := r.Execute(t.Context(), interactive("x"), nil)
		require.NoError(t, err)
		require.Equal(t, "from b", out.Text)
		require.Equal(t, 80*time.Millisecond, time.Since(start).Round(10*time.Millisecond))
		require.EqualValues(t, 1, b.Calls())
	})
}

// switching sends its first after calls to first, the others to then.
type switching struct {
	mu          sync.Mutex
	n, after    int
	first, then llm.Provider
}

func (s *switching) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	s.mu.Lock()
	s.n++
	p := s.first
	if s.n > s.after {
		p = s.then
	}
	s.mu.Unlock()
	return p.Stream(ctx, req)
}

func TestTTFTPercentile(t *testing.T) {
	t.Parallel()
	s := &depState{}
	_, ok := s.ttftPercentile(95)
	require.False(t, ok)
	for i := 1; i <= 100; i++ {
		s.observe(time.Duration(i) * time.Millisecond)
	}
	// The window keeps the last 64: 37ms..100ms.
	p, ok := s.ttftPercentile(50)
	require.True(t, ok)
	require.Equal(t, 68*time.Millisecond, p)
	p, _ = s.ttftPercentile(95)
	require.Equal(t, 97*time.Millisecond, p)
}

func TestHedgeOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		o   HedgeOptions
		key string
	}{
		{HedgeOptions{Delay: -time.Second}, "hedge.delay"},
		{HedgeOptions{MinDelay: -time.Second}, "hedge.min_delay"},
		{HedgeOptions{Delay: time.Second, Percentile: 90}, "hedge.delay"},
		{HedgeOptions{Delay: time.Second, MinDelay: time.Second}, "hedge.delay"},
		{HedgeOptions{Percentile: 100}, "hedge.percentile"},
		{HedgeOptions{Percentile: -5}, "hedge.percentile"},
		{HedgeOptions{MaxHedges: 4}, "hedge.max_hedges"},
		{HedgeOptions{MaxHedges: -1}, "hedge.max_hedges"},
	} {
		o := fast()
		o.Hedge = &c.o
		err := o.Validate()
		var oe *OptionError
		require.ErrorAs(t, err, &oe, "%+v", c.o)
		require.Equal(t, c.key, oe.Key, "%+v", c.o)
	}
	o := fast()
	o.Hedge = &HedgeOptions{Percentile: 90, MinDelay: time.Millisecond, MaxHedges: 2}
	require.NoError(t, o.Validate())
	require.Equal(t, HedgeOptions{Percentile: 95, MaxHedges: 1}, (HedgeOptions{}).WithDefaults())
	require.Equal(t, HedgeOptions{Delay: time.Second, MaxHedges: 1}, (HedgeOptions{Delay: time.Second}).WithDefaults())
}

// usdCharged records what a tenant budget is charged.
type usdCharged struct {
	mu  sync.Mutex
	usd float64
}

func (u *usdCharged) Allow(context.Context, string) error { return nil }
func (u *usdCharged) Charge(_ context.Context, _ string, _ int, usd float64) error {
	u.mu.Lock()
	u.usd += usd
	u.mu.Unlock()
	return nil
}

// TestHedgeCostWhenTheWinnerFails: a hedge wins the race with its first
// token, cancelling the primary, then fails mid-stream. The cancelled
// primary's estimated cost still counts, in the outcome's cost and in what
// the tenant's budget is charged: when the request then succeeds on a
// retry, and when it fails. (It was added to the winner's outcome only,
// which a winner that fails does not have.)
func TestHedgeCostWhenTheWinnerFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		retries int
		ok      bool
	}{{"retried", 1, true}, {"failed", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := mock.New(mock.Config{Text: "slow answer from a", TTFT: time.Second})
				b := mock.New(mock.Config{Text: "answer from b", TTFT: 20 * time.Millisecond, Script: []mock.Step{{FailAfter: 1}}})
				o := fast()
				o.Retry.MaxRetries = tc.retries
				o.Hedge = &HedgeOptions{Delay: 100 * time.Millisecond}
				price := DeploymentOptions{InputCostPerMTok: usd(1), OutputCostPerMTok: usd(2)}
				r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", a, price), dep("b", b, price)}})
				charged := &usdCharged{}
				e := Chain(r, TenantBudget(charged, BudgetOptions{}))
				c := interactive("x")
				c.Tenant = "acme"
				out, err := e.Execute(t.Context(), c, nil)
				if tc.ok {
					require.NoError(t, err)
				} else {
					require.Error(t, err)
				}
				var lost float64
				for _, at := range out.Attempts {
					if at.Race == RaceCancelled {
						require.Equal(t, "a", at.Deployment)
						lost += at.CostUSD
					}
				}
				require.Positive(t, lost, "the primary was cancelled by the hedge's first token")
				want := lost
				if tc.ok {
					want += catalogCost(out)
				}
				require.InDelta(t, want, out.CostUSD, 1e-12, "cost_usd counts the cancelled attempt")
				require.InDelta(t, want, charged.usd, 1e-12, "the tenant is charged for it")
			})
		})
	}
}

// TestTTFTSamples: the kept-sorted window gives the nearest-rank
// percentile of the last ttftWindow first tokens, as sorting them would,
// through the window's wrap, with repeated values; a clone is independent.
func TestTTFTSamples(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var w ttftSamples
	var all []time.Duration
	for i := range 300 {
		d := time.Duration(rng.IntN(40)) * time.Millisecond // repeats
		w.add(d)
		all = append(all, d)
		last := all[max(0, len(all)-ttftWindow):]
		for _, p := range []float64{1, 50, 90, 95, 99.9} {
			got, ok := w.percentile(p)
			if len(last) < ttftMinSamples {
				require.False(t, ok)
				continue
			}
			want := slices.Sorted(slices.Values(last))
			require.True(t, ok)
			require.Equal(t, want[min(max(int(math.Ceil(p/100*float64(len(want))))-1, 0), len(want)-1)], got, "sample %d, p%v", i, p)
		}
	}
	c := w.clone()
	before, _ := c.percentile(50)
	for range ttftWindow {
		w.add(time.Hour)
	}
	after, _ := c.percentile(50)
	require.Equal(t, before, after, "the clone shares nothing")
}

// BenchmarkHedgeDelay is what an interactive call pays to learn its hedge
// delay, with a full window of first tokens, one new first token per call
// (go test -bench HedgeDelay ./pkg/policy/).
func BenchmarkHedgeDelay(b *testing.B) {
	s := &depState{}
	for i := range ttftWindow {
		s.observe(time.Duration(i*7919%1000) * time.Millisecond)
	}
	d := &deployment{state: s}
	o := HedgeOptions{Percentile: 95}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.observe(time.Duration(i*7919%1000) * time.Millisecond)
		if o.delayFor(d) <= 0 {
			b.Fatal("no delay")
		}
	}
}
