package llm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// RetryAfter is the one reading of the vendors' wait headers; an HTTP date
// is relative to the caller's clock (one of the two copies it replaces read
// the wall clock).
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"7"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{http.Header{"Retry-After": {" 0.5 "}}, 500 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(30 * time.Second).Format(http.TimeFormat)}}, 30 * time.Second},
		{http.Header{"Retry-After": {now.Add(-time.Second).Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{}, 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, RetryAfter(tt.h, now), "%v", tt.h)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyTransport(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errors.New("connection refused"))}
	tests := []struct {
		ctx  context.Context
		err  error
		mid  bool
		kind Kind
	}{
		{context.Background(), context.Canceled, false, KindCancelled},
		{cancelled, dial, false, KindCancelled}, // the caller's end decides
		{context.Background(), fmt.Errorf("x: %w", context.DeadlineExceeded), false, KindTimeout},
		{context.Background(), &net.OpError{Op: "read", Err: timeoutErr{}}, false, KindTimeout},
		{context.Background(), dial, false, KindConnection},
		{context.Background(), net.ErrClosed, false, KindConnection},
		{context.Background(), dial, true, KindUnavailable},
		{context.Background(), errors.New("mystery"), false, KindUnknown},
	}
	for _, tt := range tests {
		e := &Error{MidStream: tt.mid}
		ClassifyTransport(tt.ctx, e, tt.err)
		require.Equal(t, tt.kind, e.Kind, "%v", tt.err)
		require.NotEmpty(t, e.Message)
	}
}
