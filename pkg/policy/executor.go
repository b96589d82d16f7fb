package policy

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Call is one request to run on a model group, with what its caller knows
// of it. Middlewares read the fields they are about; the Router reads Group
// and Request.
type Call struct {
	// Group names the model group.
	Group string
	// Request is what to send. Executors never modify it.
	Request *llm.Request
	// Tenant is whose call it is ("" for the anonymous tenant): see
	// Tenants.
	Tenant string
	// Deadline, when not zero, is when the answer stops being wanted: see
	// Deadline.
	Deadline time.Time
	// MaxCostUSD, when > 0, bounds what the call may cost: the router skips
	// the deployments whose price and the request's size say it may cost
	// more (its estimated prompt at the input price, plus its max_tokens,
	// else the model's output limit, at the output price), and refuses the
	// call with a *BudgetError (budget_exceeded), before any provider
	// call, when none is left.
	MaxCostUSD float64
	// NoCache keeps the call away from a response cache: it is neither
	// answered from it nor stored in it (see Cache).
	NoCache bool
	// ValidationRetries, when not nil, is how many times an answer that
	// does not validate is re-asked: see Structured.
	ValidationRetries *int
	// Contract is Request's contract when the caller compiled it already
	// (NewContract, e.g. to refuse a bad schema at intake); nil: Structured
	// compiles it.
	Contract *Contract
	// Partials asks Structured for EventPartial events.
	Partials bool
	// Priority is the call's scheduling class (a worker sets its job's);
	// "" when the caller does not say. The router does not order calls by
	// it, but an interactive call (a person waits for the first token) is
	// hedged when its group has a hedge (see HedgeOptions); middlewares and
	// observers use it to tell an interactive call from a batch one.
	Priority Priority
}

// Priority is a call's scheduling class. Its values are those of a job's
// class on the wire (pkg/bus's Priority), so that a worker converts one to
// the other as is.
type Priority string

// The classes, highest first.
const (
	// PriorityInteractive is for a person waiting for tokens.
	PriorityInteractive Priority = "interactive"
	// PriorityDefault is a group's default class.
	PriorityDefault Priority = "default"
	// PriorityBatch is for work that can wait.
	PriorityBatch Priority = "batch"
)

// Executor runs calls. *Router is one; a Middleware wraps one in another.
// emit (may be nil) receives the call's events synchronously, from the
// calling goroutine. The Outcome is returned even on failure, with every
// attempt.
type Executor interface {
	Execute(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error)
}

// ExecutorFunc is an Executor made of a function.
type ExecutorFunc func(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
	return f(ctx, c, emit)
}

// Middleware adds one concern around an executor.
type Middleware func(next Executor) Executor

// Chain wraps e in mws, the first outermost: Chain(r, a, b) runs a, which
// runs b, which runs r.
func Chain(e Executor, mws ...Middleware) Executor {
	for i := len(mws) - 1; i >= 0; i-- {
		e = mws[i](e)
	}
	return e
}

var _ Executor = (*Router)(nil)
