package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := newCommand("submit status", "submit status [--json]", `
Shows the streams (messages, bytes, consumers), each group's queue (pending,
in flight, redelivered, free workers, dead letters, last delivery) and the
dead-letter count, then each group's queue per priority class (interactive,
default, batch), then the concurrency limit in force on each deployment that
has one, from the workers' heartbeats: the limit its workers' adaptive
limiters learned (KIND learned), else its max_concurrency (configured),
summed over the workers. FREE WORKERS counts the workers of the group that
have at least one free slot and wait for jobs (one pull request each), not
slots.`, stderr)
	jsonOut := cmd.fs.Bool("json", false, "print the status as JSON")
	timeout := cmd.fs.Duration("timeout", 10*time.Second, "give up reading the status after this long")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cmd.usageErr("submit status takes no arguments, got %q", strings.Join(pos, " "))
	}
	if *timeout <= 0 {
		return cmd.usageErr("--timeout %s: want more than 0", *timeout)
	}
	nc, c, err := dial(bus.Msgpack)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	limits, err := statusLimits(ctx, nc)
	if err != nil {
		// The queues are what status is for; a user without read access
		// to the heartbeats still gets them.
		fmt.Fprintf(stderr, "submit status: the deployments' limits could not be read from the workers' heartbeats: %v\n", err)
	}
	if *jsonOut {
		return writeStatusJSON(stdout, st, limits)
	}
	printStatus(stdout, st, limits, time.Now())
	return nil
}

// statusLimits reads the deployments' limits within 3 seconds: a tenant's
// user, who may not read the heartbeats, gets the rest of the status at
// once rather than after the whole timeout.
func statusLimits(ctx context.Context, nc *nats.Conn) ([]deploymentLimit, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return readLimits(ctx, js)
}

// writeStatusJSON writes the status indented, with subjects as they are
// ("llm.req.>", not "llm.req.\u003e"), and the deployments' limits.
func writeStatusJSON(w io.Writer, st *bus.FleetStatus, limits []deploymentLimit) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		*bus.FleetStatus
		Limits []deploymentLimit `json:"deployment_limits,omitempty"`
	}{st, limits})
}

func printStatus(w io.Writer, st *bus.FleetStatus, limits []deploymentLimit, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tCONSUMERS\tSUBJECTS")
	for _, s := range st.Streams {
		if s.Missing {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t(missing: no worker has started yet)\n", s.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", s.Name, s.Messages, humanBytes(s.Bytes), s.Consumers, strings.Join(s.Subjects, " "))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GROUP\tPENDING\tIN FLIGHT\tREDELIVERED\tFREE WORKERS\tDLQ\tLAST DELIVERY")
	for _, g := range st.Groups {
		last := "never"
		if g.LastDelivered != nil {
			last = now.Sub(*g.LastDelivered).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", g.Group, g.Pending, g.InFlight, g.Redelivered, g.Waiting, g.DLQ, last)
	}
	if len(st.Groups) == 0 {
		fmt.Fprintln(tw, "(no groups: no worker has started yet)")
	}
	classes := false
	for _, g := range st.Groups {
		classes = classes || len(g.Classes) > 1
	}
	if classes {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "GROUP	CLASS	PENDING	IN FLIGHT	REDELIVERED	FREE WORKERS	CONSUMER")
		for _, g := range st.Groups {
			for _, c := range g.Classes {
				fmt.Fprintf(tw, "%s	%s	%d	%d	%d	%d	%s\n", g.Group, c.Priority, c.Pending, c.InFlight, c.Redelivered, c.Waiting, c.Consumer)
			}
		}
	}
	offloaded := false
	for _, g := range st.Groups {
		offloaded = offloaded || g.VendorBatchJobs > 0 || g.VendorBatches > 0
	}
	if offloaded {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "GROUP\tVENDOR BATCHES IN FLIGHT\tJOBS AT THE VENDOR OR WAITING FOR A BATCH")
		for _, g := range st.Groups {
			if g.VendorBatchJobs > 0 || g.VendorBatches > 0 {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", g.Group, g.VendorBatches, g.VendorBatchJobs)
			}
		}
	}
	printLimits(tw, limits)
	_ = tw.Flush()
	fmt.Fprintf(w, "\ndead letters: %d (submit dlq list shows them)\n", st.DLQ)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
