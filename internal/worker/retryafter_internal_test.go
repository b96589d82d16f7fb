package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
)

// TestResultCarriesTheProvidersRetryAfter: a job that ends rate_limited or
// provider_unavailable says in retry_after_ms how long the provider asked
// to wait (wrapped or not, rounded up to a millisecond); another code, or
// a failure without a Retry-After, says nothing.
func TestResultCarriesTheProvidersRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		code bus.ErrorCode
		ms   int64
	}{
		{"rate limited", &llm.Error{Kind: llm.KindRateLimited, RetryAfter: 2500 * time.Millisecond}, bus.CodeRateLimited, 2500},
		{"unavailable, wrapped", fmt.Errorf("group demo: %w", &llm.Error{Kind: llm.KindUnavailable, RetryAfter: 30 * time.Second}), bus.CodeProviderUnavailable, 30000},
		{"under a millisecond", &llm.Error{Kind: llm.KindRateLimited, RetryAfter: 10 * time.Microsecond}, bus.CodeRateLimited, 1},
		{"no hint", &llm.Error{Kind: llm.KindRateLimited}, bus.CodeRateLimited, 0},
		{"another code", &llm.Error{Kind: llm.KindTimeout, RetryAfter: time.Second}, bus.CodeTimeout, 0},
	} {
		res := (&job{ticket: ticket{id: "j"}}).result(nil, tc.err)
		require.Equal(t, bus.StatusError, res.Status, tc.name)
		require.Equal(t, tc.code, res.Error.Code, tc.name)
		require.Equal(t, tc.ms, res.Error.RetryAfterMS, tc.name)
		// A result too large for one message keeps the hint in its summary.
		require.Equal(t, tc.ms, summary(res).Error.RetryAfterMS, tc.name)
	}
}
