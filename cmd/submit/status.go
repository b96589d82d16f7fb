package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("submit status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the status as JSON")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil || fs.NArg() != 0 {
		return &exitError{2, errors.New("usage: submit status [--json]")}
	}
	nc, c, err := dial(bus.Msgpack)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(stdout, st, time.Now())
	return nil
}

func printStatus(w io.Writer, st *bus.FleetStatus, now time.Time) {
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
	fmt.Fprintln(tw, "GROUP\tPENDING\tIN FLIGHT\tREDELIVERED\tWORKERS WAITING\tDLQ\tLAST DELIVERY")
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
	_ = tw.Flush()
	fmt.Fprintf(w, "\ndead letters: %d (nats stream view %s)\n", st.DLQ, bus.StreamDLQ)
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
