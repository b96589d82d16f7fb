package policy

import (
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Deployment is one provider + model that can serve a group. What the router
// knows of its model (context window, prices, capabilities) is resolved once,
// when the router loads it: see ModelInfo and ResolveModel.
type Deployment struct {
	Name     string
	Model    string
	Provider llm.Provider
	Options  DeploymentOptions
}

// Group is a named set of deployments that serve the same kind of request.
type Group struct {
	Name        string
	Deployments []Deployment
	Options     GroupOptions
}

// EventType names what an Event reports. The values are the wire names.
type EventType string

// Event types, in the order a client may see them.
const (
	EventStart    EventType = "start"     // a deployment was chosen; Deployment is set
	EventChunk    EventType = "chunk"     // Delta is set
	EventToolCall EventType = "tool_call" // ToolCall is set
	EventPartial  EventType = "partial"   // Partial is set: the JSON answer parsed so far (see Structured)
	EventRestart  EventType = "restart"   // discard the output so far; a new attempt follows
	EventRetry    EventType = "retry"     // informational; Reason and Code say why
	EventFallback EventType = "fallback"  // informational; Reason and Code say why
)

// Event is what Execute reports while it runs. Emit functions are called
// synchronously from the executing goroutine and must not block for long.
type Event struct {
	Type       EventType
	Group      string // the group of the attempt (differs after a fallback)
	Deployment string
	Delta      string
	ToolCall   *llm.ToolCallDelta
	Partial    any // EventPartial
	// Code is the llm.Kind name of the failure that caused a retry,
	// fallback or restart (its wire code is WireCode(Err)).
	Code   string
	Reason string // human-readable cause
	// Err is that failure (nil for other events), so that a caller maps it
	// to a wire code exactly as it maps the Attempt it also ends up in.
	Err error
}

// Attempt records one call to one deployment.
type Attempt struct {
	Group      string
	Deployment string
	Model      string
	Provider   string // the deployment's vendor (ModelInfo.Provider)
	Err        error  // nil for the attempt that succeeded
	Duration   time.Duration
	Code       string // llm.Kind name of Err; "" on success
	// Hedge says the attempt was a hedge: started beside another attempt
	// of the same try, whose first token was late (see HedgeOptions).
	Hedge bool
	// Race is, for the attempts of a try in which a hedge called a
	// deployment, RaceWon for the one whose first token came first and
	// RaceCancelled for those cancelled then; "" otherwise (an attempt
	// that failed on its own has its Err).
	Race RaceResult
	// CostUSD is a cancelled attempt's estimated cost (see Outcome.CostUSD).
	CostUSD float64
}

// RaceResult is how an attempt of a hedged try ended.
type RaceResult string

// Race results.
const (
	RaceWon       RaceResult = "won"
	RaceCancelled RaceResult = "cancelled"
)

// Outcome is what Execute produced. It is returned even when Execute fails,
// so that the attempts can be reported.
type Outcome struct {
	Text         string
	JSON         any // the validated JSON answer of a json_object / json_schema call (see Structured)
	ToolCalls    []llm.ToolCall
	FinishReason llm.FinishReason
	Usage        llm.Usage
	// CostUSD is what the answer cost, plus the estimated cost of the
	// attempts a hedge race cancelled (Attempt.CostUSD), which a failed
	// Execute's outcome carries too.
	CostUSD    float64
	Group      string // the group that answered (differs after a fallback)
	Deployment string
	Model      string
	Provider   string        // the answering deployment's vendor (ModelInfo.Provider)
	TTFT       time.Duration // time to first chunk of the successful attempt
	Attempts   []Attempt
	// Retries counts the EventRetry events emitted, Fallbacks the
	// EventFallback ones, Hedges the hedges that called a deployment:
	// len(Attempts) == 1 + Retries + Fallbacks + Hedges when every attempt
	// reached a provider (a fallback decided before any call, for a
	// context window or a missing capability, adds no attempt).
	Retries   int
	Fallbacks int
	Hedges    int
	// BudgetDenied counts the retries and hedges the group's retry budget
	// refused (see RetryBudgetOptions).
	BudgetDenied int
	// Cached says the answer came from a response cache (see Cache): no
	// provider was called, Attempts is empty, Usage and CostUSD are zero.
	Cached bool
}
