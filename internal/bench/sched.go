package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// SchedConfig sizes the scheduling sections of Compare: p (priority
// classes) and f (fair share between tenants). The defaults fit a 2-core
// machine: a mock whose calls take ServiceTime, one worker with Slots.
type SchedConfig struct {
	// Slots is SWITCHYARD_CONCURRENCY of the worker (default 16).
	Slots int
	// ServiceTime is the mock's time to first token; each call takes
	// about that long (default 20ms).
	ServiceTime time.Duration
	// Backlog is section p's batch jobs queued first (default 10000) and
	// Interactive the interactive jobs submitted behind them (default 200,
	// two at a time, fewer than the slots kept for interactive).
	Backlog, Interactive int
	// TenantA is section f's jobs queued by tenant a (default 5000),
	// TenantB those queued by tenant b, alone and then behind a's
	// (default 100).
	TenantA, TenantB int
}

func (s SchedConfig) withDefaults() SchedConfig {
	s.Slots = cmp.Or(s.Slots, 16)
	s.ServiceTime = cmp.Or(s.ServiceTime, 20*time.Millisecond)
	s.Backlog = cmp.Or(s.Backlog, 10000)
	s.Interactive = cmp.Or(s.Interactive, 200)
	s.TenantA = cmp.Or(s.TenantA, 5000)
	s.TenantB = cmp.Or(s.TenantB, 100)
	return s
}

func (c *compare) schedModels(group, extra string) string {
	return fmt.Sprintf(`
groups:
  %s:
    deployments:
      - name: mock-%s
        provider: mock
        model: mock-1
        mock: {tokens: 2, ttft: %s}
%s`, group, group, c.cfg.Sched.ServiceTime, extra)
}

// done counts the results published on a subject pattern, by the first
// "-"-separated part of their job id, with the time of each.
type done struct {
	mu  sync.Mutex
	at  map[string][]time.Time
	sub *nats.Subscription
}

func (c *compare) countResults(pattern string) (*done, error) {
	d := &done{at: map[string][]time.Time{}}
	sub, err := c.nc.Subscribe(pattern, func(m *nats.Msg) {
		now := time.Now()
		toks := strings.Split(m.Subject, ".")
		if len(toks) < 2 {
			return
		}
		kind, _, _ := strings.Cut(toks[len(toks)-2], "-")
		d.mu.Lock()
		d.at[kind] = append(d.at[kind], now)
		d.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	d.sub = sub
	return d, nil
}

// count is how many results of kind arrived in [from, to).
func (d *done) count(kind string, from, to time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, t := range d.at[kind] {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

func (d *done) total(kind string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.at[kind])
}

// last is the time of the n-th result of kind (1-based), false before it.
func (d *done) nth(kind string, n int) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.at[kind]) < n {
		return time.Time{}, false
	}
	return d.at[kind][n-1], true
}

// queue publishes n jobs of kind to subject, asynchronously, result only.
func (c *compare) queue(ctx context.Context, subject, kind string, n int, p bus.Priority) error {
	body, _ := json.Marshal(bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text("hello")}}, Stream: new(bool), Priority: p})
	run := time.Now().UnixNano()
	for i := range n {
		msg := nats.NewMsg(subject)
		msg.Header.Set(bus.HeaderMsgID, fmt.Sprintf("%s-%d-%d", kind, run, i))
		msg.Header.Set(bus.HeaderContentType, "application/json")
		msg.Data = body
		if _, err := c.js.PublishMsgAsync(msg); err != nil {
			return err
		}
		if i%1000 == 999 || i == n-1 {
			// In slices, so that the client's async window never stalls.
			select {
			case <-c.js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Minute):
				return fmt.Errorf("bench: %s jobs not stored after a minute", kind)
			}
		}
	}
	return nil
}

// waitFor waits until cond holds, up to limit.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: not within %s", what, limit)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// purge removes what is left of a section's queue.
func (c *compare) purge(ctx context.Context, stream, subject string) {
	if s, err := c.js.Stream(ctx, stream); err == nil {
		_ = s.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
}

// priority is section p: a batch backlog from one tenant, then interactive
// jobs behind it. Each interactive job's wait is measured twice: by the
// worker (the result's queued_ms: from the job's publication, as the
// server stamped it, to its pick-up) and here (from before Publish to the
// start event). They are submitted two at a time, fewer than the slots
// kept for interactive, so a slot is free when each is published: the
// wait is the time from a free slot to the job's start.
func (c *compare) priority(ctx context.Context) error {
	sc := c.cfg.Sched
	const group = "prio"
	fmt.Fprintf(c.out, "\n== (p) priority: %d batch jobs queued, then %d interactive jobs (2 at a time); one worker, SWITCHYARD_CONCURRENCY=%d (%d kept for interactive), mock calls of ~%s\n",
		sc.Backlog, sc.Interactive, sc.Slots, sc.Slots/4, sc.ServiceTime)
	p, err := c.startWorker(ctx, "worker-prio", c.schedModels(group, ""), sc.Slots, group)
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	subj := bus.Subjects{}
	defer c.purge(ctx, bus.StreamRequests, subj.RequestFor(group, bus.PriorityBatch))
	results, err := c.countResults(subj.Results())
	if err != nil {
		return err
	}
	defer results.sub.Unsubscribe() //nolint:errcheck // the connection outlives the section
	start := time.Now()
	if err := c.queue(ctx, subj.RequestFor(group, bus.PriorityBatch), "batch", sc.Backlog, bus.PriorityBatch); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "  %d batch jobs stored in %s\n", sc.Backlog, time.Since(start).Round(time.Millisecond))
	if err := waitFor(ctx, time.Minute, "the backlog's first results", func() bool { return results.total("batch") >= 4*sc.Slots }); err != nil {
		return err
	}
	client, err := bus.NewClient(c.nc)
	if err != nil {
		return err
	}
	queued, observed := NewHistogram(), NewHistogram()
	var failed atomic.Int64
	from := time.Now()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < sc.Interactive; i += 2 {
				if ctx.Err() != nil {
					return
				}
				req := &bus.Request{ID: fmt.Sprintf("interactive-%d-%d", time.Now().UnixNano(), i), Priority: bus.PriorityInteractive,
					Messages: []bus.Message{{Role: "user", Content: bus.Text("hello")}}}
				t0 := time.Now()
				var started time.Time
				res, err := client.Submit(ctx, group, req, bus.OnEvent(func(e *bus.Event) {
					if e.Type == bus.EventStart && started.IsZero() {
						started = time.Now()
					}
				}))
				if err != nil || res.Status != bus.StatusOK {
					failed.Add(1)
					continue
				}
				queued.Record(time.Duration(res.Timings.QueuedMS) * time.Millisecond)
				if !started.IsZero() {
					observed.Record(started.Sub(t0))
				}
				time.Sleep(5 * time.Millisecond) // a person, not a loop
			}
		})
	}
	wg.Wait()
	to := time.Now()
	batchDuring := results.count("batch", from, to)
	fmt.Fprintf(c.out, "  interactive wait from a free slot to start, %d jobs (%d failed):\n", queued.Count(), failed.Load())
	fmt.Fprintf(c.out, "    worker-measured (queued_ms, 1ms resolution): p50 %s  p99 %s  max %s (target p99 <= 50ms)\n", ms(queued.Quantile(.5)), ms(queued.Quantile(.99)), ms(queued.Max()))
	fmt.Fprintf(c.out, "    client-measured (publish to start event):    p50 %s  p99 %s  max %s\n", ms(observed.Quantile(.5)), ms(observed.Quantile(.99)), ms(observed.Max()))
	c.goals = append(c.goals, atMost("(p) interactive wait from a free slot, p99 (queued_ms)", queued.Quantile(.99), 50*time.Millisecond),
		goal{name: "(p) batch backlog progresses while interactive jobs run", got: fmt.Sprintf("%.0f jobs/s", float64(batchDuring)/to.Sub(from).Seconds()), target: "> 0", met: batchDuring > 0})
	fmt.Fprintf(c.out, "  batch backlog meanwhile: %d jobs done in %s (%.0f jobs/s; %d of %d done since it was queued)\n",
		batchDuring, to.Sub(from).Round(time.Millisecond), float64(batchDuring)/to.Sub(from).Seconds(), results.total("batch"), sc.Backlog)
	return nil
}

// fairness is section f: tenant b's jobs alone, then tenant a queues a
// backlog and b the same jobs again behind it.
func (c *compare) fairness(ctx context.Context) error {
	sc := c.cfg.Sched
	const group = "fair"
	fmt.Fprintf(c.out, "\n== (f) fair share: tenant b's %d jobs alone, then behind tenant a's %d; one worker, SWITCHYARD_CONCURRENCY=%d, no interactive reserve, mock calls of ~%s\n",
		sc.TenantB, sc.TenantA, sc.Slots, sc.ServiceTime)
	models := c.schedModels(group, "tenants: {a: {}, b: {}}\nunknown_tenants: anonymous\n")
	p, _, err := c.startWorkerMetrics(ctx, "worker-fair", models, sc.Slots, bus.Subjects{}, []string{"SWITCHYARD_INTERACTIVE_SHARE=0"}, group)
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	root := bus.Subjects{}
	a, b := root.ForTenant("a"), root.ForTenant("b")
	for _, t := range []bus.Subjects{a, b} {
		if err := c.consumerReady(ctx, p, t.RequestStream(), bus.ConsumerName(group)); err != nil {
			return err
		}
	}
	defer c.purge(ctx, a.RequestStream(), a.Request(group))
	results, err := c.countResults(root.TenantResults())
	if err != nil {
		return err
	}
	defer results.sub.Unsubscribe() //nolint:errcheck // the connection outlives the section

	// b alone.
	t0 := time.Now()
	if err := c.queue(ctx, b.Request(group), "alone", sc.TenantB, ""); err != nil {
		return err
	}
	if err := waitFor(ctx, time.Minute, "b's jobs alone", func() bool { return results.total("alone") >= sc.TenantB }); err != nil {
		return err
	}
	lastAlone, _ := results.nth("alone", sc.TenantB)
	alone := lastAlone.Sub(t0)

	// a's backlog, running at full speed for a while; then b's jobs.
	if err := c.queue(ctx, a.Request(group), "a", sc.TenantA, ""); err != nil {
		return err
	}
	if err := waitFor(ctx, time.Minute, "a's backlog under way", func() bool { return results.total("a") >= min(sc.TenantA/4, 20*sc.Slots) }); err != nil {
		return err
	}
	const before = time.Second
	time.Sleep(before)
	t1 := time.Now()
	if err := c.queue(ctx, b.Request(group), "b", sc.TenantB, ""); err != nil {
		return err
	}
	if err := waitFor(ctx, 2*time.Minute, "b's jobs behind a's", func() bool { return results.total("b") >= sc.TenantB }); err != nil {
		return err
	}
	lastB, _ := results.nth("b", sc.TenantB)
	behind := lastB.Sub(t1)
	aBefore := float64(results.count("a", t1.Add(-before), t1)) / before.Seconds()
	aDuring := float64(results.count("a", t1, lastB)) / behind.Seconds()
	bDuring := float64(sc.TenantB) / behind.Seconds()
	left := sc.TenantA - results.total("a")
	fmt.Fprintf(c.out, "  b alone: %d jobs in %s (%.0f jobs/s)\n", sc.TenantB, alone.Round(time.Millisecond), float64(sc.TenantB)/alone.Seconds())
	fmt.Fprintf(c.out, "  b behind a's backlog: %d jobs in %s = %.2fx alone (target <= 2x)\n", sc.TenantB, behind.Round(time.Millisecond), behind.Seconds()/alone.Seconds())
	share := bDuring / (aDuring + bDuring)
	drop := 1 - aDuring/aBefore
	fmt.Fprintf(c.out, "  a's throughput: %.0f jobs/s in the second before b, %.0f jobs/s while b ran: a drop of %.0f%%; b's share of the jobs done meanwhile %.0f%% (target: drop <= b's share)\n",
		aBefore, aDuring, 100*drop, 100*share)
	ratio := behind.Seconds() / alone.Seconds()
	c.goals = append(c.goals, goal{name: "(f) b's jobs behind a's backlog / b's alone", got: fmt.Sprintf("%.2fx", ratio), target: "<= 2x", met: ratio <= 2},
		goal{name: "(f) a's throughput drop while b runs, vs b's share", got: fmt.Sprintf("%.0f%% vs %.0f%%", 100*drop, 100*share), target: "drop <= share", met: drop <= share})
	fmt.Fprintf(c.out, "  a's backlog: %d of %d jobs left when b finished (purged)\n", left, sc.TenantA)
	return nil
}
