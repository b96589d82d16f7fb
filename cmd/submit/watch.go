package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/switchyard/switchyard/pkg/bus"
)

func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("submit watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		fromSeq uint64
		attempt int
		jsonOut bool
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: submit watch <job-id> [--from-seq N]

Replays a job's token stream from LLM_RESULTS (workers with
SWITCHYARD_DURABLE_EVENTS=true store it) and follows it live until the result.
Without durable events only the result and the events from now on are shown.

flags:
`)
		fs.PrintDefaults()
	}
	fs.Uint64Var(&fromSeq, "from-seq", 0, "skip the events before this seq (of the first attempt, or of --attempt)")
	fs.IntVar(&attempt, "attempt", 0, "the delivery attempt --from-seq counts in (default: the first one seen)")
	fs.BoolVar(&jsonOut, "json", false, "print every event and the result as JSON lines")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return &exitError{2, errors.New("")}
	}
	if len(pos) != 1 {
		fs.Usage()
		return &exitError{2, errors.New("")}
	}
	nc, c, err := dial(bus.Msgpack)
	if err != nil {
		return err
	}
	defer nc.Close()
	var opts []bus.WatchOption
	if attempt > 0 {
		opts = append(opts, bus.FromAttempt(attempt))
	}
	w, err := c.Watch(ctx, pos[0], fromSeq, opts...)
	if err != nil {
		return err
	}
	defer w.Close()
	if !w.Durable && !jsonOut {
		fmt.Fprintln(stderr, "[events are not stored (SWITCHYARD_DURABLE_EVENTS is off): showing the result and live events only]")
	}
	r := newRenderer(promptFlags{jsonOut: jsonOut}, stdout, stderr)
	for {
		ev, res, err := w.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return &exitError{130, fmt.Errorf("interrupted; resume with: submit watch %s --from-seq N", pos[0])}
		}
		if err != nil {
			return err
		}
		if jsonOut {
			var v any = ev
			if res != nil {
				v = res
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
			if res != nil {
				return resultExit(res)
			}
			continue
		}
		if res != nil {
			return r.result(res)
		}
		r.event(ev)
	}
}

func resultExit(res *bus.Result) error {
	if res.Status != bus.StatusOK {
		return &exitError{1, errors.New("")}
	}
	return nil
}
