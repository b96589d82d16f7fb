package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
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
	failed   *deployment // of the last attempt, when it failed
	avoid    *deployment // a retry at once goes elsewhere (AtOnceElsewhere)
	requeued int         // 429s of adaptive deployments retried without spending a retry
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
	case errors.Is(err, budget.ErrExceeded) && run.lastErr != nil:
		// The budget refused the retry: the request ends with its failure.
		x.out.BudgetDenied++
		err = run.lastErr
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
	limit := max(o.MaxRetries, 0) // the most any kind allows; judge holds each to its own
	for _, n := range o.PerKind {
		limit = max(limit, n)
	}
	if run.x.anyAdaptive(run.g) {
		limit += RequeueLimit
	}
	b := retrypolicy.NewBuilder[*Outcome]().
		HandleIf(func(_ *Outcome, err error) bool { return err != nil }).
		AbortIf(func(_ *Outcome, err error) bool { return errors.As(err, new(errStop)) }).
		WithMaxRetries(limit).
		WithBackoff(o.Backoff.Initial, o.Backoff.Max).
		WithDelayFunc(run.retryAfter).
		OnRetryScheduled(run.checkDeadline).
		ReturnLastFailure()
	if o.Jitter > 0 {
		b = b.WithJitterFactor(o.Jitter)
	}
	if run.g.budget != nil {
		b = b.WithBudget(run.g.budget)
	}
	return b.Build()
}

// attempt is one try of the group: admit a deployment, announce a retry,
// make the call and judge its failure.
func (run *groupRun) attempt(exec failsafe.Execution[*Outcome]) (*Outcome, error) {
	x, ctx := run.x, exec.Context()
	d, p, err := x.admitAvoiding(ctx, run.g, run.excluded, run.avoid, run.lastErr)
	run.avoid = nil
	if err != nil {
		return nil, errStop{err}
	}
	if exec.Attempts() > 1 {
		x.out.Retries++
		x.emit(Event{Type: EventRetry, Group: run.g.Name, Deployment: d.Name, Code: llm.KindOf(run.lastErr).String(),
			Reason: errText(run.lastErr), Err: run.lastErr})
	}
	res, d, err := run.call(ctx, d, p)
	if err == nil {
		return res, nil
	}
	run.lastErr, run.failed = err, d
	return nil, run.judge(d, err, exec.Attempts())
}

// call makes the try's call on d, as a race with hedges when the group
// hedges this request (see hedged); d is the deployment of the outcome, or
// of the failure.
func (run *groupRun) call(ctx context.Context, d *deployment, p *permit) (*Outcome, *deployment, error) {
	if h, delay := run.x.hedgeFor(run.g, d); h != nil {
		return run.hedged(ctx, d, p, h, delay)
	}
	res, err := run.x.attempt(ctx, run.g, d, p)
	return res, d, err
}

// judge returns err to retry it, or errStop to end the group: the error
// table's action (a group's on_error first), the retries the failure's kind
// allows, the caller's context.
func (run *groupRun) judge(d *deployment, err error, attempts int) error {
	if run.requeues(d, err) {
		// The learned capacity was too high: the permit the 429 keeps
		// lowers it; the request waits for another permit.
		run.requeued++
		if run.ctx.Err() != nil {
			return errStop{err}
		}
		return err
	}
	attempts -= run.requeued
	k := llm.KindOf(err)
	switch run.g.opts.action(k) {
	case ActionFail:
		return errStop{err}
	case ActionFallback:
		run.excluded[d] = true
		if k == llm.KindContextWindow || k == llm.KindContentPolicy {
			return errStop{err} // straight to that kind's fallbacks
		}
		if run.x.noneLeft(run.g, run.excluded) {
			return errStop{err} // no deployment left: no backoff to wait
		}
	}
	o := run.g.opts.Retry
	retries, ok := o.PerKind[k.String()]
	if !ok {
		retries = max(o.MaxRetries, 0)
	}
	if attempts > retries {
		return errStop{err} // this kind's retries are spent
	}
	if ra := llm.RetryAfterOf(err); ra > 0 {
		d.state.cool(run.x.r.now().Add(ra))
	}
	if run.ctx.Err() != nil {
		return errStop{err}
	}
	return err
}

// retryAfter is the retry policy's delay function: none when another
// deployment can take the retry now and the group retries at once
// elsewhere (AtOnceElsewhere); after a failure with a
// Retry-After, wait until a candidate of the group leaves its cool-down when
// none is free before (the Retry-After of the only deployment); otherwise,
// -1: the policy's exponential backoff.
func (run *groupRun) retryAfter(exec failsafe.ExecutionAttempt[*Outcome]) time.Duration {
	if run.g.opts.Retry.AtOnceElsewhere && run.x.elsewhere(run.g, run.failed, run.excluded) {
		run.avoid = run.failed
		return 0
	}
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

// admitAvoiding admits as admit does, passing over avoid when another
// deployment is available.
func (x *execution) admitAvoiding(ctx context.Context, g *group, excluded map[*deployment]bool, avoid *deployment, lastErr error) (*deployment, *permit, error) {
	if avoid != nil && !excluded[avoid] {
		excluded[avoid] = true
		d, p, err := x.admit(ctx, g, excluded, lastErr)
		delete(excluded, avoid)
		if err == nil {
			return d, p, nil
		}
	}
	return x.admit(ctx, g, excluded, lastErr)
}

// elsewhere reports whether a deployment of g other than failed could take
// the request now, so that a retry need not wait for failed to recover.
func (x *execution) elsewhere(g *group, failed *deployment, excluded map[*deployment]bool) bool {
	now := x.r.now()
	for _, d := range g.deps {
		if d == failed || excluded[d] || !d.serves(x.needs) || !d.fits(x.tokens) {
			continue
		}
		if ok, _ := d.state.check(now, &d.opts, x.tokens, x.r.shared); ok && !d.state.brokenAt(now, x.r.shared) {
			return true
		}
	}
	return false
}

// noneLeft reports whether every deployment of g that could take the
// request is excluded.
func (x *execution) noneLeft(g *group, excluded map[*deployment]bool) bool {
	for _, d := range g.deps {
		if !excluded[d] && d.serves(x.needs) && d.fits(x.tokens) {
			return false
		}
	}
	return true
}
