package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Section h's workload: interactive jobs to a group whose first deployment
// ("tail") answers its first token after hedgeTTFT, ten times later on 10%
// of its calls; its second ("steady", priority 1) always after hedgeTTFT.
// The same group twice, without a hedge and with one, hedgeJobs jobs each,
// hedgeInFlight at a time.
const (
	hedgeTTFT     = 50 * time.Millisecond
	hedgeJobs     = 500
	hedgeInFlight = 8
	hedgeMinDelay = 80 * time.Millisecond
)

// hedgeModels is section h's model file: the two groups differ only in
// their hedge.
func hedgeModels() string {
	deps := func(suffix string) string {
		return fmt.Sprintf(`
      - name: tail-%[1]s
        provider: mock
        model: mock-1
        mock: {tokens: 5, ttft: %[2]s, chunk_delay: 5ms, slow_rate: 0.1, slow_factor: 10, seed: 1}
      - name: steady-%[1]s
        provider: mock
        model: mock-1
        priority: 1
        mock: {tokens: 5, ttft: %[2]s, chunk_delay: 5ms, seed: 2}`, suffix, hedgeTTFT)
	}
	return fmt.Sprintf(`
groups:
  hedge-off:
    deployments:%s
  hedge-on:
    hedge: {percentile: 90, min_delay: %s}
    deployments:%s
`, deps("off"), hedgeMinDelay, deps("on"))
}

// hedgeTally counts, over one side's results, the provider calls their
// attempts list and the hedges among them.
type hedgeTally struct {
	mu                           sync.Mutex
	results, calls, hedges, wins int
	cancelled                    int
	slowUnhedged                 int // results whose first token was late but list no hedge
}

func (h *hedgeTally) add(res *bus.Result, ttft time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results++
	h.calls += len(res.Attempts)
	hedged := false
	for _, a := range res.Attempts {
		if a.Hedge {
			h.hedges++
			hedged = true
		}
		if a.Hedge && a.Race == "won" {
			h.wins++
		}
		if a.Race == "cancelled" {
			h.cancelled++
		}
	}
	if !hedged && ttft > 5*hedgeTTFT {
		h.slowUnhedged++
	}
}

// hedgeJob submits an interactive streamed job to group and tallies its
// result's attempts.
func hedgeJob(c *bus.Client, group, prompt string, tally *hedgeTally) JobFunc {
	return func(ctx context.Context, i int) Outcome {
		req := &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt)}}, Priority: bus.PriorityInteractive}
		t0 := time.Now()
		job, err := c.Publish(ctx, group, req)
		if err != nil {
			return Outcome{Code: codeOf(err)}
		}
		defer job.Close()
		var o Outcome
		for {
			ev, res, err := job.Next(ctx)
			switch {
			case err != nil:
				o.Code = codeOf(err)
				return o
			case res != nil:
				if res.Status != bus.StatusOK {
					o.Code = string(bus.CodeInternal)
					if res.Error != nil {
						o.Code = string(res.Error.Code)
					}
					return o
				}
				tally.add(res, o.FirstChunk)
				return o
			case ev.Type == bus.EventChunk && o.FirstChunk == 0:
				o.FirstChunk = time.Since(t0)
			}
		}
	}
}

// hedging is section h: interactive TTFT p99 without and with the hedge,
// the extra provider calls the hedge costs, and that every hedged result
// lists its hedge.
func (c *compare) hedging(ctx context.Context) error {
	fmt.Fprintf(c.out, "\n== (h) hedged first tokens: a deployment whose first token comes after %s, 10x later on 10%% of calls, and a steady one; %d interactive jobs per side, %d in flight; hedge {percentile: 90, min_delay: %s}\n",
		hedgeTTFT, hedgeJobs, hedgeInFlight, hedgeMinDelay)
	p, err := c.startWorker(ctx, "worker-hedge", hedgeModels(), 64, "hedge-off", "hedge-on")
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	client, err := bus.NewClient(c.nc)
	if err != nil {
		return err
	}
	prompt := Prompt(c.cfg.PromptBytes)
	var reps [2]*Report
	var tallies [2]hedgeTally
	for i, group := range []string{"hedge-off", "hedge-on"} {
		rep, err := Run(ctx, group, LoadConfig{Jobs: hedgeJobs, Concurrency: hedgeInFlight, JobTimeout: 30 * time.Second, MaxDuration: 20 * time.Second},
			hedgeJob(client, group, prompt, &tallies[i]))
		if err != nil {
			return err
		}
		rep.Print(c.out)
		reps[i] = rep
	}
	off, on := reps[0].FirstChunk.Quantile(.99), reps[1].FirstChunk.Quantile(.99)
	t := &tallies[1]
	extra := float64(t.calls-t.results) / float64(max(t.results, 1))
	fmt.Fprintf(c.out, "  TTFT p99 (client: publish to first chunk): off %s, on %s: %.2fx lower (target >= 3x)\n", ms(off), ms(on), float64(off)/float64(max(on, 1)))
	fmt.Fprintf(c.out, "  with the hedge: %d results, %d provider calls (%.1f%% extra; target <= 15%%), %d hedges (%d won), %d attempts cancelled; results with a late first token and no hedge listed: %d\n",
		t.results, t.calls, 100*extra, t.hedges, t.wins, t.cancelled, t.slowUnhedged)
	c.goals = append(c.goals,
		atLeast("(h) interactive TTFT p99, hedge off / on", float64(off)/float64(max(on, 1)), 3, ms(off)+" / "+ms(on)),
		goal{name: "(h) extra provider calls with the hedge", got: fmt.Sprintf("%.1f%%", 100*extra), target: "<= 15%", met: extra <= 0.15},
		goal{name: "(h) extra calls listed as hedges in attempts", got: fmt.Sprintf("%d of %d", t.hedges, t.calls-t.results), target: "all", met: t.hedges == t.calls-t.results && t.results == hedgeJobs},
		goal{name: "(h) late first tokens (> 5x) without a hedge listed", got: fmt.Sprint(t.slowUnhedged), target: "0", met: t.slowUnhedged == 0})
	return nil
}
