package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		fromSeq uint64
		attempt int
		jsonOut bool
	)
	cmd := newCommand("submit watch", "submit watch <job-id> [--from-seq N [--attempt A]]", `
Replays a job's token stream from LLM_RESULTS (workers with
SWITCHYARD_DURABLE_EVENTS=true store it) and follows it live until the result.
Without durable events only the result and the events from now on are shown.`, stderr)
	fs := cmd.fs
	fs.Uint64Var(&fromSeq, "from-seq", 0, "skip the events before this seq (of the first attempt, or of --attempt)")
	fs.IntVar(&attempt, "attempt", 0, "the delivery attempt --from-seq counts in (default: the first one seen)")
	fs.BoolVar(&jsonOut, "json", false, "print every event and the result as JSON lines")
	timeout := fs.Duration("timeout", 10*time.Minute, "stop following after this long (exit 1) when no result came")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if err := cmd.jobIDArgs(pos, *timeout); err != nil {
		return err
	}
	nc, c, err := dial(bus.Msgpack)
	if err != nil {
		return err
	}
	defer nc.Close()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
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
	if w.Stored == 0 {
		fmt.Fprintf(stderr, "[nothing is stored for job %s: it is still queued, its results expired, or no job has this id; waiting for it (Ctrl-C stops)]\n", pos[0])
	}
	return follow(ctx, parent, w, pos[0], *timeout, jsonOut, stdout, stderr)
}

// follow prints a watched job's events until its result, and says how to
// resume when the wait ends first (timeout, interrupt).
func follow(ctx, parent context.Context, w *bus.Watcher, id string, timeout time.Duration, jsonOut bool, stdout, stderr io.Writer) error {
	r := newRenderer(promptFlags{jsonOut: jsonOut}, stdout, stderr)
	var last *bus.Event // the last event shown, for the resume hint
	for {
		ev, res, err := w.Next(ctx)
		if ctx.Err() != nil {
			hint := "submit watch " + id
			if last != nil {
				hint += fmt.Sprintf(" --from-seq %d --attempt %d", last.Seq+1, last.Attempt)
			}
			if parent.Err() == nil {
				return &exitError{1, fmt.Errorf("no result for job %s within %s; resume with: %s", id, shortDuration(timeout.String()), hint)}
			}
			return &exitError{130, fmt.Errorf("interrupted; resume with: %s", hint)}
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
			last = ev
			continue
		}
		if res != nil {
			return r.result(res)
		}
		last = ev
		r.event(ev)
	}
}

func resultExit(res *bus.Result) error {
	if res.Status != bus.StatusOK {
		return &exitError{1, errors.New("")}
	}
	return nil
}
