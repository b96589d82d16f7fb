package llm

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ClassifyTransport sets e's Kind and Message for a failure below the HTTP
// layer (dial, TLS, reset, cut stream, caller's context), for provider
// packages. e.MidStream must already say whether output had been streamed: a
// connection broken after output is a stream cut short (KindUnavailable).
// The message never contains the request URL.
func ClassifyTransport(ctx context.Context, e *Error, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || (ctx != nil && errors.Is(ctx.Err(), context.Canceled)):
		e.Kind = KindCancelled
		e.Message = "request cancelled"
	case errors.Is(err, context.DeadlineExceeded) || (ctx != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)):
		e.Kind = KindTimeout
		e.Message = "deadline exceeded"
	case e.MidStream:
		e.Kind = KindUnavailable
		e.Message = "stream interrupted: " + TransportText(err)
	case errors.As(err, &ne) && ne.Timeout():
		e.Kind = KindTimeout
		e.Message = TransportText(err)
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
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// RetryAfter reads how long a vendor asks to wait from its response
// headers: retry-after-ms (milliseconds, OpenAI's and Anthropic's), then
// retry-after in seconds or as an HTTP date (relative to now, the caller's
// clock). It returns 0 when there is none.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("retry-after"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
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

// Scrubbed wraps a cause so that its text never carries a secret while
// errors.Is and errors.As still reach it.
type Scrubbed struct {
	Err     error
	Secrets []string
}

func (s Scrubbed) Error() string { return Scrub(s.Err.Error(), s.Secrets) }

// Unwrap returns the cause.
func (s Scrubbed) Unwrap() error { return s.Err }
