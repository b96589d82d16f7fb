package llm

import "context"

// Provider calls one vendor's chat API. Implementations are safe for
// concurrent use and do not retry: the policy layer owns retries, so SDK
// retries are switched off.
type Provider interface {
	// Stream starts a streamed completion. An error here means the call
	// failed before any output (and is an *Error); a failure after that is
	// reported by Stream.Err. ctx bounds the whole stream.
	Stream(ctx context.Context, req *Request) (Stream, error)
}

// Stream is a pull iterator over the chunks of one answer. It is not safe for
// concurrent use. Close releases the connection; it is safe to call more than
// once and after the stream ended.
type Stream interface {
	Next() bool
	Current() Chunk
	Err() error
	Close() error
}

// Namer is implemented by providers that can name their vendor (for errors
// and metrics), e.g. "openai", "anthropic".
type Namer interface {
	ProviderName() string
}

// Capabilities describes what a model can take. Zero means unknown.
type Capabilities struct {
	Tools         bool
	Vision        bool
	JSONSchema    bool // native structured output
	ContextWindow int  // tokens
	MaxOutput     int  // tokens
}

// CapabilityReporter is implemented by providers that know what a model
// supports. The router uses it (with the model catalogue) to skip deployments
// that cannot serve a request.
type CapabilityReporter interface {
	Capabilities(model string) Capabilities
}
