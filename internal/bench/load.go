package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Outcome is what one job reports to the runner.
type Outcome struct {
	// FirstChunk is the time from publication to the first chunk; zero
	// when no chunk arrived (a non-streamed job, or a failure).
	FirstChunk time.Duration
	// Code is empty for a job that ended ok, else its error code
	// (bus.ErrorCode values, or "transport" / "timeout" seen by the client).
	Code string
	// Queued is the time the job waited in the stream before a worker
	// picked it up, as the worker reports it (millisecond resolution);
	// zero when unknown.
	Queued time.Duration
}

// Codes the runner itself gives to jobs that did not end with a result.
const (
	CodeTransport = "transport"      // publishing or reading failed
	CodeNoResult  = "client_timeout" // no result within LoadConfig.JobTimeout
)

// JobFunc runs job number i (0-based) and reports how it went. It must
// return when ctx is done.
type JobFunc func(ctx context.Context, i int) Outcome

// LoadConfig shapes a load run. Every loop it drives is bounded by Jobs and
// by MaxDuration.
type LoadConfig struct {
	// Jobs is the number of jobs to run. Required.
	Jobs int
	// Rate starts jobs at this many per second (open loop). Zero runs them
	// as fast as possible with Concurrency in flight (closed loop).
	Rate float64
	// Concurrency is the number of jobs in flight in closed-loop mode
	// (default 64), and the cap on jobs in flight at a fixed rate (default
	// 20000), past which starts are delayed rather than piled up.
	Concurrency int
	// JobTimeout bounds one job (default 60s).
	JobTimeout time.Duration
	// MaxDuration stops starting jobs after this long (default 10 minutes).
	MaxDuration time.Duration
}

func (c LoadConfig) withDefaults() LoadConfig {
	if c.Rate > 0 {
		c.Concurrency = cmp.Or(c.Concurrency, 20000)
	}
	c.Concurrency = cmp.Or(c.Concurrency, 64)
	c.JobTimeout = cmp.Or(c.JobTimeout, time.Minute)
	c.MaxDuration = cmp.Or(c.MaxDuration, 10*time.Minute)
	return c
}

// Report holds the figures of one load run.
type Report struct {
	Name string
	// Jobs is the number of jobs started; OK the number that ended ok.
	Jobs, OK int
	// Errors counts failed jobs by code.
	Errors map[string]int
	// Elapsed runs from the first start to the last completion.
	Elapsed time.Duration
	// FirstChunk is publication to first chunk; Completion is publication
	// to result.
	FirstChunk, Completion *Histogram
	// Queued is the worker-reported wait in the stream, for jobs that
	// report one.
	Queued *Histogram
}

// JobsPerSec is the rate of jobs that ended ok.
func (r *Report) JobsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Failed is the number of jobs that did not end ok.
func (r *Report) Failed() int {
	n := 0
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// ms formats a duration in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// Print writes the report as a few aligned lines.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%s: %d jobs, %d ok, %.1f jobs/s in %s\n", r.Name, r.Jobs, r.OK, r.JobsPerSec(), r.Elapsed.Round(time.Millisecond))
	if r.FirstChunk.Count() > 0 {
		fmt.Fprintf(w, "  first chunk  p50 %s  p99 %s  max %s\n", ms(r.FirstChunk.Quantile(.5)), ms(r.FirstChunk.Quantile(.99)), ms(r.FirstChunk.Max()))
	}
	if r.Completion.Count() > 0 {
		fmt.Fprintf(w, "  completion   p50 %s  p99 %s  max %s\n", ms(r.Completion.Quantile(.5)), ms(r.Completion.Quantile(.99)), ms(r.Completion.Max()))
	}
	if r.Queued.Count() > 0 {
		fmt.Fprintf(w, "  queued       p50 %s  p99 %s  max %s (worker-reported, ms resolution)\n", ms(r.Queued.Quantile(.5)), ms(r.Queued.Quantile(.99)), ms(r.Queued.Max()))
	}
	if len(r.Errors) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s=%d", code, r.Errors[code]))
		}
		fmt.Fprintf(w, "  errors       %s\n", strings.Join(parts, " "))
	}
}

// Run runs cfg.Jobs jobs with fn and returns their figures. It stops
// starting jobs when ctx ends or MaxDuration passes, and waits for the
// started ones (each bounded by JobTimeout).
func Run(ctx context.Context, name string, cfg LoadConfig, fn JobFunc) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.Jobs < 1 {
		return nil, errors.New("bench: Jobs must be at least 1")
	}
	if cfg.Rate < 0 {
		return nil, errors.New("bench: Rate must not be negative")
	}
	l := &loadRun{ctx: ctx, cfg: cfg, fn: fn, r: NewReport(name), start: time.Now()}
	l.stopAt = l.start.Add(cfg.MaxDuration)
	if cfg.Rate > 0 {
		l.atRate()
	} else {
		l.fullSpeed()
	}
	l.r.Elapsed = time.Since(l.start)
	return l.r, nil
}

// loadRun is one Run: its jobs and the report they fill.
type loadRun struct {
	ctx           context.Context
	cfg           LoadConfig
	fn            JobFunc
	start, stopAt time.Time

	mu sync.Mutex
	r  *Report
}

// one runs job i and records how it went.
func (l *loadRun) one(i int) {
	jctx, cancel := context.WithTimeout(l.ctx, l.cfg.JobTimeout)
	t0 := time.Now()
	o := l.fn(jctx, i)
	took := time.Since(t0)
	if o.Code == "" && jctx.Err() != nil {
		o.Code = CodeNoResult
	}
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.r
	if o.Code != "" {
		r.Errors[o.Code]++
		return
	}
	r.OK++
	r.Completion.Record(took)
	if o.FirstChunk > 0 {
		r.FirstChunk.Record(o.FirstChunk)
	}
	if o.Queued > 0 {
		r.Queued.Record(o.Queued)
	}
}

// atRate starts the jobs at cfg.Rate, at most cfg.Concurrency in flight,
// and waits for them.
func (l *loadRun) atRate() {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, l.cfg.Concurrency)
	interval := time.Duration(float64(time.Second) / l.cfg.Rate)
	for i := range l.cfg.Jobs {
		at := l.start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-l.ctx.Done():
				return
			}
		}
		if l.ctx.Err() != nil || time.Now().After(l.stopAt) {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		l.r.Jobs++
		wg.Go(func() { defer func() { <-sem }(); l.one(i) })
	}
}

// fullSpeed runs the jobs cfg.Concurrency at a time, each runner taking the
// next job as soon as its last one ended.
func (l *loadRun) fullSpeed() {
	var (
		wg   sync.WaitGroup
		next sync.Mutex
		n    int
	)
	for range min(l.cfg.Concurrency, l.cfg.Jobs) {
		wg.Go(func() {
			for {
				next.Lock()
				i := n
				if i >= l.cfg.Jobs || l.ctx.Err() != nil || time.Now().After(l.stopAt) {
					next.Unlock()
					return
				}
				n++
				next.Unlock()
				l.one(i)
			}
		})
	}
	wg.Wait()
	l.r.Jobs = n
}

// Merge adds the figures of o, a run of the same workload, to r: counts and
// elapsed times add up, histograms merge.
func (r *Report) Merge(o *Report) {
	r.Jobs += o.Jobs
	r.OK += o.OK
	r.Elapsed += o.Elapsed
	for k, v := range o.Errors {
		r.Errors[k] += v
	}
	r.FirstChunk.Merge(o.FirstChunk)
	r.Completion.Merge(o.Completion)
	r.Queued.Merge(o.Queued)
}

// NewReport returns an empty report, for merging runs into.
func NewReport(name string) *Report {
	return &Report{Name: name, Errors: map[string]int{}, FirstChunk: NewHistogram(), Completion: NewHistogram(), Queued: NewHistogram()}
}
