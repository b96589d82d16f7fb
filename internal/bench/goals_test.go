package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func report(name string, ok int, elapsed time.Duration, firstChunks ...time.Duration) *Report {
	r := NewReport(name)
	r.Jobs, r.OK, r.Elapsed = ok, ok, elapsed
	for _, d := range firstChunks {
		r.FirstChunk.Record(d)
	}
	return r
}

// TestBusGoalsJudgeEveryTarget: each of issue #21's figures is judged
// against its own target, met or MISSED, and the block counts them.
func TestBusGoalsJudgeEveryTarget(t *testing.T) {
	t.Parallel()
	direct := report("direct", 100, time.Second, time.Millisecond)
	fast := report("bus", 100, time.Second, time.Millisecond+200*time.Microsecond)
	slow := report("bus", 30, time.Second, 5*time.Millisecond)

	verdicts := func(gs []goal) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.verdict())
		}
		return out
	}
	require.Equal(t, []string{"met", "met", "reference"}, verdicts(busGoals(0, "sequential", direct, fast, 100*time.Microsecond)))
	require.Equal(t, []string{"MISSED", "MISSED", "reference"}, verdicts(busGoals(0, "sequential", direct, slow, 100*time.Microsecond)))
	require.Equal(t, []string{"reference", "met", "MISSED"}, verdicts(busGoals(1, "at 300 jobs/s", direct, fast, 600*time.Microsecond)))
	require.Equal(t, []string{"met", "met"}, verdicts(busGoals(2, "50 in flight", direct, fast, 250*time.Microsecond)))
	require.Equal(t, []string{"MISSED", "MISSED"}, verdicts(busGoals(2, "50 in flight", direct, slow, 251*time.Microsecond)))

	var b bytes.Buffer
	printGoals(&b, append(busGoals(0, "sequential", direct, fast, 0), busGoals(2, "50 in flight", direct, slow, time.Millisecond)...))
	out := b.String()
	require.Contains(t, out, "== targets (issue #21")
	require.Contains(t, out, "bus: throughput / direct call's, 50 in flight")
	require.Contains(t, out, "0.30 (30 / 100 jobs/s)")
	require.Contains(t, out, "2 of 4 targets met")
}

// TestGatewayGoalsJudgeEveryTarget: the HTTP path's figures (issue #14's
// targets) are judged in the targets block too, each against its own
// target.
func TestGatewayGoalsJudgeEveryTarget(t *testing.T) {
	t.Parallel()
	direct := report("direct", 100, time.Second, time.Millisecond)
	fast := report("gateway", 100, time.Second, time.Millisecond+400*time.Microsecond)
	slow := report("gateway", 100, time.Second, 5*time.Millisecond)
	verdicts := func(gs []goal) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.verdict())
		}
		return out
	}
	require.Equal(t, []string{"met", "met"}, verdicts(gatewayGoals(0, "sequential", direct, fast, 0)))
	require.Equal(t, []string{"MISSED", "MISSED"}, verdicts(gatewayGoals(0, "sequential", direct, slow, 0)))
	require.Equal(t, []string{"reference", "met"}, verdicts(gatewayGoals(1, "at 300 jobs/s", direct, fast, 0)))
	require.Equal(t, []string{"reference", "MISSED"}, verdicts(gatewayGoals(1, "at 300 jobs/s", direct, slow, 0)))
	require.Equal(t, []string{"met"}, verdicts(gatewayGoals(2, "50 in flight", direct, fast, 500*time.Microsecond)))
	require.Equal(t, []string{"MISSED"}, verdicts(gatewayGoals(2, "50 in flight", direct, fast, 501*time.Microsecond)))
}

// TestSectionCGoalsCoverTheIssues: section c's three loads put every
// figure with a target of issues #21 (bus path) and #14 (HTTP path) in
// the targets block, each once, with the target the issues set.
func TestSectionCGoalsCoverTheIssues(t *testing.T) {
	t.Parallel()
	direct := report("direct", 100, time.Second, time.Millisecond)
	via := report("via", 100, time.Second, 2*time.Millisecond)
	var gs []goal
	for kind, load := range []string{"sequential", "at 300 jobs/s", "50 in flight"} {
		gs = append(gs, busGoals(kind, load, direct, via, time.Millisecond)...)
		gs = append(gs, gatewayGoals(kind, load, direct, via, time.Millisecond)...)
	}
	targets := map[string]string{}
	for _, g := range gs {
		if g.target != "" {
			require.NotContains(t, targets, g.name, "judged twice")
			targets[g.name] = g.target
		}
	}
	require.Equal(t, map[string]string{
		"bus: added TTFT p50, sequential":                              "<= 0.350ms",
		"bus: added TTFT p99, sequential":                              "<= 1.000ms",
		"bus: added TTFT p99, at 300 jobs/s":                           "<= 2.000ms",
		"bus: worker + NATS CPU per job, at 300 jobs/s":                "<= 0.500ms",
		"bus: throughput / direct call's, 50 in flight":                ">= 0.50",
		"bus: worker + NATS CPU per job, 50 in flight":                 "<= 0.250ms",
		"HTTP gateway: added TTFT p50, sequential":                     "<= 0.500ms",
		"HTTP gateway: added TTFT p99, sequential":                     "<= 1.500ms",
		"HTTP gateway: added TTFT p99, at 300 jobs/s":                  "<= 3.000ms",
		"HTTP gateway: gateway + worker CPU per request, 50 in flight": "<= 0.500ms",
	}, targets)

	raw := rawGoal("sequential", report("raw", 100, time.Second, 160*time.Microsecond))
	require.Equal(t, "reference", raw.verdict(), "the raw round trip has no target of its own")
	require.Equal(t, "raw JetStream first chunk p50 / p99, sequential", raw.name)
	require.Equal(t, "0.160ms / 0.160ms", raw.got)
}
