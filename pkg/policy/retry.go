package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/switchyard/switchyard/pkg/llm"
)

// groupRun is one request's run through one group: the deployments it may
// no longer use and the last failure.
type groupRun struct {
	x        *execution
	g        *group
	ctx      context.Context // the request's
	excluded map[*deployment]bool
	lastErr  error
	// stop ends the retries from the retry policy's listener when its next
	// wait would pass the deadline; failsafe then returns ctx's error.
	stop context.CancelCauseFunc
}

// errStop marks an error that must end the group's retries.
type errStop struct{ error }

func (e errStop) Unwrap() error { return e.error }

// errWaitPastDeadline is the cause of a retry wait cut short because it
// would pass the request's deadline: fail fast with the last failure.
var errWaitPastDeadline = errors.New("policy: the retry wait would pass the deadline")

// retry runs g with failsafe-go's retry policy: exactly 1+MaxRetries calls
// at most, exponential backoff with jitter between them, Retry-After through
// the delay function, and never a wait that would pass the deadline.
func (x *execution) retry(ctx context.Context, g *group) (*Outcome, error) {
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	run := &groupRun{x: x, g: g, ctx: ctx, excluded: map[*deployment]bool{}, stop: stop}
	res, err := failsafe.With(run.policy()).WithContext(rctx).GetWithExecution(run.attempt)
	if err == nil {
		return res, nil
	}
	if s, ok := errors.AsType[errStop](err); ok {
		err = s.error
	}
	_, classified := errors.AsType[*llm.Error](err)
	switch {
	case errors.Is(context.Cause(rctx), errWaitPastDeadline):
		err = run.lastErr
	case !classified && run.lastErr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// Keep the provider's reason when the deadline cut a wait short.
		err = fmt.Errorf("%w (last attempt: %w)", err, run.lastErr)
	}
	return res, err
}

func (run *groupRun) policy() retrypolicy.RetryPolicy[*Outcome] {
	o := run.g.opts.Retry
	b := retrypolicy.NewBuilder[*Outcome]().
		HandleIf(func(_ *Outcome, err error) bool { return err != nil }).
		AbortIf(func(_ *Outcome, err error) bool { return errors.As(err, new(errStop)) }).
		WithMaxRetries(max(o.MaxRetries, 0)).
		WithBackoff(o.Backoff.Initial, o.Backoff.Max).
		WithDelayFunc(run.retryAfter).
		OnRetryScheduled(run.checkDeadline).
		ReturnLastFailure()
	if o.Jitter > 0 {
		b = b.WithJitterFactor(o.Jitter)
	}
	return b.Build()
}

// attempt is one try of the group: admit a deployment, announce a retry,
// make the call and judge its failure.
func (run *groupRun) attempt(exec failsafe.Execution[*Outcome]) (*Outcome, error) {
	x, ctx := run.x, exec.Context()
	d, err := x.admit(ctx, run.g, run.excluded, run.lastErr)
	if err != nil {
		return nil, errStop{err}
	}
	if exec.Attempts() > 1 {
		x.out.Retries++
		x.emit(Event{Type: EventRetry, Group: run.g.Name, Deployment: d.Name, Code: llm.KindOf(run.lastErr).String(),
			Reason: errText(run.lastErr), Err: run.lastErr})
	}
	res, err := x.attempt(ctx, run.g, d)
	if err == nil {
		return res, nil
	}
	run.lastErr = err
	return nil, run.judge(d, err)
}

// judge returns err to retry it, or errStop to end the group: the error
// table's action (a group's on_error first), the caller's context.
func (run *groupRun) judge(d *deployment, err error) error {
	k := llm.KindOf(err)
	switch run.g.opts.action(k) {
	case ActionFail:
		return errStop{err}
	case ActionFallback:
		run.excluded[d] = true
		if k == llm.KindContextWindow || k == llm.KindContentPolicy {
			return errStop{err} // straight to that kind's fallbacks
		}
	}
	if ra := llm.RetryAfterOf(err); ra > 0 {
		d.state.cool(run.x.r.now().Add(ra))
	}
	if run.ctx.Err() != nil {
		return errStop{err}
	}
	return err
}

// retryAfter is the retry policy's delay function: after a failure with a
// Retry-After, wait until a candidate of the group leaves its cool-down when
// none is free before (the Retry-After of the only deployment); otherwise,
// -1: the policy's exponential backoff.
func (run *groupRun) retryAfter(exec failsafe.ExecutionAttempt[*Outcome]) time.Duration {
	if llm.RetryAfterOf(exec.LastError()) <= 0 {
		return -1
	}
	now := run.x.r.now()
	if wait := run.x.soonest(run.g, run.excluded, now).Sub(now); wait > 0 {
		return wait
	}
	return -1
}

// checkDeadline ends the retries at once when the scheduled wait would pass
// the request's deadline: the last failure is the answer, now rather than
// at the deadline.
func (run *groupRun) checkDeadline(e failsafe.ExecutionScheduledEvent[*Outcome]) {
	if pastDeadline(run.ctx, e.Delay) {
		run.stop(errWaitPastDeadline)
	}
}
