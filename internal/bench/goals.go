package bench

import (
	"fmt"
	"io"
	"time"
)

// Targets of issue #21 (closing the latency and CPU gap of the bus path),
// measured by section c against the direct call and printed, met or
// missed, in the "targets" block at the end of the run.
const (
	targetBusSeqP50    = 350 * time.Microsecond // added TTFT over a direct call, sequential, p50
	targetBusSeqP99    = 1 * time.Millisecond   // ... p99
	targetBusRateP99   = 2 * time.Millisecond   // ... p99 at DirectRate (300 jobs/s)
	targetInFlightPart = 0.5                    // throughput at InFlight (50): at least this part of the direct call's
	targetCPUInFlight  = 250 * time.Microsecond // worker + NATS server CPU per job at InFlight
	targetCPURate      = 500 * time.Microsecond // ... at DirectRate
)

// goal is one figure beside its target; a figure without a target (a
// reference, such as the raw JetStream round trip) has an empty target.
type goal struct {
	name, got, target string
	met               bool
}

// atMost is a figure that must not exceed its target.
func atMost(name string, got, target time.Duration) goal {
	return goal{name: name, got: ms(got), target: "<= " + ms(target), met: got <= target}
}

// atLeast is a ratio that must reach its target.
func atLeast(name string, got, target float64, detail string) goal {
	return goal{name: name, got: fmt.Sprintf("%.2f (%s)", got, detail), target: fmt.Sprintf(">= %.2f", target), met: got >= target}
}

// reference is a figure printed for comparison, with no target.
func reference(name, got string) goal { return goal{name: name, got: got} }

func (g goal) verdict() string {
	switch {
	case g.target == "":
		return "reference"
	case g.met:
		return "met"
	default:
		return "MISSED"
	}
}

// printGoals writes the targets block: one line per figure, its target and
// whether it was met, and a count.
func printGoals(w io.Writer, gs []goal) {
	if len(gs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n== targets (issue #21; one run, this machine)\n")
	met, total := 0, 0
	for _, g := range gs {
		fmt.Fprintf(w, "  %-62s %-26s %-12s %s\n", g.name, g.got, g.target, g.verdict())
		if g.target != "" {
			total++
			if g.met {
				met++
			}
		}
	}
	fmt.Fprintf(w, "  %d of %d targets met\n", met, total)
}
