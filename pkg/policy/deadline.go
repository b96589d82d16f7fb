package policy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrCancelled is the cause to cancel a call's context with
// (context.WithCancelCause) when the call is cancelled on request: Deadline
// then reports it as cancelled. A context cancelled for another cause (a
// shutdown) keeps that cause, so that the caller can tell.
var ErrCancelled = errors.New("cancelled")

// Deadline returns the middleware that bounds a call in time: it runs the
// call until its Deadline and for at most max (0: no bound), refuses a call
// whose Deadline has already passed (by now, default time.Now) without
// running it, and reports a call its deadline ended as a *DeadlineError and
// one cancelled with ErrCancelled as a *CancelledError.
func Deadline(max time.Duration, now func() time.Time) Middleware {
	if now == nil {
		now = time.Now
	}
	return func(next Executor) Executor {
		return ExecutorFunc(func(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
			if !c.Deadline.IsZero() && !now().Before(c.Deadline) {
				return &Outcome{Group: c.Group}, &DeadlineError{Deadline: c.Deadline, Before: true}
			}
			if max > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, max)
				defer cancel()
			}
			if !c.Deadline.IsZero() {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, c.Deadline)
				defer cancel()
			}
			out, err := next.Execute(ctx, c, emit)
			switch {
			case err == nil:
			case errors.Is(context.Cause(ctx), ErrCancelled):
				err = &CancelledError{Err: err}
			case !c.Deadline.IsZero() && !now().Before(c.Deadline):
				// By the clock, not by ctx.Err(): a timer runs late on a
				// process that was frozen, and a caller may stop a call
				// whose deadline its clock shows passed (internal/worker).
				err = &DeadlineError{Deadline: c.Deadline, Err: err}
			}
			return out, err
		})
	}
}

// DeadlineError is a call that its deadline ended (wire code
// deadline_exceeded): before it started, or while it ran (Err is then how
// the call failed).
type DeadlineError struct {
	Deadline time.Time
	Before   bool // it passed before the call started
	Err      error
}

func (e *DeadlineError) Error() string {
	if e.Before {
		return fmt.Sprintf("deadline %s passed while the job was queued", e.Deadline.UTC().Format(time.RFC3339Nano))
	}
	return "deadline passed while the job ran: " + e.Err.Error()
}

func (e *DeadlineError) Unwrap() error { return e.Err }

// WireCode implements WireCoder.
func (e *DeadlineError) WireCode() (string, bool) { return "deadline_exceeded", false }

// CancelledError is a call cancelled on request (wire code cancelled).
type CancelledError struct{ Err error }

func (e *CancelledError) Error() string { return "job was cancelled" }

func (e *CancelledError) Unwrap() error { return e.Err }

// WireCode implements WireCoder.
func (e *CancelledError) WireCode() (string, bool) { return "cancelled", false }
