package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// clientGrace is how much longer than a job's --timeout submit waits for its
// result: a worker that picks the job up at its deadline still answers it
// (deadline_exceeded). Past it, submit gives up and says what the job was
// waiting for. A variable so that tests can shorten it.
var clientGrace = 30 * time.Second

// noticeAfter is how long submit waits for a job before it looks at the
// group's queue and says what the job is waiting for.
var noticeAfter = 5 * time.Second

// checkTimeout refuses a --timeout no job could be given.
func checkTimeout(cmd *command, d time.Duration) error {
	if d <= 0 || d > bus.MaxTimeout {
		return cmd.usageErr("--timeout %s: want more than 0 and at most %s", d, shortDuration(bus.MaxTimeout.String()))
	}
	return nil
}

// waitingFor says what a job of group is waiting for when the group's queue
// shows no worker taking it, and "" when a worker is pulling or it cannot
// tell.
func waitingFor(ctx context.Context, c *bus.Client, group string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gs, err := c.GroupStatus(ctx, group)
	switch {
	case err != nil:
		return ""
	case gs == nil:
		return fmt.Sprintf("no worker serves group %q (it has no consumer)", group)
	case !gs.Pulled():
		return fmt.Sprintf("group %q has a consumer but no worker is pulling from it (%d jobs queued): is a worker serving %q running? (a worker that stopped leaves its durable consumer in the server's data)", group, gs.Pending, group)
	}
	return ""
}

// watchQueue prints, once the job has waited noticeAfter, what it is waiting
// for, again whenever that changes; two looks in a row must agree, since a
// worker is between two pull requests for a moment. It stops when the
// returned function is called.
func watchQueue(ctx context.Context, c *bus.Client, group string, w io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(noticeAfter)
		defer t.Stop()
		var last, shown string
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			why := waitingFor(ctx, c, group)
			if why != "" && why == last && why != shown && ctx.Err() == nil {
				fmt.Fprintf(w, "[waiting: %s]\n", why)
				shown = why
			}
			last = why
			t.Reset(time.Second)
		}
	}()
	return func() { cancel(); <-done }
}

// noResult is the error of a job whose result did not come in time.
func noResult(c *bus.Client, id, group string, timeout time.Duration) error {
	msg := fmt.Sprintf("no result for job %s of group %q within %s (--timeout %s + %s)", id, group,
		shortDuration((timeout + clientGrace).String()), shortDuration(timeout.String()), shortDuration(clientGrace.String()))
	if why := waitingFor(context.Background(), c, group); why != "" {
		msg += ": " + why
	}
	return &exitError{1, fmt.Errorf("%s; submit cancel %s drops the job", msg, id)}
}

// lockedWriter serialises writes from the job's events and from the queue
// watcher.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// graceHelp ends the --timeout help of each command that waits for jobs:
// what submit does when no result came within the timeout and the grace.
func graceHelp(then string) string {
	return fmt.Sprintf("; submit waits that long plus %s for the result, then %s", shortDuration(clientGrace.String()), then)
}
