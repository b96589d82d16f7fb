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
