package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// faultKind names a fault of the randomized schedule.
type faultKind string

const (
	// Worker lane: at most one worker is impaired at a time.
	faultKill            faultKind = "kill"             // SIGKILL, down a while, started again
	faultPause           faultKind = "pause"            // frozen past AckWait, thawed
	faultPartitionWorker faultKind = "partition_worker" // cut off from NATS (not from the provider), healed
	faultRollingRestart  faultKind = "rolling_restart"  // every worker in turn: SIGTERM, start, ready
	// NATS lane: at most one node is impaired at a time, and the next
	// fault waits until the cluster is healthy again, so that a majority
	// is always there.
	faultPartitionNode faultKind = "partition_node" // cut off from the other nodes and every client, healed
	faultStopLeader    faultKind = "stop_leader"    // the requests stream's leader stopped, started again
	faultDiskFull      faultKind = "disk_full"      // the node's store filled up, freed, node restarted if JetStream gave up
	// Provider lane.
	faultStorm faultKind = "storm" // 500s, 429s, hangs and cut streams from the provider
)

// plannedFault is one fault of a schedule: when it starts (from the start
// of the run), how long it lasts, and whom it hits.
type plannedFault struct {
	At     time.Duration
	For    time.Duration
	Kind   faultKind
	Target int // a worker or node index; -1: the requests stream's leader when it starts
}

func (f plannedFault) String() string {
	target := "all workers"
	switch f.Kind {
	case faultKill, faultPause, faultPartitionWorker:
		target = fmt.Sprintf("worker-%d", f.Target+1)
	case faultPartitionNode, faultDiskFull:
		target = fmt.Sprintf("n%d", f.Target+1)
	case faultStopLeader:
		target = "leader of " + bus.StreamRequests
	case faultStorm:
		target = "provider"
	}
	return fmt.Sprintf("%7s +%-6s %-16s %s", "@"+f.At.Round(100*time.Millisecond).String(), f.For.Round(100*time.Millisecond), f.Kind, target)
}

// lane is a sequence of faults that never overlap one another.
type lane struct {
	name   string
	kinds  []faultKind
	weight []int
	gap    [2]time.Duration // pause between two faults, drawn in [min, max)
}

var lanes = []lane{
	{name: "workers", kinds: []faultKind{faultKill, faultPause, faultPartitionWorker, faultRollingRestart}, weight: []int{3, 3, 3, 1}, gap: [2]time.Duration{3 * time.Second, 10 * time.Second}},
	{name: "nats", kinds: []faultKind{faultPartitionNode, faultStopLeader, faultDiskFull}, weight: []int{3, 3, 2}, gap: [2]time.Duration{5 * time.Second, 15 * time.Second}},
	{name: "provider", kinds: []faultKind{faultStorm}, weight: []int{1}, gap: [2]time.Duration{5 * time.Second, 20 * time.Second}},
}

// rollingRestartFor is the time a rolling restart is planned for; it takes
// what it takes, and its lane waits for it.
const rollingRestartFor = 30 * time.Second

// drawSchedule draws the faults of a run of length run from seed: the same
// seed gives the same schedule. The first 10 seconds and the last 20 are
// quiet, so that the load is under way before the first fault and every
// fault has ended before the load stops.
func drawSchedule(seed uint64, run time.Duration) [][]plannedFault {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	var out [][]plannedFault
	for _, ln := range lanes {
		var faults []plannedFault
		at := between(10*time.Second, 20*time.Second)
		for {
			f := plannedFault{At: at, Kind: pick(rng, ln.kinds, ln.weight)}
			switch f.Kind {
			case faultKill:
				f.For, f.Target = between(time.Second, 4*time.Second), rng.IntN(workerCount)
			case faultPause:
				f.For, f.Target = between(ackWait+time.Second, ackWait+4*time.Second), rng.IntN(workerCount)
			case faultPartitionWorker:
				f.For, f.Target = between(2*time.Second, 9*time.Second), rng.IntN(workerCount)
			case faultRollingRestart:
				f.For, f.Target = rollingRestartFor, -1
			case faultPartitionNode:
				f.For, f.Target = between(3*time.Second, 10*time.Second), rng.IntN(natsNodes)
			case faultStopLeader:
				f.For, f.Target = between(3*time.Second, 8*time.Second), -1
			case faultDiskFull:
				f.For, f.Target = between(4*time.Second, 10*time.Second), rng.IntN(natsNodes)
			case faultStorm:
				f.For, f.Target = between(3*time.Second, 12*time.Second), -1
			}
			if f.At+f.For > run-20*time.Second {
				break
			}
			faults = append(faults, f)
			at = f.At + f.For + between(ln.gap[0], ln.gap[1])
		}
		out = append(out, faults)
	}
	return out
}

func pick(rng *rand.Rand, kinds []faultKind, weight []int) faultKind {
	total := 0
	for _, w := range weight {
		total += w
	}
	n := rng.IntN(total)
	for i, w := range weight {
		if n < w {
			return kinds[i]
		}
		n -= w
	}
	return kinds[len(kinds)-1]
}

// formatSchedule prints a schedule, one fault a line, lane by lane.
func formatSchedule(s [][]plannedFault) string {
	var b strings.Builder
	for i, faults := range s {
		fmt.Fprintf(&b, "  lane %s (%d faults)\n", lanes[i].name, len(faults))
		for _, f := range faults {
			fmt.Fprintf(&b, "    %s\n", f)
		}
	}
	return b.String()
}

// faultRunner carries out a schedule against a fleet and records every
// fault's window as it was really in force.
type faultRunner struct {
	c    *cluster
	t    *testing.T
	mock *providerMock

	mu      sync.Mutex
	windows []faultWindow
	errs    []error
}

// run carries out the lanes at once, each lane's faults one after the
// other from start, and returns when all have ended.
func (r *faultRunner) run(ctx context.Context, start time.Time, schedule [][]plannedFault) {
	var wg sync.WaitGroup
	for i, faults := range schedule {
		wg.Go(func() {
			for _, f := range faults {
				if !sleepUntil(ctx, start.Add(f.At)) {
					return
				}
				// The previous fault of the lane may have left the fleet
				// recovering: start from a healthy one.
				if err := r.settle(ctx, lanes[i].name); err != nil {
					if ctx.Err() != nil {
						return // the run ended while the fleet recovered: no fault is due any more
					}
					r.fail(fmt.Errorf("the fleet did not recover before %s: %w", f, err))
					return
				}
				if err := r.do(ctx, f); err != nil {
					r.fail(fmt.Errorf("%s: %w", f, err))
					return
				}
			}
		})
	}
	wg.Wait()
}

func (r *faultRunner) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
	r.t.Logf("fault runner: %v", err)
}

func (r *faultRunner) record(kind faultKind, target string, from time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.windows = append(r.windows, faultWindow{Kind: kind, Target: target, From: from, To: time.Now()})
	r.t.Logf("fault %s on %s from %s for %s", kind, target, from.Format("15:04:05.000"), time.Since(from).Round(time.Millisecond))
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// settle waits until the lane's part of the fleet is healthy: every worker
// running (worker lane), every node running with JetStream and every
// stream led with current replicas (NATS lane).
func (r *faultRunner) settle(ctx context.Context, laneName string) error {
	var probe func(context.Context) error
	switch laneName {
	case "workers":
		probe = r.c.workersRunning
	case "nats":
		probe = r.c.natsHealthy
	default:
		return nil
	}
	// A hung probe (see pollUntil) used to take the whole 90 s: a 10-minute
	// run failed so, saying only "context deadline exceeded".
	if err := pollUntil(ctx, 90*time.Second, 10*time.Second, 250*time.Millisecond, probe); err != nil {
		return fmt.Errorf("not healthy within 90s (or the run ended): %w", err)
	}
	return nil
}

func (r *faultRunner) do(ctx context.Context, f plannedFault) error {
	c := r.c
	hold := func() bool { return sleepUntil(ctx, time.Now().Add(f.For)) }
	// Heal and restart with a context of their own: the fleet must be left
	// whole even when the run's context has ended.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	switch f.Kind {
	case faultKill:
		w, name := c.workers[f.Target], fmt.Sprintf("worker-%d", f.Target+1)
		from := time.Now()
		if err := c.kill(ctx, w); err != nil {
			return err
		}
		hold()
		err := c.restartKilled(bg, w)
		r.record(f.Kind, name, from)
		return err
	case faultPause:
		w, name := c.workers[f.Target], fmt.Sprintf("worker-%d", f.Target+1)
		from := time.Now()
		if err := c.pause(ctx, w); err != nil {
			return err
		}
		hold()
		err := c.unpause(bg, w)
		r.record(f.Kind, name, from)
		return err
	case faultPartitionWorker:
		w, name := c.workers[f.Target], fmt.Sprintf("worker-%d", f.Target+1)
		from := time.Now()
		heal, err := c.partition(ctx, w)
		if err != nil {
			return err
		}
		hold()
		err = heal(bg)
		r.record(f.Kind, name, from)
		return err
	case faultRollingRestart:
		for i, w := range c.workers {
			from := time.Now()
			stop := 10 * time.Second
			if err := w.Stop(bg, &stop); err != nil {
				return err
			}
			err := w.Start(bg)
			r.record(f.Kind, fmt.Sprintf("worker-%d", i+1), from)
			if err != nil {
				return err
			}
		}
		return nil
	case faultPartitionNode:
		n := c.nodes[f.Target]
		from := time.Now()
		heal, err := c.partition(ctx, n.ctr)
		if err != nil {
			return err
		}
		hold()
		err = heal(bg)
		r.record(f.Kind, n.name, from)
		return err
	case faultStopLeader:
		n, err := c.streamLeader(ctx, bus.StreamRequests)
		if err != nil {
			return err
		}
		from := time.Now()
		stop := 5 * time.Second
		if err := n.ctr.Stop(ctx, &stop); err != nil {
			return err
		}
		hold()
		err = n.ctr.Start(bg)
		r.record(f.Kind, n.name, from)
		return err
	case faultDiskFull:
		n := c.nodes[f.Target]
		from := time.Now()
		if _, err := n.store.fill(); err != nil {
			return fmt.Errorf("fill the store of %s: %w", n.name, err)
		}
		hold()
		if err := n.store.free(); err != nil {
			return err
		}
		// A node that ran out of space disables JetStream for good: the
		// operator frees space and restarts it.
		on, err := c.jetStreamEnabled(bg, n)
		if err == nil && !on {
			r.t.Logf("%s disabled JetStream when its disk filled: restarting it", n.name)
			stop := 5 * time.Second
			if err = n.ctr.Stop(bg, &stop); err == nil {
				err = n.ctr.Start(bg)
			}
		}
		r.record(f.Kind, n.name, from)
		return err
	case faultStorm:
		from := time.Now()
		r.mock.storm.Store(true)
		hold()
		r.mock.storm.Store(false)
		r.record(f.Kind, "provider", from)
		return nil
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
}
