package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/bus"
)

// partitionTimeouts gives every fifth job a short timeout, which a job held
// by a cut-off node or worker can outlive (it must then be answered
// deadline_exceeded, not left stuck), and the others one that no job of a
// healthy run comes near.
func partitionTimeouts(i int) time.Duration {
	if i%5 == 0 {
		return 3 * time.Second
	}
	return 60 * time.Second
}

// scenarioPartitionNode cuts the NATS node that leads the requests stream
// off from the other two and from every client, under load, for longer
// than a leader election takes, then heals it. The majority elects a new
// leader and goes on; the workers and the test process connected to the cut
// node find their connections stalled, not closed, as in a real partition.
// Nothing is lost or duplicated, no job outlives its deadline, and the
// healed node catches up.
func scenarioPartitionNode(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)

	l := c.startLoadWith(ctx, t, loadSpec{group: "chaos", jobs: 300, interval: 15 * time.Millisecond, timeout: partitionTimeouts})
	time.Sleep(time.Second)
	leader, err := c.streamLeader(ctx, bus.StreamRequests)
	require.NoError(t, err)
	t.Logf("connections: %s", c.connections(ctx))
	mon, err := c.monitor(ctx)
	require.NoError(t, err)
	heal, err := c.partition(ctx, leader.ctr)
	require.NoError(t, err, "cut %s off", leader.name)
	cut := time.Now()
	watch := c.watchLeader(ctx, t, bus.StreamResults)
	t.Logf("cut %s (leader of %s) off the network at %s", leader.name, bus.StreamRequests, cut.Format("15:04:05.000"))
	healed := false
	defer func() {
		if !healed {
			_ = heal(context.Background())
		}
	}()
	var takeover time.Duration
	eventually(t, ctx, 20*time.Second, "a new leader of "+bus.StreamRequests, func(ctx context.Context) error {
		n, err := c.streamLeader(ctx, bus.StreamRequests)
		if err != nil {
			return err
		}
		if n == leader {
			return fmt.Errorf("%s still leads", n.name)
		}
		takeover = time.Since(cut)
		t.Logf("%s took over after %s", n.name, takeover.Round(time.Millisecond))
		return nil
	})
	// The workers that were on the cut node find its connection silent, not
	// closed; their data goes unacknowledged and they move to the majority
	// while the node is still cut, within the ping bound.
	moved := c.waitWorkersOffNode(ctx, t, mon, leader, cut)
	time.Sleep(max(0, 8*time.Second-time.Since(cut)))
	require.NoError(t, heal(ctx), "heal %s", leader.name)
	healed = true
	t.Logf("healed %s after %s, at %s", leader.name, time.Since(cut).Round(time.Millisecond), time.Now().Format("15:04:05.000"))

	require.True(t, l.wait(120*time.Second), "jobs did not all end in time")
	// A job held by a worker on the cut node comes back after AckWait, once
	// the requests stream has a leader again, and is answered once the
	// results stream has one: what it may be late by is measured, not
	// guessed (nats-server's Raft has no pre-vote, so the healed node's
	// higher term costs the results stream its leader for a while).
	l.leaderless = watch.stop(t)
	l.slack = ackWait + takeover + l.leaderless + replyMargin
	t.Logf("connections: %s", c.connections(ctx))
	f := l.finish(ctx, t, "partition_nats_node")
	c.report(t, fmt.Sprintf("partition_nats_node: every worker on the majority %s after the cut (ping bound %s)", moved.Round(100*time.Millisecond), pingBound()))
	requireTimelyFigures(t, f)
	c.requireDrained(ctx, t, "chaos")
	c.waitHealthy(ctx, t)
}

// replyMargin is what a late job's answer takes besides the waits the
// partition scenario measures: the worker's stored-result lookup of a
// redelivered job past its deadline (its floor, 500 ms) and the longest
// backoff of the reply side's store retries (2 s), by which the store may
// follow the results stream's return.
const replyMargin = 2500 * time.Millisecond

// leaderWatch polls a stream's leader and records the stretches in which
// it had none, or the poll got no answer (the test process's own
// connection may be on a cut node: that counts, so the figure errs long).
type leaderWatch struct {
	stream string
	cancel context.CancelFunc
	done   chan struct{}
	gaps   []leaderGap
}

type leaderGap struct {
	from, to time.Time
	why      string
}

// watchLeader polls the stream's leader every 100 ms until stop.
func (c *cluster) watchLeader(ctx context.Context, t *testing.T, stream string) *leaderWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &leaderWatch{stream: stream, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var open *leaderGap
		for ctx.Err() == nil {
			polled := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			_, err := c.streamLeader(pctx, stream)
			pcancel()
			switch {
			case err != nil && ctx.Err() == nil && open == nil:
				open = &leaderGap{from: polled, why: err.Error()}
			case err == nil && open != nil:
				open.to = polled
				w.gaps = append(w.gaps, *open)
				open = nil
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		if open != nil {
			open.to = time.Now()
			w.gaps = append(w.gaps, *open)
		}
	}()
	return w
}

// stop ends the watch, logs each stretch without a leader and returns
// their sum.
func (w *leaderWatch) stop(t *testing.T) time.Duration {
	t.Helper()
	w.cancel()
	<-w.done
	var sum time.Duration
	for _, g := range w.gaps {
		sum += g.to.Sub(g.from)
		t.Logf("%s without a leader (or unanswered) from %s for %s: %s", w.stream, g.from.Format("15:04:05.000"), g.to.Sub(g.from).Round(time.Millisecond), g.why)
	}
	return sum
}

// pingBound is how long after the cut a worker on the cut node is
// connected to the majority: the bound config.NATSSilentBound derives from
// the workers' ping settings (an interval until the first data goes
// unanswered, the kernel's TCP_USER_TIMEOUT of MaxPingsOut+1 intervals,
// one dial), 10 s with the settings below.
func pingBound() time.Duration {
	return config.NATSSilentBound(workerPingInterval, workerMaxPingsOut)
}

// monitorLag is how late the test sees a worker on the majority: one
// round of the nodes' /connz, whose connections list is current, and the
// poll's interval.
const monitorLag = 2 * time.Second

// waitWorkersOffNode waits until every worker is connected to a node other
// than cut, as the other nodes' /connz say, and returns how long after
// since that was. It fails the test if that takes longer than the ping
// bound plus the monitor's lag: a worker that stays on a cut node is
// stalled until it heals (before the workers set TCP_USER_TIMEOUT, a busy
// one kept the cut node for over 34 s with pings of 2 s x 3).
func (c *cluster) waitWorkersOffNode(ctx context.Context, t *testing.T, mon *monitor, cut *node, since time.Time) time.Duration {
	t.Helper()
	bound := pingBound() + monitorLag
	var moved time.Duration
	eventually(t, ctx, max(0, bound-time.Since(since)), fmt.Sprintf("every worker off %s within %s of the cut", cut.name, bound), func(ctx context.Context) error {
		on := map[string]bool{}
		for _, n := range c.nodes {
			if n == cut {
				continue
			}
			who, err := mon.clientsOf(ctx, n)
			if err != nil {
				return err
			}
			for _, w := range who {
				on[w] = true
			}
		}
		var missing []string
		for i := range c.workers {
			if name := fmt.Sprintf("worker-%d", i+1); !on[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%v not connected to the majority yet", missing)
		}
		moved = time.Since(since)
		return nil
	})
	t.Logf("every worker on the majority %s after %s was cut: %s", moved.Round(100*time.Millisecond), cut.name, c.connections(ctx))
	return moved
}

// scenarioPartitionWorker cuts a worker off from NATS while its jobs
// stream, for longer than AckWait, then heals it. Its jobs are redelivered
// to the others meanwhile (their events start with restart); what the cut
// worker still publishes once healed (late events, results of jobs it no
// longer holds) is deduplicated. The worker does not crash and takes jobs
// again.
func scenarioPartitionWorker(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)
	restartsBefore, _ := c.workerStates(ctx, t)
	victim := c.workers[2]

	l := c.startLoadWith(ctx, t, loadSpec{group: "chaos", jobs: 300, interval: 10 * time.Millisecond, timeout: partitionTimeouts})
	time.Sleep(1500 * time.Millisecond) // ~150 published, ~80 streaming, a third of them on the victim
	heal, err := c.partition(ctx, victim)
	require.NoError(t, err, "cut worker 3 off")
	cut := time.Now()
	healed := false
	defer func() {
		if !healed {
			_ = heal(context.Background())
		}
	}()
	time.Sleep(ackWait + 3*time.Second)
	require.NoError(t, heal(ctx), "heal worker 3")
	healed = true
	t.Logf("healed worker 3 after %s", time.Since(cut).Round(time.Millisecond))

	require.True(t, l.wait(120*time.Second), "jobs did not all end in time")
	f := l.finish(ctx, t, "partition_worker")
	requireTimelyFigures(t, f)
	require.Positive(t, f.Restarted, "the cut-off worker had jobs in flight: some must have been redelivered")
	require.Zero(t, f.RestartMissing, "a redelivered job's events start with restart")
	c.requireDrained(ctx, t, "chaos")

	restarts, _ := c.workerStates(ctx, t)
	require.Equal(t, restartsBefore, restarts, "no worker crashed")
	// Healed, the worker takes jobs again: within a few short loads, it
	// finishes some of their jobs.
	before, err := c.jobsDone(ctx, victim)
	require.NoError(t, err)
	after := before
	for round := 0; round < 5 && after <= before; round++ {
		l := c.startLoad(ctx, t, "chaos", 60, 5*time.Millisecond)
		require.True(t, l.wait(60*time.Second), "a load after the heal did not end")
		_ = l.sub.Unsubscribe()
		after, err = c.jobsDone(ctx, victim)
		require.NoError(t, err)
	}
	require.Greater(t, after, before, "worker 3 finishes jobs again after the heal")
	c.requireDrained(ctx, t, "chaos")
}

// jobsDone reads switchyard_jobs_total (all groups and outcomes) from a
// worker's /metrics.
func (c *cluster) jobsDone(ctx context.Context, w *testcontainers.DockerContainer) (float64, error) {
	ep, err := w.PortEndpoint(ctx, "9090/tcp", "http")
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	if f := fams["switchyard_jobs_total"]; f != nil {
		for _, m := range f.Metric {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}
