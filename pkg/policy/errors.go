package policy

import (
	"errors"
	"fmt"

	"github.com/switchyard/switchyard/pkg/llm"
)

// ErrUnknownGroup is returned by Execute for a group the router does not serve.
var ErrUnknownGroup = errors.New("policy: unknown group")

// BreakerVerdict is how a failed call counts for its deployment's circuit
// breaker.
type BreakerVerdict int

// Breaker verdicts.
const (
	// BreakerCountsFailure: the deployment is unhealthy.
	BreakerCountsFailure BreakerVerdict = iota
	// BreakerCountsSuccess: the deployment answered; the failure is about
	// the request (bad request, context window, content policy) or is a
	// rate limit, which Retry-After cools down instead.
	BreakerCountsSuccess
	// BreakerNoVerdict: the caller gave up, which says nothing of the
	// deployment. A half-open probe still counts as a failure, so that its
	// permit comes back and the breaker errs on the safe side.
	BreakerNoVerdict
)

// ErrorBehaviour is what the router does with a failure of one llm.Kind, and
// how the failure is reported.
type ErrorBehaviour struct {
	// Action is the default; a group's on_error overrides it.
	Action Action
	// Breaker is how the failure counts for the deployment's breaker.
	Breaker BreakerVerdict
	// Code is the wire error code (a pkg/bus ErrorCode value) of a job that
	// ends with this failure, and of an attempt, retry, fallback or restart
	// it causes.
	Code string
	// Retryable says whether running the whole job again later may succeed.
	Retryable bool
}

// errorTable is the one table of error kinds: every retry, fallback, breaker
// and wire-code decision about a provider failure reads it.
var errorTable = [...]ErrorBehaviour{
	llm.KindUnknown:       {ActionRetry, BreakerCountsFailure, "internal", true},
	llm.KindRateLimited:   {ActionRetry, BreakerCountsSuccess, "rate_limited", true},
	llm.KindUnavailable:   {ActionRetry, BreakerCountsFailure, "provider_unavailable", true},
	llm.KindTimeout:       {ActionRetry, BreakerCountsFailure, "timeout", true},
	llm.KindConnection:    {ActionRetry, BreakerCountsFailure, "provider_unavailable", true},
	llm.KindAuth:          {ActionFallback, BreakerCountsFailure, "auth", false},
	llm.KindContextWindow: {ActionFallback, BreakerCountsSuccess, "context_window_exceeded", false},
	llm.KindContentPolicy: {ActionFallback, BreakerCountsSuccess, "content_policy", false},
	llm.KindBadRequest:    {ActionFail, BreakerCountsSuccess, "invalid_request", false},
	llm.KindCancelled:     {ActionFail, BreakerNoVerdict, "cancelled", false},
}

// Behaviour returns the table's entry for k (that of KindUnknown for a kind
// the table does not know).
func Behaviour(k llm.Kind) ErrorBehaviour {
	if k >= 0 && int(k) < len(errorTable) {
		return errorTable[k]
	}
	return errorTable[llm.KindUnknown]
}

// WireCode maps a failure of Execute, of an attempt or of an event to its
// wire error code and whether a later re-run of the job may succeed: the
// code of an error that carries its own (see WireCoder), unknown_group for
// ErrUnknownGroup, else that of its llm.Kind in the error table. It is the
// one function from errors to wire codes, so that a retry event and the
// result's attempt for the same failure say the same.
func WireCode(err error) (code string, retryable bool) {
	if wc, ok := errors.AsType[WireCoder](err); ok {
		return wc.WireCode()
	}
	if errors.Is(err, ErrUnknownGroup) {
		return "unknown_group", false
	}
	b := Behaviour(llm.KindOf(err))
	return b.Code, b.Retryable
}

// WireCoder is implemented by errors that name their wire code themselves,
// such as a validation failure or a spent budget.
type WireCoder interface {
	error
	WireCode() (code string, retryable bool)
}

// action returns the group's action for kind: its on_error, else the table's.
func (o *GroupOptions) action(k llm.Kind) Action {
	if a, ok := o.OnError[k.String()]; ok {
		return a
	}
	return Behaviour(k).Action
}

func kindNames() []string {
	var out []string
	for k := range llm.Kind(len(errorTable)) {
		out = append(out, k.String())
	}
	return out
}

func kindByName(name string) (llm.Kind, bool) {
	for k := range llm.Kind(len(errorTable)) {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

// OptionError is a bad option of a group or deployment: Key is its path
// within the group or deployment (hedge.delay, retry.budget.max_rate), Reason
// what is wrong with it. Every option's validation returns one.
type OptionError struct {
	Key, Reason string
}

func (e *OptionError) Error() string { return e.Key + ": " + e.Reason }

// optionError is the *OptionError of key, its reason formatted as fmt.Sprintf.
func optionError(key, format string, args ...any) error {
	return &OptionError{Key: key, Reason: fmt.Sprintf(format, args...)}
}
