package mock

import (
	"cmp"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/pkg/llm"
)

// Config configures a Provider. The zero value answers 20 generated words at
// once with no faults. Field names are the YAML keys of the model config file.
type Config struct {
	// Text is a fixed answer, streamed as one chunk per word. Empty: Tokens
	// words are generated from Seed and a hash of the prompt.
	Text string `yaml:"text"`
	// Tokens is the number of generated words (default 20).
	Tokens int `yaml:"tokens"`
	// Seed seeds the generated words and the fault draws (default 0).
	Seed int64 `yaml:"seed"`

	// TTFT is the delay before the first chunk (0: none).
	TTFT time.Duration `yaml:"ttft"`
	// ChunkDelay is the delay between chunks (0: none). A cancelled context
	// ends the stream within one chunk.
	ChunkDelay time.Duration `yaml:"chunk_delay"`

	// ErrorRate maps an llm.Kind name (rate_limited, unavailable, timeout,
	// connection, context_window_exceeded, content_policy, auth, bad_request)
	// to the probability that a call fails with it before any output.
	ErrorRate map[string]float64 `yaml:"error_rate"`
	// RetryAfter is the Retry-After of rate_limited errors (0: none).
	RetryAfter time.Duration `yaml:"retry_after"`
	// ErrorDelay is how long a call that fails by ErrorRate takes to fail
	// (0: at once), as a vendor's 5xx comes after a while; a cancelled
	// context ends the wait.
	ErrorDelay time.Duration `yaml:"error_delay"`
	// HangRate is the probability that a call blocks until its context is done.
	HangRate float64 `yaml:"hang_rate"`
	// FailAfterChunks is how many chunks a mid-stream failure streams before
	// it fails (default 3).
	FailAfterChunks int `yaml:"fail_after_chunks"`
	// MidStreamRate is the probability that a call fails mid-stream with a
	// MidStream unavailable error after FailAfterChunks chunks.
	MidStreamRate float64 `yaml:"mid_stream_rate"`
	// Script lists per-call steps, consumed in call order; the random faults
	// above apply only once the script is exhausted.
	Script []Step `yaml:"script"`

	// Capacity is a concurrency the mock hides from its callers, as a
	// vendor's deployment has one (0: unlimited). A call that arrives while
	// Capacity calls are in flight (a call is in flight from Stream until
	// its stream ends or is closed) fails at once with rate_limited, HTTP
	// 429, with RetryAfter as its Retry-After.
	Capacity int `yaml:"capacity"`
	// CapacitySlowdown is how much slower the mock gets as it fills: a
	// call's TTFT and chunk delays are multiplied by 1 + CapacitySlowdown ×
	// (calls in flight, itself included) / Capacity, so that a full mock is
	// 1+CapacitySlowdown times slower than an idle one. Default 1 with a
	// Capacity; -1 keeps the delays flat.
	CapacitySlowdown float64 `yaml:"capacity_slowdown"`
	// SlowRate is the probability that a call's first token comes
	// SlowFactor times later than TTFT: a heavy tail of first-token times,
	// drawn per call from Seed like the faults.
	SlowRate float64 `yaml:"slow_rate"`
	// SlowFactor multiplies the TTFT of a slow call (default 10).
	SlowFactor float64 `yaml:"slow_factor"`

	// InvalidJSONFirst makes the first N json_object/json_schema calls answer
	// invalid JSON, alternating between text that is not JSON at all and
	// JSON that violates the schema (a required field missing).
	InvalidJSONFirst int `yaml:"invalid_json_first"`
	// ToolCalls makes the mock call a tool when tool_choice is auto (or
	// unset) and the request has tools. Required and function choices always
	// call a tool, unless the last message is a tool result: that is
	// answered with text, so that a tool loop ends.
	ToolCalls bool `yaml:"tool_calls"`
	// ParallelToolCalls is the number of tool calls per answer (default 1).
	ParallelToolCalls int `yaml:"parallel_tool_calls"`

	// Capabilities declares what the mock's model takes. Nil: the mock
	// reports nothing (the zero llm.Capabilities, "unknown"), so a router
	// asks the model catalogue and assumes an unknown model capable.
	Capabilities *Capabilities `yaml:"capabilities"`
}

// Capabilities declares the mock model's tool and image support. A request
// that uses a capability the mock lacks fails with a bad_request error, as a
// real vendor would answer it.
//
// pkg/llm defines the zero llm.Capabilities as "unknown": a mock declaring
// neither tools nor vision reports it, and a router then treats the model as
// capable (and the mock refuses the call). Use the deployment's own override
// to route around such a mock.
type Capabilities struct {
	Tools  *bool `yaml:"tools"`  // function calling; default true
	Vision *bool `yaml:"vision"` // image parts; default true
}

func (c *Capabilities) tools() bool  { return c == nil || c.Tools == nil || *c.Tools }
func (c *Capabilities) vision() bool { return c == nil || c.Vision == nil || *c.Vision }

// Step is one scripted call. Exactly one of its fields should be set; the zero
// Step (or OK) is a normal answer.
type Step struct {
	// Error fails the call before any output with this llm.Kind name.
	Error string `yaml:"error"`
	// RetryAfter is the Retry-After of a rate_limited Error (default: Config.RetryAfter).
	RetryAfter time.Duration `yaml:"retry_after"`
	// Hang blocks the call until its context is done.
	Hang bool `yaml:"hang"`
	// FailAfter streams this many chunks, then fails mid-stream.
	FailAfter int `yaml:"fail_after"`
	// OK answers normally.
	OK bool `yaml:"ok"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Tokens = cmp.Or(c.Tokens, 20)
	c.FailAfterChunks = cmp.Or(c.FailAfterChunks, 3)
	c.ParallelToolCalls = cmp.Or(c.ParallelToolCalls, 1)
	c.SlowFactor = cmp.Or(c.SlowFactor, 10)
	if c.Capacity > 0 {
		c.CapacitySlowdown = cmp.Or(c.CapacitySlowdown, 1)
	}
	if c.CapacitySlowdown < 0 {
		c.CapacitySlowdown = 0
	}
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	for k, p := range c.ErrorRate {
		if _, ok := kindByName(k); !ok {
			return fmt.Errorf("mock: error_rate: unknown kind %q", k)
		}
		if p < 0 || p > 1 {
			return fmt.Errorf("mock: error_rate.%s: %v not in [0,1]", k, p)
		}
	}
	for name, p := range map[string]float64{"hang_rate": c.HangRate, "mid_stream_rate": c.MidStreamRate, "slow_rate": c.SlowRate} {
		if p < 0 || p > 1 {
			return fmt.Errorf("mock: %s: %v not in [0,1]", name, p)
		}
	}
	if c.Tokens < 0 || c.FailAfterChunks < 0 || c.ParallelToolCalls < 0 || c.InvalidJSONFirst < 0 {
		return fmt.Errorf("mock: tokens, fail_after_chunks, parallel_tool_calls and invalid_json_first must not be negative")
	}
	if c.TTFT < 0 || c.ChunkDelay < 0 || c.RetryAfter < 0 || c.ErrorDelay < 0 {
		return fmt.Errorf("mock: ttft, chunk_delay, retry_after and error_delay must not be negative")
	}
	switch {
	case c.Capacity < 0:
		return fmt.Errorf("mock: capacity: %d < 0", c.Capacity)
	case c.CapacitySlowdown < 0 && c.CapacitySlowdown != -1:
		return fmt.Errorf("mock: capacity_slowdown: %v (want >= 0, or -1 for flat delays)", c.CapacitySlowdown)
	case c.SlowFactor < 0 || c.SlowFactor != 0 && c.SlowFactor < 1:
		return fmt.Errorf("mock: slow_factor: %v < 1", c.SlowFactor)
	}
	for i, s := range c.Script {
		if s.Error != "" {
			if _, ok := kindByName(s.Error); !ok {
				return fmt.Errorf("mock: script[%d].error: unknown kind %q", i, s.Error)
			}
		}
	}
	return nil
}

// faultKinds lists the kinds error_rate may name, in the fixed order in which
// the per-call draw is compared against their probabilities.
var faultKinds = []llm.Kind{
	llm.KindRateLimited, llm.KindUnavailable, llm.KindTimeout, llm.KindConnection,
	llm.KindContextWindow, llm.KindContentPolicy, llm.KindAuth, llm.KindBadRequest,
}

func kindByName(name string) (llm.Kind, bool) {
	for _, k := range faultKinds {
		if k.String() == name {
			return k, true
		}
	}
	return llm.KindUnknown, false
}

func statusOf(k llm.Kind) int {
	switch k {
	case llm.KindRateLimited:
		return 429
	case llm.KindUnavailable:
		return 503
	case llm.KindTimeout:
		return 504
	case llm.KindAuth:
		return 401
	case llm.KindBadRequest, llm.KindContextWindow, llm.KindContentPolicy:
		return 400
	}
	return 0
}
