package worker

import (
	"errors"
	"log/slog"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// The chain: every job runs through one policy.Executor, built once in New
// from pkg/policy's middlewares around the router, each one concern (see
// DESIGN.md section 3):
//
//	Deadline       the job's deadline and MaxJobTime; cancel on request
//	TenantBudget   the tenant's budget: asked before, charged after
//	Structured     the answer held to its contract, re-asked when invalid
//	Tenants        the tenant's own router (its keys), else the worker's
//
// The worker adds nothing to what a job asks but the wire: intake makes the
// policy.Call, and result below maps the Outcome back.

// newChain builds the executor of every job.
func newChain(exec Executor, cfg Config) policy.Executor {
	own := make(map[string]policy.Executor, len(cfg.Tenants))
	for t, e := range cfg.Tenants {
		own[t] = e
	}
	log := cfg.Logger
	return policy.Chain(policy.Tenants(exec, own),
		policy.Deadline(cfg.MaxJobTime, cfg.Now),
		policy.TenantBudget(cfg.Budgets, policy.BudgetOptions{OnChargeError: func(tenant string, err error) {
			log.Warn("budget charge failed", slog.String("tenant", tenant), slog.Any("error", err))
		}}),
		policy.Structured(policy.StructuredOptions{Retries: cfg.ValidationRetries, Now: cfg.Now}),
	)
}

// codeOf maps an execution error to its wire code and whether retrying the
// job later may help: the error table's (policy.WireCode), the one place
// that gives an error its code.
func codeOf(err error) (bus.ErrorCode, bool) {
	code, retryable := policy.WireCode(err)
	return bus.ErrorCode(code), retryable
}

// result is the job's result for what the chain returned.
func (j *job) result(out *policy.Outcome, err error) *bus.Result {
	res := j.outcomeResult(out)
	if err == nil {
		return res
	}
	code, retryable := codeOf(err)
	res.Status = bus.StatusError
	res.Error = &bus.Error{Code: code, Message: err.Error(), Retryable: retryable, RetryAfterMS: retryAfterMS(code, err)}
	if ve, ok := errors.AsType[*policy.ValidationError](err); ok {
		vs := make([]violation, len(ve.Violations))
		for i, v := range ve.Violations {
			vs[i] = violation(v)
		}
		res.Error.Details = map[string]any{"violations": vs, "raw": ve.Raw}
	}
	return res
}

// retryAfterMS is the wait a failed job's result asks for before it is
// published again (bus.Error.RetryAfterMS): the Retry-After its last
// failure carried, for the codes a later run may cure by waiting; 0
// otherwise. A wait under a millisecond counts as one.
func retryAfterMS(code bus.ErrorCode, err error) int64 {
	if code != bus.CodeRateLimited && code != bus.CodeProviderUnavailable {
		return 0
	}
	if d := llm.RetryAfterOf(err); d > 0 {
		return max(d.Milliseconds(), 1)
	}
	return 0
}

// violation is one entry of a validation_failed result's details.
type violation struct {
	Path    string `json:"path" msgpack:"path"`
	Message string `json:"message" msgpack:"message"`
	// ToolCall is the id of the tool call whose arguments are wrong; empty
	// for the answer's JSON.
	ToolCall string `json:"tool_call,omitempty" msgpack:"tool_call,omitempty"`
}

// outcomeResult builds the result of an execution, successful or not.
func (j *job) outcomeResult(out *policy.Outcome) *bus.Result {
	res := &bus.Result{ID: j.id, Status: bus.StatusOK, Group: j.group, Metadata: j.req.Metadata}
	if out == nil {
		return res
	}
	res.Text = out.Text
	res.JSON = out.JSON
	res.FinishReason = string(out.FinishReason)
	res.CostUSD = out.CostUSD
	res.Cached = out.Cached
	if out.Group != "" {
		res.Group = out.Group
	}
	res.Deployment = out.Deployment
	res.Model = out.Model
	if u := out.Usage; u != (llm.Usage{}) {
		res.Usage = &bus.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	for _, tc := range out.ToolCalls {
		res.ToolCalls = append(res.ToolCalls, bus.ToolCall{ID: tc.ID, Type: "function", Function: bus.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	for _, a := range out.Attempts {
		ba := bus.Attempt{Deployment: a.Deployment, DurationMS: a.Duration.Milliseconds(), Hedge: a.Hedge, Race: string(a.Race), CostUSD: a.CostUSD}
		if a.Err != nil {
			code, _ := codeOf(a.Err)
			ba.ErrorCode = string(code)
			ba.Message = a.Err.Error()
		}
		res.Attempts = append(res.Attempts, ba)
	}
	return res
}
