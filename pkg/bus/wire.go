package bus

import "time"

// Request is a chat job as producers publish it to llm.req.<group>. Field
// names follow OpenAI's chat completions so that any SDK's request body can be
// sent as is; unknown fields are ignored.
type Request struct {
	ID          string    `json:"id,omitempty" msgpack:"id,omitempty"`
	Model       string    `json:"model,omitempty" msgpack:"model,omitempty"` // informational; the subject names the group
	Messages    []Message `json:"messages" msgpack:"messages"`
	Temperature *float64  `json:"temperature,omitempty" msgpack:"temperature,omitempty"`
	TopP        *float64  `json:"top_p,omitempty" msgpack:"top_p,omitempty"`
	MaxTokens   *int      `json:"max_tokens,omitempty" msgpack:"max_tokens,omitempty"`
	// MaxCompletionTokens is OpenAI's newer name for MaxTokens; either works.
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty" msgpack:"max_completion_tokens,omitempty"`
	Stop                Strings         `json:"stop,omitempty" msgpack:"stop,omitempty"`
	Seed                *int64          `json:"seed,omitempty" msgpack:"seed,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty" msgpack:"response_format,omitempty"`
	Tools               []Tool          `json:"tools,omitempty" msgpack:"tools,omitempty"`
	ToolChoice          *ToolChoice     `json:"tool_choice,omitempty" msgpack:"tool_choice,omitempty"`
	// Stream asks for chunk events; default true. With false only the
	// result is published.
	Stream *bool `json:"stream,omitempty" msgpack:"stream,omitempty"`
	// Reply names the reply prefix (default llm.res.<id>). The Llm-Reply
	// header takes precedence.
	Reply  string `json:"reply,omitempty" msgpack:"reply,omitempty"`
	Tenant string `json:"tenant,omitempty" msgpack:"tenant,omitempty"`
	// Priority is the job's class: interactive, default or batch. The
	// class is the request subject's last token (Subjects.RequestFor), so
	// Client.Publish chooses the subject from it; a worker answers
	// invalid_request to a job whose body names another class than its
	// subject. Empty: the subject's class.
	Priority Priority          `json:"priority,omitempty" msgpack:"priority,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty" msgpack:"metadata,omitempty"`
	// Deadline (RFC 3339) or TimeoutMS (from the time the job was
	// published) bound the job; a job past its deadline is not sent to a
	// provider. Neither may be more than MaxTimeout after publication.
	Deadline  string `json:"deadline,omitempty" msgpack:"deadline,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty" msgpack:"timeout_ms,omitempty"`
	// ValidationRetries bounds the re-asks of a structured-output request
	// whose answer does not validate.
	ValidationRetries *int `json:"validation_retries,omitempty" msgpack:"validation_retries,omitempty"`
	// Cache false keeps the job away from its group's response cache: it
	// is neither answered from it nor stored in it. Default: the group's
	// setting.
	Cache *bool `json:"cache,omitempty" msgpack:"cache,omitempty"`
	// MaxCostUSD, when above 0, bounds what the job may cost: deployments
	// whose worst case for it is higher are skipped, and the job fails with
	// budget_exceeded, before any provider call, when none is left.
	MaxCostUSD float64 `json:"max_cost_usd,omitempty" msgpack:"max_cost_usd,omitempty"`
	// ServiceTier "batch" asks for the group's vendor batch API (when the
	// group sets vendor_batch) whatever the job's class and deadline: the
	// answer comes within the vendor's window at its batch price. Other
	// values are the live path's.
	ServiceTier string `json:"service_tier,omitempty" msgpack:"service_tier,omitempty"`
}

// ServiceTierBatch is the ServiceTier that asks for the vendor's batch API.
const ServiceTierBatch = "batch"

// MaxTimeout is the longest a job may be given, by timeout_ms or deadline,
// counted from its publication: 7 days, longer than results are kept, so
// that a larger value is a mistake (or an overflow) rather than a wish.
const MaxTimeout = 7 * 24 * time.Hour

// Streaming reports whether the requester wants chunk events.
func (r *Request) Streaming() bool { return r.Stream == nil || *r.Stream }

// Message is one turn of the conversation.
type Message struct {
	Role       string     `json:"role" msgpack:"role"`
	Content    Content    `json:"content" msgpack:"content"`
	Name       string     `json:"name,omitempty" msgpack:"name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty" msgpack:"tool_call_id,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty" msgpack:"tool_calls,omitempty"`
}

// Content is a message's content: a string, or an array of parts. Exactly
// one of Text and Parts is used; Parts wins when not nil.
type Content struct {
	Text  string
	Parts []Part
}

// Text returns a Content holding a plain string.
func Text(s string) Content { return Content{Text: s} }

// Part is one piece of multimodal content.
type Part struct {
	Type     string    `json:"type" msgpack:"type"` // "text" or "image_url"
	Text     string    `json:"text,omitempty" msgpack:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty" msgpack:"image_url,omitempty"`
}

// ImageURL is an https URL or a data URL, with OpenAI's detail hint.
type ImageURL struct {
	URL    string `json:"url" msgpack:"url"`
	Detail string `json:"detail,omitempty" msgpack:"detail,omitempty"`
}

// ResponseFormat asks for text, any JSON object, or JSON matching a schema.
type ResponseFormat struct {
	Type       string      `json:"type" msgpack:"type"` // text | json_object | json_schema
	JSONSchema *JSONSchema `json:"json_schema,omitempty" msgpack:"json_schema,omitempty"`
}

// JSONSchema names a schema for json_schema response formats.
type JSONSchema struct {
	Name   string `json:"name,omitempty" msgpack:"name,omitempty"`
	Schema any    `json:"schema" msgpack:"schema"`
	Strict bool   `json:"strict,omitempty" msgpack:"strict,omitempty"`
}

// Tool is a function the model may call (OpenAI's shape).
type Tool struct {
	Type     string       `json:"type" msgpack:"type"` // "function"
	Function FunctionSpec `json:"function" msgpack:"function"`
}

// FunctionSpec describes a callable function; Parameters is a JSON Schema.
type FunctionSpec struct {
	Name        string `json:"name" msgpack:"name"`
	Description string `json:"description,omitempty" msgpack:"description,omitempty"`
	Parameters  any    `json:"parameters,omitempty" msgpack:"parameters,omitempty"`
	Strict      bool   `json:"strict,omitempty" msgpack:"strict,omitempty"`
}

// ToolChoice is "auto", "none", "required", or a named function
// ({"type":"function","function":{"name":...}} on the wire).
type ToolChoice struct {
	Mode     string // auto | none | required | function
	Function string // with Mode "function"
}

// ToolCall is a call made by the model (OpenAI's shape). Arguments is a
// JSON object as a string.
type ToolCall struct {
	ID       string       `json:"id" msgpack:"id"`
	Type     string       `json:"type" msgpack:"type"` // "function"
	Function FunctionCall `json:"function" msgpack:"function"`
}

// FunctionCall names a function and its JSON arguments.
type FunctionCall struct {
	Name      string `json:"name" msgpack:"name"`
	Arguments string `json:"arguments" msgpack:"arguments"`
}

// EventType names an event.
type EventType string

// Event types (DESIGN.md section 2).
const (
	EventStart    EventType = "start"
	EventChunk    EventType = "chunk"
	EventPartial  EventType = "partial"
	EventRestart  EventType = "restart"
	EventRetry    EventType = "retry"
	EventFallback EventType = "fallback"
	EventToolCall EventType = "tool_call"
)

// Event is published on <reply>.events while a job runs. Seq increases by
// one per event of a delivery attempt; Attempt is the JetStream delivery
// count (a redelivered job starts with a restart event). Code is the wire
// error code (an ErrorCode value, the same as in the result's attempts) of
// what caused a retry, fallback or restart, or the worker's own reason for a
// restart ("redelivered", "validation_failed").
type Event struct {
	ID         string         `json:"id" msgpack:"id"`
	Type       EventType      `json:"type" msgpack:"type"`
	Seq        uint64         `json:"seq" msgpack:"seq"`
	Attempt    int            `json:"attempt" msgpack:"attempt"`
	Deployment string         `json:"deployment,omitempty" msgpack:"deployment,omitempty"`
	Group      string         `json:"group,omitempty" msgpack:"group,omitempty"` // fallback: the group the job moves on to
	Delta      string         `json:"delta,omitempty" msgpack:"delta,omitempty"`
	Partial    any            `json:"partial,omitempty" msgpack:"partial,omitempty"`
	ToolCall   *ToolCallDelta `json:"tool_call,omitempty" msgpack:"tool_call,omitempty"`
	Code       string         `json:"code,omitempty" msgpack:"code,omitempty"`
	Reason     string         `json:"reason,omitempty" msgpack:"reason,omitempty"`
}

// ToolCallDelta is a fragment of a streamed tool call.
type ToolCallDelta struct {
	Index     int    `json:"index" msgpack:"index"`
	ID        string `json:"id,omitempty" msgpack:"id,omitempty"`
	Name      string `json:"name,omitempty" msgpack:"name,omitempty"`
	Arguments string `json:"arguments,omitempty" msgpack:"arguments,omitempty"`
}

// Status of a result.
type Status string

// Result statuses.
const (
	StatusOK    Status = "ok"
	StatusError Status = "error"
)

// Result is published exactly once per job on <reply>.result.
type Result struct {
	ID           string     `json:"id" msgpack:"id"`
	Status       Status     `json:"status" msgpack:"status"`
	Text         string     `json:"text,omitempty" msgpack:"text,omitempty"`
	JSON         any        `json:"json,omitempty" msgpack:"json,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty" msgpack:"tool_calls,omitempty"`
	FinishReason string     `json:"finish_reason,omitempty" msgpack:"finish_reason,omitempty"`
	Usage        *Usage     `json:"usage,omitempty" msgpack:"usage,omitempty"`
	CostUSD      float64    `json:"cost_usd,omitempty" msgpack:"cost_usd,omitempty"`
	// Cached says the answer came from the group's response cache: no
	// provider was called and it cost nothing.
	Cached bool `json:"cached,omitempty" msgpack:"cached,omitempty"`
	// VendorBatchID is the vendor's id of the batch that answered the job
	// (the group's vendor_batch): it cost the vendor's batch price.
	VendorBatchID string            `json:"vendor_batch_id,omitempty" msgpack:"vendor_batch_id,omitempty"`
	Group         string            `json:"group,omitempty" msgpack:"group,omitempty"`
	Deployment    string            `json:"deployment,omitempty" msgpack:"deployment,omitempty"`
	Model         string            `json:"model,omitempty" msgpack:"model,omitempty"`
	Attempts      []Attempt         `json:"attempts,omitempty" msgpack:"attempts,omitempty"`
	Timings       Timings           `json:"timings" msgpack:"timings"`
	Metadata      map[string]string `json:"metadata,omitempty" msgpack:"metadata,omitempty"`
	Error         *Error            `json:"error,omitempty" msgpack:"error,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens" msgpack:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens" msgpack:"completion_tokens"`
	TotalTokens      int `json:"total_tokens" msgpack:"total_tokens"`
}

// Attempt is one call to one deployment (or one validation try).
type Attempt struct {
	Deployment string `json:"deployment" msgpack:"deployment"`
	ErrorCode  string `json:"error_code,omitempty" msgpack:"error_code,omitempty"`
	Message    string `json:"message,omitempty" msgpack:"message,omitempty"`
	DurationMS int64  `json:"duration_ms" msgpack:"duration_ms"`
	// Hedge marks an attempt started beside another one because that
	// one's first token was late (the group's hedge).
	Hedge bool `json:"hedge,omitempty" msgpack:"hedge,omitempty"`
	// Race is "won" or "cancelled" for the attempts of a try that was
	// hedged: the first to produce a token won, the others were cancelled.
	Race string `json:"race,omitempty" msgpack:"race,omitempty"`
	// CostUSD is a cancelled attempt's estimated cost, included in the
	// result's cost_usd.
	CostUSD float64 `json:"cost_usd,omitempty" msgpack:"cost_usd,omitempty"`
}

// Timings of a job, in milliseconds: QueuedMS from publication to pick-up,
// TTFTMS from pick-up to the first chunk, TotalMS from pick-up to the result.
type Timings struct {
	QueuedMS int64 `json:"queued_ms" msgpack:"queued_ms"`
	TTFTMS   int64 `json:"ttft_ms" msgpack:"ttft_ms"`
	TotalMS  int64 `json:"total_ms" msgpack:"total_ms"`
}

// ErrorCode is a stable, machine-readable failure class.
type ErrorCode string

// Error codes of the wire contract.
const (
	CodeInvalidRequest        ErrorCode = "invalid_request"
	CodeUnknownGroup          ErrorCode = "unknown_group"
	CodeTooLarge              ErrorCode = "too_large"
	CodeContextWindowExceeded ErrorCode = "context_window_exceeded"
	CodeContentPolicy         ErrorCode = "content_policy"
	CodeRateLimited           ErrorCode = "rate_limited"
	CodeProviderUnavailable   ErrorCode = "provider_unavailable"
	CodeTimeout               ErrorCode = "timeout"
	CodeDeadlineExceeded      ErrorCode = "deadline_exceeded"
	CodeValidationFailed      ErrorCode = "validation_failed"
	CodeAuth                  ErrorCode = "auth"
	CodeBudgetExceeded        ErrorCode = "budget_exceeded"
	CodeCancelled             ErrorCode = "cancelled"
	CodeInternal              ErrorCode = "internal"
)

// Error describes why a job failed. It implements error so that the Go
// client can return it.
type Error struct {
	Code      ErrorCode `json:"code" msgpack:"code"`
	Message   string    `json:"message" msgpack:"message"`
	Retryable bool      `json:"retryable" msgpack:"retryable"`
	// Details carries extra structured information, e.g. the validation
	// errors and raw text of a validation_failed result.
	Details any `json:"details,omitempty" msgpack:"details,omitempty"`
	// RetryAfterMS, when > 0, is how long to wait before publishing the
	// job again, in milliseconds: a rate_limited or provider_unavailable
	// result's, from the provider's Retry-After (or the router's own wait
	// for a deployment's rpm/tpm window). 0: no hint.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty" msgpack:"retry_after_ms,omitempty"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// WireCode returns the error's code and whether a later run may succeed
// (it implements policy.WireCoder, so that a failure an executor returns
// as a *Error, such as a spent budget, keeps its code).
func (e *Error) WireCode() (string, bool) { return string(e.Code), e.Retryable }

// Is matches another *Error with the same Code, so that
// errors.Is(err, &bus.Error{Code: bus.CodeCancelled}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}
