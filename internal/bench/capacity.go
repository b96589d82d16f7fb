package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// scheduling runs the sections about what the worker does with a
// provider's capacity: l (learned capacity), r (retry budget) and h
// (hedged first tokens).
func (c *compare) scheduling(ctx context.Context) error {
	if c.cfg.has('l') {
		if err := c.learnedCapacity(ctx); err != nil {
			return err
		}
	}
	if c.cfg.has('r') {
		if err := c.retryBudget(ctx); err != nil {
			return err
		}
	}
	if c.cfg.has('h') {
		if err := c.hedging(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Section l's mock: a hidden capacity of 40 calls, flat latency until then
// (a vendor's concurrency quota), 100ms to the first token and 10 more
// chunks 15ms apart: 250ms a call, so 40/0.25s = 160 calls/s at best.
const (
	capHidden   = 40
	capService  = 250 * time.Millisecond
	capJobs     = 2000
	capInFlight = 100
	capSettle   = 10 * time.Second
)

// learnedCapacity is section l: 2,000 jobs, 100 in flight, to a group
// whose one deployment hides a capacity of 40 behind 429s and learns it
// (adaptive_concurrency). The worker's metrics are sampled every 100ms.
func (c *compare) learnedCapacity(ctx context.Context) error {
	fmt.Fprintf(c.out, "\n== (l) learned capacity: mock with a hidden capacity of %d (429 + Retry-After 200ms above it, flat latency %s a call), %d jobs, %d in flight, one worker with SWITCHYARD_CONCURRENCY=%d\n",
		capHidden, capService, capJobs, capInFlight, capInFlight)
	models := fmt.Sprintf(`
groups:
  capacity:
    deployments:
      - name: quota
        provider: mock
        model: mock-1
        adaptive_concurrency: {}
        mock: {tokens: 10, ttft: 100ms, chunk_delay: 15ms, capacity: %d, capacity_slowdown: -1, retry_after: 200ms}
`, capHidden)
	p, err := c.startWorker(ctx, "worker-capacity", models, capInFlight, "capacity")
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	client, err := bus.NewClient(c.nc)
	if err != nil {
		return err
	}
	addr := c.metrics["worker-capacity"]
	start := time.Now()
	smp := &capSamples{}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { smp.sample(sctx, addr, start) })
	job := SwitchyardJob(client, "capacity", Prompt(c.cfg.PromptBytes), true, nil)
	rep, err := Run(ctx, "learned capacity", LoadConfig{Jobs: capJobs, Concurrency: capInFlight, JobTimeout: time.Minute, MaxDuration: 2 * time.Minute},
		func(ctx context.Context, i int) Outcome {
			o := job(ctx, i)
			if o.Code == "" {
				smp.mu.Lock()
				smp.done = append(smp.done, time.Now())
				smp.mu.Unlock()
			}
			return o
		})
	stop()
	wg.Wait()
	if err != nil {
		return err
	}
	m, err := scrape(ctx, addr)
	if err != nil {
		return err
	}
	rep.Print(c.out)
	calls, refused := m.sum("switchyard_attempts_total")-smp.at10[0], m.sum("switchyard_attempts_total", `code="rate_limited"`)-smp.at10[1]
	tput := smp.throughput(start)
	inFlight, limits := smp.inFlight, smp.limits
	ideal := float64(capHidden) / capService.Seconds()
	fmt.Fprintf(c.out, "  after the first %s: calls in flight mean %.1f (target 35-45), learned limit mean %.1f; %s of %.0f calls got a 429 (target < 1%%)\n",
		capSettle, mean(inFlight), mean(limits), pct(refused, calls), calls)
	fmt.Fprintf(c.out, "  throughput after %s: %.1f jobs/s = %.0f%% of capacity / service time (%d / %s = %.0f/s; target >= 90%%); over the whole run %.1f jobs/s\n",
		capSettle, tput, 100*tput/ideal, capHidden, capService, ideal, rep.JobsPerSec())
	seen := rep.Errors[string(bus.CodeRateLimited)]
	fmt.Fprintf(c.out, "  clients that saw rate_limited: %d (target 0)\n", seen)
	c.goals = append(c.goals,
		goal{name: "(l) calls in flight after 10s, mean", got: fmt.Sprintf("%.1f", mean(inFlight)), target: "35-45", met: mean(inFlight) >= 35 && mean(inFlight) <= 45},
		goal{name: "(l) calls answered 429 after 10s", got: pct(refused, calls), target: "< 1%", met: refused < 0.01*calls},
		atLeast("(l) throughput after 10s / (capacity / service time)", tput/ideal, 0.9, fmt.Sprintf("%.0f jobs/s", tput)),
		goal{name: "(l) clients that saw rate_limited", got: strconv.Itoa(seen), target: "0", met: seen == 0})
	return nil
}

// capSamples are section l's samples of the worker's metrics, after
// capSettle, and the completions of the jobs that ended ok.
type capSamples struct {
	mu       sync.Mutex
	done     []time.Time // completions of jobs that ended ok
	inFlight []float64   // calls in flight, sampled after capSettle
	limits   []float64
	at10     [2]float64 // attempts and 429s at capSettle
}

// sample scrapes the worker at addr every 100ms until ctx ends.
func (s *capSamples) sample(ctx context.Context, addr string, start time.Time) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(start) < capSettle {
			continue
		}
		m, err := scrape(ctx, addr)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.at10[0] == 0 {
			s.at10 = [2]float64{m.sum("switchyard_attempts_total"), m.sum("switchyard_attempts_total", `code="rate_limited"`)}
		}
		s.inFlight = append(s.inFlight, m.sum("switchyard_deployment_calls_in_flight", `group="capacity"`))
		s.limits = append(s.limits, m.sum("switchyard_deployment_concurrency_limit", `group="capacity"`))
		s.mu.Unlock()
	}
}

// throughput is the jobs/s that ended ok after capSettle.
func (s *capSamples) throughput(start time.Time) float64 {
	late := 0
	for _, t := range s.done {
		if t.Sub(start) >= capSettle {
			late++
		}
	}
	if d := time.Since(start) - capSettle; len(s.done) > 0 && d > 0 {
		last := s.done[len(s.done)-1].Sub(start) - capSettle
		return float64(late) / max(last, time.Millisecond).Seconds()
	}
	return 0
}

// retryBudget is section r: two workers serve a group whose one deployment
// fails every call (503 after 100ms; no breaker, 3 retries each), 1,000
// jobs at 100 in flight. The workers' own counts of calls give the share
// of retries, fleet-wide, against the target: retries at most 20%
// of the calls. The budget keeps each worker's retries in flight within
// 20% of its requests in flight (or min_concurrency, 3); the backoff is 1ms
// so that requests in flight are calls in flight.
func (c *compare) retryBudget(ctx context.Context) error {
	const jobs, inFlight = 1000, 100
	fmt.Fprintf(c.out, "\n== (r) retry budget: a deployment failing 100%% of calls (503 after 100ms, no breaker, max_retries 3, budget max_rate 0.2), %d jobs, %d in flight, two workers\n", jobs, inFlight)
	models := `
groups:
  outage:
    retry: {max_retries: 3, backoff: {initial: 1ms, max: 1ms}}
    breaker: {disabled: true}
    deployments:
      - name: down
        provider: mock
        model: mock-1
        mock: {error_rate: {unavailable: 1}, error_delay: 100ms}
`
	var workers []string
	for _, name := range []string{"worker-budget-1", "worker-budget-2"} {
		p, err := c.startWorker(ctx, name, models, inFlight, "outage")
		if err != nil {
			return err
		}
		defer p.Stop(30 * time.Second)
		workers = append(workers, name)
	}
	client, err := bus.NewClient(c.nc)
	if err != nil {
		return err
	}
	rep, err := Run(ctx, "retry budget", LoadConfig{Jobs: jobs, Concurrency: inFlight, JobTimeout: time.Minute, MaxDuration: 2 * time.Minute},
		SwitchyardJob(client, "outage", Prompt(c.cfg.PromptBytes), false, nil))
	if err != nil {
		return err
	}
	rep.Print(c.out)
	var total float64
	for _, w := range workers {
		m, err := scrape(ctx, c.metrics[w])
		if err != nil {
			return err
		}
		n := m.sum("switchyard_attempts_total", `group="outage"`)
		total += n
		fmt.Fprintf(c.out, "  %s: %.0f calls\n", w, n)
	}
	retries := total - float64(rep.Jobs)
	fmt.Fprintf(c.out, "  fleet: %.0f calls for %d jobs: %.0f retries = %s of the calls (budget: retries in flight <= 20%% of requests in flight, or 3, per worker; without it 1+3 calls a job: 75%%)\n",
		total, rep.Jobs, retries, pct(retries, total))
	c.goals = append(c.goals, goal{name: "(r) retries, share of both workers' calls (no budget: 75%)", got: pct(retries, total),
		target: "<= 20%", met: total > 0 && retries <= 0.2*total})
	return nil
}

// metricLines are the sample lines of a Prometheus text exposition.
type metricLines []string

// scrape reads the worker's /metrics.
func scrape(ctx context.Context, addr string) (metricLines, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	var out metricLines
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// sum adds the values of the samples of metric name whose labels contain
// every one of labels.
func (m metricLines) sum(name string, labels ...string) float64 {
	var total float64
	for _, l := range m {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, want := range labels {
			ok = ok && strings.Contains(l, want)
		}
		i := strings.LastIndexByte(l, ' ')
		if !ok || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			total += v
		}
	}
	return total
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func pct(part, whole float64) string {
	if whole <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", 100*part/whole)
}
