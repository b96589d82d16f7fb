package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// TestChaos starts one fleet (3 NATS nodes, 3 workers) and runs the
// scenarios against it one after the other: faults are fleet-wide, so they
// must not overlap. Each scenario starts from and leaves a healthy fleet.
func TestChaos(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("fleet up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("kill_worker", func(t *testing.T) { scenarioKillWorker(t, c) })
	t.Run("stop_stream_leader", func(t *testing.T) { scenarioStopLeader(t, c) })
	t.Run("rolling_restart", func(t *testing.T) { scenarioRollingRestart(t, c) })
	t.Run("fault_storm_and_pause", func(t *testing.T) { scenarioStormAndPause(t, c) })
	t.Run("partition_nats_node", func(t *testing.T) { scenarioPartitionNode(t, c) })
	t.Run("partition_worker", func(t *testing.T) { scenarioPartitionWorker(t, c) })
	t.Run("gateway_restarts", func(t *testing.T) { scenarioGatewayRestarts(t, c) })
	t.Run("bad_inputs", func(t *testing.T) { scenarioBadInputs(t, c) })

	summary := fmt.Sprintf("chaos suite: %d scenario lines in %s\n  %s", len(c.summary), time.Since(start).Round(time.Second), strings.Join(c.summary, "\n  "))
	fmt.Println(summary)
	t.Log(summary)
}

// scenarioKillWorker: kill -9 a worker while 300 jobs stream. Its jobs come
// back after AckWait to the other workers, whose events start with restart
// and carry attempt 2; every job gets exactly one ok result.
func scenarioKillWorker(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)

	l := c.startLoad(ctx, t, "chaos", 300, 10*time.Millisecond)
	time.Sleep(1500 * time.Millisecond) // ~150 published, ~80 streaming
	victim := c.workers[0]
	require.NoError(t, c.kill(ctx, victim), "docker kill --signal KILL")
	in, err := victim.Inspect(ctx)
	require.NoError(t, err)
	require.Equal(t, 137, in.State.ExitCode, "the worker died of SIGKILL")
	time.Sleep(time.Second)
	restartIfStopped(ctx, t, victim)

	require.True(t, l.wait(75*time.Second), "jobs did not all end in time")
	f := l.finish(ctx, t, "kill_worker")
	requireHealthyFigures(t, f)
	require.Positive(t, f.Restarted, "the killed worker had jobs in flight: some must have been redelivered")
	require.Zero(t, f.RestartMissing, "a redelivered job's events start with restart")
	c.requireDrained(ctx, t, "chaos")
}

// scenarioStopLeader: stop the NATS node that leads the requests stream
// under load, then start it again: nothing lost, nothing stuck, and the
// node catches up.
func scenarioStopLeader(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)

	l := c.startLoad(ctx, t, "chaos", 300, 15*time.Millisecond)
	time.Sleep(time.Second)
	leader, err := c.streamLeader(ctx, "LLM_REQUESTS")
	require.NoError(t, err)
	t.Logf("stopping %s, leader of LLM_REQUESTS", leader.name)
	stop := 5 * time.Second
	require.NoError(t, leader.ctr.Stop(ctx, &stop))
	stopped := time.Now()
	eventually(t, ctx, 15*time.Second, "a new leader of LLM_REQUESTS", func(ctx context.Context) error {
		n, err := c.streamLeader(ctx, "LLM_REQUESTS")
		if err != nil {
			return err
		}
		if n == leader {
			return fmt.Errorf("%s still leads", n.name)
		}
		t.Logf("%s took over after %s", n.name, time.Since(stopped).Round(time.Millisecond))
		return nil
	})
	time.Sleep(max(0, 4*time.Second-time.Since(stopped)))
	require.NoError(t, leader.ctr.Start(ctx), "start %s again", leader.name)

	require.True(t, l.wait(90*time.Second), "jobs did not all end in time")
	f := l.finish(ctx, t, "stop_stream_leader")
	requireHealthyFigures(t, f)
	c.requireDrained(ctx, t, "chaos")
	c.waitHealthy(ctx, t)
}

// scenarioRollingRestart: restart every worker in turn (SIGTERM, graceful
// shutdown, start, ready) under load: nothing lost.
func scenarioRollingRestart(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)

	l := c.startLoad(ctx, t, "chaos", 400, 25*time.Millisecond)
	time.Sleep(time.Second)
	for i, w := range c.workers {
		stop := 10 * time.Second
		require.NoError(t, w.Stop(ctx, &stop), "stop worker %d", i+1)
		in, err := w.Inspect(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, in.State.ExitCode, "worker %d shut down cleanly on SIGTERM, within its grace period", i+1)
		require.NoError(t, w.Start(ctx), "start worker %d", i+1)
	}

	require.True(t, l.wait(90*time.Second), "jobs did not all end in time")
	f := l.finish(ctx, t, "rolling_restart")
	requireHealthyFigures(t, f)
	c.requireDrained(ctx, t, "chaos")
}

// scenarioStormAndPause: the storm group's provider fails often (5xx, 429
// with Retry-After, hangs, mid-stream failures) and one worker is paused
// past AckWait, then resumed: its jobs are redelivered meanwhile, its late
// results are deduplicated, and every job completes once.
func scenarioStormAndPause(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c.waitHealthy(ctx, t)

	l := c.startLoad(ctx, t, "storm", 300, 10*time.Millisecond)
	time.Sleep(time.Second)
	victim := c.workers[1]
	require.NoError(t, c.pause(ctx, victim), "docker pause")
	time.Sleep(ackWait + 2*time.Second)
	require.NoError(t, c.unpause(ctx, victim), "docker unpause")

	require.True(t, l.wait(90*time.Second), "jobs did not all end in time")
	f := l.finish(ctx, t, "fault_storm_and_pause")
	requireHealthyFigures(t, f)
	require.Positive(t, f.Restarted, "the paused worker's jobs must have been redelivered")
	require.Greater(t, f.ProviderCalls, f.Jobs, "the storm made the provider fail: jobs needed retries")
	c.requireDrained(ctx, t, "storm")
}

// restartIfStopped starts a container that is not running (Docker's restart
// policy does not restart a container that was killed on purpose).
func restartIfStopped(ctx context.Context, t *testing.T, ctr *testcontainers.DockerContainer) {
	t.Helper()
	require.NoError(t, startIfStopped(ctx, ctr), "start the killed worker again")
}

// restartKilled starts a killed worker of the randomized schedule again and
// waits until its /readyz says ready, for as long as ctx allows (the fault's
// heal context, two minutes). Not with testcontainers' start, whose wait
// gives a worker 60 s and polls the host port it read once: a worker
// restarted while the NATS lane holds a fault is not ready until that
// fault heals (its start retries the fleet-wide state for up to 30 s, its
// /readyz wants JetStream writes to succeed), and one that exits meanwhile
// is restarted by Docker, possibly on another host port. So that wait was
// the wrong one, and it failed with "wait until ready: context deadline
// exceeded" and no reason: this one reads the port afresh each time and
// fails with what /readyz last said.
func (c *cluster) restartKilled(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	st, err := ctr.State(ctx)
	if err != nil {
		return err
	}
	if !st.Running && !st.Restarting {
		if _, err := c.docker.ContainerStart(ctx, ctr.GetContainerID(), client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start the killed worker: %w", err)
		}
	}
	var last error
	for {
		if last = workerReady(ctx, ctr); last == nil {
			return nil
		}
		if !sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
			return fmt.Errorf("the restarted worker is not ready: %w", last)
		}
	}
}

// workerReady asks the worker's /readyz, on the host port it has now.
func workerReady(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	ep, err := ctr.PortEndpoint(ctx, "9090/tcp", "http")
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, ep+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func startIfStopped(ctx context.Context, ctr *testcontainers.DockerContainer) error {
	st, err := ctr.State(ctx)
	if err != nil {
		return err
	}
	if st.Running || st.Restarting {
		return nil
	}
	return ctr.Start(ctx)
}
