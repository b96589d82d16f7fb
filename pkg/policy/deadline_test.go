package policy_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// waiting is an executor that runs until its context ends, as a slow
// provider call does, and counts its calls.
type waiting struct{ calls int }

func (w *waiting) Execute(ctx context.Context, c *policy.Call, _ func(policy.Event)) (*policy.Outcome, error) {
	w.calls++
	<-ctx.Done()
	return &policy.Outcome{Group: c.Group}, &llm.Error{Kind: llm.KindOf(ctx.Err()), Err: ctx.Err()}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := &waiting{}
		e := policy.Chain(w, policy.Deadline(time.Minute, nil))
		code := func(err error) string { c, _ := policy.WireCode(err); return c }

		// Passed before the call: refused without running it.
		_, err := e.Execute(t.Context(), &policy.Call{Group: "g", Deadline: time.Now().Add(-time.Second)}, nil)
		var de *policy.DeadlineError
		require.ErrorAs(t, err, &de)
		require.True(t, de.Before)
		require.Equal(t, "deadline_exceeded", code(err))
		require.Zero(t, w.calls)

		// Passed while it ran.
		start := time.Now()
		_, err = e.Execute(t.Context(), &policy.Call{Group: "g", Deadline: start.Add(3 * time.Second)}, nil)
		require.ErrorAs(t, err, &de)
		require.False(t, de.Before)
		require.Equal(t, 3*time.Second, time.Since(start))
		require.Equal(t, "deadline_exceeded", code(err))
		require.ErrorIs(t, err, llm.ErrTimeout, "the call's own failure is kept")

		// No deadline: max bounds the call, which is a timeout, not a
		// deadline.
		start = time.Now()
		_, err = e.Execute(t.Context(), &policy.Call{Group: "g"}, nil)
		require.Equal(t, time.Minute, time.Since(start))
		require.Equal(t, "timeout", code(err))

		// Cancelled on request, and for another cause.
		for _, cause := range []error{policy.ErrCancelled, errors.New("shutting down")} {
			ctx, cancel := context.WithCancelCause(t.Context())
			time.AfterFunc(time.Second, func() { cancel(cause) })
			_, err = e.Execute(ctx, &policy.Call{Group: "g"}, nil)
			if errors.Is(cause, policy.ErrCancelled) {
				require.Equal(t, "cancelled", code(err))
				require.EqualError(t, err, "job was cancelled")
			} else {
				var ce *policy.CancelledError
				require.False(t, errors.As(err, &ce), "only ErrCancelled is a cancel: %v", err)
				require.Equal(t, context.Cause(ctx), cause)
			}
		}
		require.Equal(t, 4, w.calls)
	})
}
