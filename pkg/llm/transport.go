package llm

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
)

// ClassifyTransport sets e's Kind and Message for a failure below the HTTP
// layer (dial, TLS, reset, cut stream, caller's context), for provider
// packages. e.MidStream must already say whether output had been streamed: a
// connection broken after output is a stream cut short (KindUnavailable).
// The message never contains the request URL.
func ClassifyTransport(ctx context.Context, e *Error, err error) {
	switch {
	case errors.Is(err, context.Canceled):
		e.Kind = KindCancelled
		e.Message = "request cancelled"
	case errors.Is(err, context.DeadlineExceeded) || (ctx != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)):
		e.Kind = KindTimeout
		e.Message = "deadline exceeded"
	case e.MidStream:
		e.Kind = KindUnavailable
		e.Message = "stream interrupted: " + TransportText(err)
	case isNetErr(err):
		e.Kind = KindConnection
		e.Message = TransportText(err)
	default:
		e.Kind = KindUnknown
		e.Message = TransportText(err)
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// TransportText describes a transport failure without its URL (which may
// carry a key in its query, as Gemini's does).
func TransportText(err error) string {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Op + ": " + ne.Err.Error()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "connection closed unexpectedly"
	}
	// *url.Error's text repeats the URL; its cause is what went wrong.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// Scrub replaces every secret in s with "[redacted]", for provider packages
// building error text from vendor bodies or transport errors that may echo
// a key.
func Scrub(s string, secrets []string) string {
	for _, k := range secrets {
		if k != "" {
			s = strings.ReplaceAll(s, k, "[redacted]")
		}
	}
	return s
}

// Scrubbed wraps a cause so that its text never carries a secret while
// errors.Is and errors.As still reach it.
type Scrubbed struct {
	Err     error
	Secrets []string
}

func (s Scrubbed) Error() string { return Scrub(s.Err.Error(), s.Secrets) }

// Unwrap returns the cause.
func (s Scrubbed) Unwrap() error { return s.Err }
