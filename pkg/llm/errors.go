package llm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Kind classifies a provider failure. Retry, fallback, the breaker and the
// wire error code are decided from the Kind (in pkg/policy's error table),
// never from an error's text.
type Kind int

// Error kinds.
const (
	KindUnknown       Kind = iota
	KindRateLimited        // 429: slow down, maybe with RetryAfter
	KindContextWindow      // the prompt (plus max tokens) does not fit the model
	KindContentPolicy      // refused or filtered by the vendor's safety system
	KindAuth               // 401/403: bad or missing credentials
	KindBadRequest         // 400/404/422: the request is wrong for this vendor
	KindUnavailable        // 5xx, 529 overloaded, stream ended without its end marker
	KindTimeout            // no first token, idle stream or total time exceeded
	KindConnection         // dial, TLS, reset before any response
	KindCancelled          // the caller's context was cancelled
)

var kindNames = [...]string{
	KindUnknown:       "unknown",
	KindRateLimited:   "rate_limited",
	KindContextWindow: "context_window_exceeded",
	KindContentPolicy: "content_policy",
	KindAuth:          "auth",
	KindBadRequest:    "bad_request",
	KindUnavailable:   "unavailable",
	KindTimeout:       "timeout",
	KindConnection:    "connection",
	KindCancelled:     "cancelled",
}

// String returns the kind's stable name.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Sentinels, one per kind, for errors.Is:
//
//	errors.Is(err, llm.ErrRateLimited)
//
// matches any *Error of that kind.
var (
	ErrRateLimited   = &Error{Kind: KindRateLimited}
	ErrContextWindow = &Error{Kind: KindContextWindow}
	ErrContentPolicy = &Error{Kind: KindContentPolicy}
	ErrAuth          = &Error{Kind: KindAuth}
	ErrBadRequest    = &Error{Kind: KindBadRequest}
	ErrUnavailable   = &Error{Kind: KindUnavailable}
	ErrTimeout       = &Error{Kind: KindTimeout}
	ErrConnection    = &Error{Kind: KindConnection}
	ErrCancelled     = &Error{Kind: KindCancelled}
)

// Error is a classified provider failure.
//
// Message is safe to show to the requester: providers build it from the
// vendor's error message, never from request headers, so it holds no
// credentials.
type Error struct {
	Kind       Kind
	Provider   string // "openai", "anthropic", ...
	Status     int    // HTTP status, 0 when there was none
	Code       string // the vendor's error code or type, if any
	Message    string
	RetryAfter time.Duration // from retry-after / retry-after-ms / the body; 0 if none
	// MidStream is set when the failure came after output was streamed.
	MidStream bool
	Err       error // the cause, if any
}

func (e *Error) Error() string {
	s := e.Kind.String()
	if e.Provider != "" {
		s = e.Provider + ": " + s
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.MidStream {
		s += " mid-stream"
	}
	if e.Message != "" {
		s += ": " + e.Message
	} else if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error of the same Kind, so the sentinels work with
// errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Status == 0 && t.Message == "" && t.Err == nil
}

// KindOf returns the Kind of err: that of the first *Error in its chain, else
// KindCancelled for context.Canceled, KindTimeout for
// context.DeadlineExceeded, KindConnection for network errors, else
// KindUnknown.
func KindOf(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCancelled
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return KindTimeout
		}
		return KindConnection
	}
	return KindUnknown
}

// RetryAfterOf returns the RetryAfter of the first *Error in err's chain.
func RetryAfterOf(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// IsMidStream reports whether err is a failure after output was streamed.
func IsMidStream(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.MidStream
}

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
