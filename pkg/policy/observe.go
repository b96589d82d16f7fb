package policy

import (
	"context"
	"time"
)

// CallObserver is told about every call a chain runs, for metrics;
// internal/metrics implements it with Prometheus. Its methods are called on
// the call's goroutine and must be fast and safe for concurrent use.
type CallObserver interface {
	// CallDone reports a finished call: its outcome (every attempt, with
	// its deployment, model, provider and error), its error, and how long
	// it took.
	CallDone(c *Call, out *Outcome, err error, took time.Duration)
}

// Observe returns the middleware that reports every call to o.
func Observe(o CallObserver) Middleware {
	return func(next Executor) Executor {
		return ExecutorFunc(func(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
			start := time.Now()
			out, err := next.Execute(ctx, c, emit)
			o.CallDone(c, out, err, time.Since(start))
			return out, err
		})
	}
}
