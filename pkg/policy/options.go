package policy

import (
	"cmp"
	"strings"
	"time"
)

// Strategy names how a group chooses among its deployments.
type Strategy string

// Routing strategies.
const (
	StrategyPriority      Strategy = "priority"       // lowest Priority first, config order on ties (default)
	StrategyWeighted      Strategy = "weighted"       // weighted random shuffle by Weight
	StrategyLeastBusy     Strategy = "least_busy"     // fewest calls in flight on this router
	StrategyLowestLatency Strategy = "lowest_latency" // lowest observed time to first token (unmeasured first)
	StrategyUsageBased    Strategy = "usage_based"    // most rpm/tpm headroom in the current minute
	// StrategyCost tries the deployment that is cheapest for the request
	// first (see Call.MaxCostUSD for how a cost is estimated; unknown
	// prices last); one at its limits is passed over like with every
	// strategy, so the cheapest that fits and has capacity takes the call.
	// LiteLLM's cost-based-routing.
	StrategyCost Strategy = "cost"
)

// Action is what the router does after an attempt failed with some error kind.
type Action string

// Actions of the error table.
const (
	// ActionRetry may call the same deployment again (after backoff).
	ActionRetry Action = "retry"
	// ActionFallback never calls the failed deployment again for this
	// request: the router tries the group's other deployments, then the
	// group's fallback chain (context_window_fallbacks for
	// context_window_exceeded, content_policy_fallbacks for content_policy).
	ActionFallback Action = "fallback"
	// ActionFail ends the request with the error at once.
	ActionFail Action = "fail"
)

// MidStream is what happens when an attempt fails after output went out.
type MidStream string

// Mid-stream modes.
const (
	// MidStreamRestart emits EventRestart (discard what you have) and starts a new attempt (default).
	MidStreamRestart MidStream = "restart"
	// MidStreamContinue gives the next attempt the text so far as an
	// assistant prefix and carries its chunks on; used only for plain text
	// requests (never tool calls or JSON), which fall back to restart.
	MidStreamContinue MidStream = "continue"
)

// RetryOptions configure retries within a group.
type RetryOptions struct {
	// MaxRetries is the number of calls after the first (default 2; -1
	// disables retries). A request makes at most 1+MaxRetries calls in a group.
	MaxRetries int `yaml:"max_retries"`
	// Backoff is the exponential backoff between attempts.
	Backoff BackoffOptions `yaml:"backoff"`
	// Jitter is the random fraction (0..1) added to or removed from each
	// delay (default 0.2; -1 disables).
	Jitter float64 `yaml:"jitter"`
	// PerKind sets, per llm.Kind name, how many retries a failure of that
	// kind allows instead of MaxRetries (0: none: the group's fallbacks
	// come next). Whether a kind retries at all is the error table's
	// decision (on_error).
	PerKind map[string]int `yaml:"per_kind"`
	// AtOnceElsewhere retries without waiting, on another deployment, when
	// one of the group can take the call now; the backoff is for going back
	// to a deployment that failed.
	AtOnceElsewhere bool `yaml:"at_once_elsewhere"`
	// Budget bounds the group's retries to a share of its calls (default
	// 20%): see RetryBudgetOptions.
	Budget RetryBudgetOptions `yaml:"budget"`
}

// BackoffOptions are the bounds of an exponential backoff.
type BackoffOptions struct {
	Initial time.Duration `yaml:"initial"` // default 100ms
	Max     time.Duration `yaml:"max"`     // default 5s
}

// CooldownOptions take a failing deployment out of its group for a while,
// the way LiteLLM's router does, instead of the circuit breaker (a group
// with Cooldown set has no breaker). A cooled-down deployment is skipped,
// never waited for; when every deployment of the group is cooling down the
// group is exhausted and its fallbacks take over. Cooldowns are shared with
// the fleet like breaker state.
//
// Only failures that say something about the deployment count: rate
// limited, auth, timeout, unavailable, unknown and a bad request answered
// with HTTP 404 (the model does not exist there); a connection error, a
// context window, a content policy or another bad request does not.
//
// With AllowedFails (or AllowedFailsPerKind) set, failures are counted: the
// counted failure that makes more than the allowed number (AllowedFailsPerKind
// for its kind, else AllowedFails) cools the deployment down; the count is
// forgotten Duration after the last counted failure, and when the
// deployment cools down. Without either, the failure rate of the current
// minute decides: a deployment cools down after a rate-limited failure or
// once more than half of at least 5 calls this minute failed, when its
// group has another deployment; an auth failure or a 404 cools it down
// even when it is alone, as does a minute of at least 1000 calls that all
// failed.
type CooldownOptions struct {
	// Duration is how long a deployment stays out (default 5s). The
	// deployment's own Cooldown replaces it, else the Retry-After of the
	// failure that cooled it down.
	Duration time.Duration `yaml:"duration"`
	// AllowedFails is the number of counted failures tolerated (nil: the
	// failure rate decides, unless AllowedFailsPerKind is set; then 0).
	AllowedFails *int `yaml:"allowed_fails"`
	// AllowedFailsPerKind replaces AllowedFails for failures of an
	// llm.Kind (by name).
	AllowedFailsPerKind map[string]int `yaml:"allowed_fails_per_kind"`
}

// BreakerOptions configure the circuit breaker of each deployment.
type BreakerOptions struct {
	// Failures within Period open the breaker (default 5). With FailureRate
	// set, it is the minimum number of calls in Period before the rate counts.
	Failures int `yaml:"failures"`
	// FailureRate (0..1], when set, opens the breaker when this fraction of
	// the calls within Period failed (default 0: count Failures).
	FailureRate float64 `yaml:"failure_rate"`
	// Period is the window failures are counted in (default 30s).
	Period time.Duration `yaml:"period"`
	// Cooldown is how long an open breaker stays open (default 30s).
	Cooldown time.Duration `yaml:"cooldown"`
	// HalfOpenProbes is the number of trial calls after the cooldown that
	// must all succeed to close the breaker; a failure reopens it (default 1).
	HalfOpenProbes int `yaml:"half_open_probes"`
	// Disabled turns the breaker off.
	Disabled bool `yaml:"disabled"`
}

// TimeoutOptions bound one attempt. Zero means no limit.
type TimeoutOptions struct {
	TTFT  time.Duration `yaml:"ttft"`  // until the first chunk (default 30s)
	Idle  time.Duration `yaml:"idle"`  // between chunks (default 30s)
	Total time.Duration `yaml:"total"` // the whole attempt (default 10m)
}

// GroupOptions are a group's routing and resilience settings, embedded
// inline in the model config's group entry.
type GroupOptions struct {
	Strategy               Strategy       `yaml:"strategy"`
	Fallbacks              []string       `yaml:"fallbacks"`
	ContextWindowFallbacks []string       `yaml:"context_window_fallbacks"`
	ContentPolicyFallbacks []string       `yaml:"content_policy_fallbacks"`
	Retry                  RetryOptions   `yaml:"retry"`
	Breaker                BreakerOptions `yaml:"breaker"`
	Timeouts               TimeoutOptions `yaml:"timeouts"`
	// OnError overrides the default action per llm.Kind name (see Behaviour).
	OnError map[string]Action `yaml:"on_error"`
	// MidStream is restart (default) or continue.
	MidStream MidStream `yaml:"mid_stream"`
	// Cooldown, when set, replaces the breaker; see CooldownOptions.
	Cooldown *CooldownOptions `yaml:"cooldown"`
	// MaxFallbacks bounds the fallback groups a request to this group
	// tries, over the whole chain (0: no bound; no group is tried twice).
	MaxFallbacks int `yaml:"max_fallbacks"`
	// Cache, when set, answers repeated deterministic requests to this
	// group from a response cache (see Cache and CacheOptions). Default:
	// no cache.
	Cache *CacheOptions `yaml:"cache"`
	// Hedge, when set, hedges the first token of the group's interactive
	// calls on another deployment (see HedgeOptions). Default: no hedge.
	Hedge *HedgeOptions `yaml:"hedge"`
	// VendorBatch, when set, sends the group's batch-class jobs that can
	// wait (and those that ask for service_tier batch) through its
	// vendor's batch API at the vendor's batch price (see
	// VendorBatchOptions and BatchTarget). Default: every job is a live
	// call.
	VendorBatch *VendorBatchOptions `yaml:"vendor_batch"`
}

// DeploymentOptions are one deployment's routing settings and limits.
type DeploymentOptions struct {
	// Priority is a tier: deployments of a lower priority are tried first,
	// and the group's strategy orders those of equal priority (for the
	// priority strategy, config order). Default 0.
	Priority int `yaml:"priority"`
	// Weight is the weighted strategy's weight (default 1).
	Weight int `yaml:"weight"`
	// RPM and TPM limit requests and tokens per minute (0: no limit). The
	// router skips a deployment at its limit.
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`
	// MaxConcurrency limits calls in flight on this router (0: no limit).
	MaxConcurrency int `yaml:"max_concurrency"`
	// Adaptive, when set, learns the deployment's concurrency from its
	// latency and 429s instead of (or below) MaxConcurrency: see
	// AdaptiveOptions.
	Adaptive *AdaptiveOptions `yaml:"adaptive_concurrency"`
	// Timeouts override the group's, field by field.
	Timeouts TimeoutOptions `yaml:"timeouts"`
	// Cooldown replaces the group's CooldownOptions.Duration for this
	// deployment; 0 never cools it down. Only with the group's Cooldown set.
	Cooldown *time.Duration `yaml:"cooldown"`

	// The fields below correct what the model catalogue and the provider
	// report of the deployment's model (see ResolveModel); zero (nil)
	// fields correct nothing.

	// ContextWindow is the model's context window in tokens. Unknown (0
	// everywhere): no pre-call check.
	ContextWindow int `yaml:"context_window"`
	// MaxOutput is the most tokens the model writes in one answer; a
	// provider that needs a max_tokens default (Anthropic) keeps below it.
	MaxOutput int `yaml:"max_output"`
	// InputCostPerMTok and OutputCostPerMTok are the prices in USD per
	// million prompt and completion tokens that cost_usd is computed from;
	// 0 is a price (a free or self-hosted model), nil keeps the catalogue's.
	InputCostPerMTok  *float64 `yaml:"input_cost_per_mtok"`
	OutputCostPerMTok *float64 `yaml:"output_cost_per_mtok"`
	// BatchInputCostPerMTok and BatchOutputCostPerMTok are the prices
	// through the vendor's batch API (a vendor batch's cost_usd); nil
	// keeps the catalogue's.
	BatchInputCostPerMTok  *float64 `yaml:"batch_input_cost_per_mtok"`
	BatchOutputCostPerMTok *float64 `yaml:"batch_output_cost_per_mtok"`
	// SupportsTools and SupportsVision say whether the model takes tools
	// (function calling) and image parts; unknown models are assumed to. A
	// request with tools or images skips deployments that lack them.
	SupportsTools  *bool `yaml:"supports_tools"`
	SupportsVision *bool `yaml:"supports_vision"`
	// SupportsJSONSchema says whether the model takes a json_schema
	// response format natively; one that does not (the default for a model
	// its provider does not report) gets the schema in its system prompt.
	SupportsJSONSchema *bool `yaml:"supports_json_schema"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o GroupOptions) WithDefaults() GroupOptions {
	o.Strategy = cmp.Or(o.Strategy, StrategyPriority)
	o.MidStream = cmp.Or(o.MidStream, MidStreamRestart)
	o.Retry.MaxRetries = cmp.Or(o.Retry.MaxRetries, 2)
	o.Retry.Backoff.Initial = cmp.Or(o.Retry.Backoff.Initial, 100*time.Millisecond)
	o.Retry.Backoff.Max = cmp.Or(o.Retry.Backoff.Max, 5*time.Second)
	o.Retry.Jitter = cmp.Or(o.Retry.Jitter, 0.2)
	o.Retry.Budget = o.Retry.Budget.WithDefaults()
	o.Breaker.Failures = cmp.Or(o.Breaker.Failures, 5)
	o.Breaker.Period = cmp.Or(o.Breaker.Period, 30*time.Second)
	o.Breaker.Cooldown = cmp.Or(o.Breaker.Cooldown, 30*time.Second)
	o.Breaker.HalfOpenProbes = cmp.Or(o.Breaker.HalfOpenProbes, 1)
	o.Timeouts.TTFT = cmp.Or(o.Timeouts.TTFT, 30*time.Second)
	o.Timeouts.Idle = cmp.Or(o.Timeouts.Idle, 30*time.Second)
	o.Timeouts.Total = cmp.Or(o.Timeouts.Total, 10*time.Minute)
	if o.Hedge != nil {
		h := o.Hedge.WithDefaults()
		o.Hedge = &h
	}
	return o
}

// Validate names the first bad field.
func (o GroupOptions) Validate() error {
	switch o.Strategy {
	case "", StrategyPriority, StrategyWeighted, StrategyLeastBusy, StrategyLowestLatency, StrategyUsageBased, StrategyCost:
	default:
		return optionError("strategy", "unknown %q (want %s, %s, %s, %s, %s or %s)", o.Strategy,
			StrategyPriority, StrategyWeighted, StrategyLeastBusy, StrategyLowestLatency, StrategyUsageBased, StrategyCost)
	}
	switch o.MidStream {
	case "", MidStreamRestart, MidStreamContinue:
	default:
		return optionError("mid_stream", "unknown %q (restart or continue)", o.MidStream)
	}
	if o.MaxFallbacks < 0 {
		return optionError("max_fallbacks", "%d < 0", o.MaxFallbacks)
	}
	for _, check := range []func() error{o.Retry.validate, o.Cache.validate, o.Hedge.validate, o.VendorBatch.validate, o.validateCooldown, o.Breaker.validate, func() error { return o.Timeouts.validate("timeouts") }, o.validateOnError} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (r RetryOptions) validate() error {
	switch {
	case r.MaxRetries < -1:
		return optionError("retry.max_retries", "%d < -1", r.MaxRetries)
	case r.Backoff.Initial < 0 || r.Backoff.Max < 0:
		return optionError("retry.backoff", "negative duration")
	case r.Backoff.Max != 0 && r.Backoff.Initial > r.Backoff.Max:
		return optionError("retry.backoff.initial", "%v > max %v", r.Backoff.Initial, r.Backoff.Max)
	case r.Jitter > 1 || r.Jitter < -1:
		return optionError("retry.jitter", "%v not in [0,1]", r.Jitter)
	}
	if err := r.Budget.validate(); err != nil {
		return err
	}
	return kindCounts("retry.per_kind", r.PerKind)
}

func (o GroupOptions) validateCooldown() error {
	c := o.Cooldown
	if c == nil {
		return nil
	}
	if c.Duration < 0 || c.AllowedFails != nil && *c.AllowedFails < 0 {
		return optionError("cooldown", "negative value")
	}
	return kindCounts("cooldown.allowed_fails_per_kind", c.AllowedFailsPerKind)
}

func (b BreakerOptions) validate() error {
	if b.Failures < 0 || b.HalfOpenProbes < 0 || b.Period < 0 || b.Cooldown < 0 {
		return optionError("breaker", "negative value")
	}
	if b.FailureRate < 0 || b.FailureRate > 1 {
		return optionError("breaker.failure_rate", "%v not in [0,1]", b.FailureRate)
	}
	return nil
}

func (o GroupOptions) validateOnError() error {
	for k, a := range o.OnError {
		if _, ok := kindByName(k); !ok {
			return optionError("on_error", "unknown error kind %q (want one of %s)", k, strings.Join(kindNames(), ", "))
		}
		switch a {
		case ActionRetry, ActionFallback, ActionFail:
		default:
			return optionError("on_error."+k, "unknown action %q (retry, fallback or fail)", a)
		}
	}
	return nil
}

// kindCounts checks a map from llm.Kind names to counts.
func kindCounts(field string, m map[string]int) error {
	for k, n := range m {
		if _, ok := kindByName(k); !ok {
			return optionError(field, "unknown error kind %q (want one of %s)", k, strings.Join(kindNames(), ", "))
		}
		if n < 0 {
			return optionError(field+"."+k, "%d < 0", n)
		}
	}
	return nil
}

func (t TimeoutOptions) validate(field string) error {
	if t.TTFT < 0 || t.Idle < 0 || t.Total < 0 {
		return optionError(field, "negative duration")
	}
	return nil
}

// WithDefaults returns o with zero fields set to their defaults.
func (o DeploymentOptions) WithDefaults() DeploymentOptions {
	o.Weight = cmp.Or(o.Weight, 1)
	return o
}

// Validate names the first bad field.
func (o DeploymentOptions) Validate() error {
	if err := o.validateLimits(); err != nil {
		return err
	}
	if err := o.validatePrices(); err != nil {
		return err
	}
	if err := o.Adaptive.validate(); err != nil {
		return err
	}
	return o.Timeouts.validate("timeouts")
}

// validateLimits checks the counts and durations that must not be
// negative.
func (o DeploymentOptions) validateLimits() error {
	switch {
	case o.Weight < 0:
		return optionError("weight", "%d < 0", o.Weight)
	case o.RPM < 0:
		return optionError("rpm", "%d < 0", o.RPM)
	case o.TPM < 0:
		return optionError("tpm", "%d < 0", o.TPM)
	case o.MaxConcurrency < 0:
		return optionError("max_concurrency", "%d < 0", o.MaxConcurrency)
	case o.ContextWindow < 0:
		return optionError("context_window", "%d < 0", o.ContextWindow)
	case o.Cooldown != nil && *o.Cooldown < 0:
		return optionError("cooldown", "negative duration")
	case o.MaxOutput < 0:
		return optionError("max_output", "%d < 0", o.MaxOutput)
	}
	return nil
}

// validatePrices checks the price overrides that are set: none below 0.
func (o DeploymentOptions) validatePrices() error {
	for _, p := range []struct {
		field string
		v     *float64
	}{
		{"input_cost_per_mtok", o.InputCostPerMTok},
		{"output_cost_per_mtok", o.OutputCostPerMTok},
		{"batch_input_cost_per_mtok", o.BatchInputCostPerMTok},
		{"batch_output_cost_per_mtok", o.BatchOutputCostPerMTok},
	} {
		if p.v != nil && *p.v < 0 {
			return optionError(p.field, "%v < 0", *p.v)
		}
	}
	return nil
}
