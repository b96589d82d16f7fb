package policy

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

// The error table's default actions (moved here from llm.Kind.Retryable,
// one of the four tables it replaces).
func TestErrorTableRetries(t *testing.T) {
	t.Parallel()
	for k, retry := range map[llm.Kind]bool{
		llm.KindRateLimited: true, llm.KindUnavailable: true, llm.KindTimeout: true, llm.KindConnection: true,
		llm.KindAuth: false, llm.KindBadRequest: false, llm.KindContentPolicy: false, llm.KindContextWindow: false, llm.KindCancelled: false,
	} {
		require.Equal(t, retry, Behaviour(k).Action == ActionRetry, k.String())
	}
	require.Equal(t, Behaviour(llm.KindUnknown), Behaviour(llm.Kind(99)), "an unknown kind is treated as unknown")
}

// spent names its own wire code, as a budget or validation error does.
type spent struct{}

func (spent) Error() string            { return "spent" }
func (spent) WireCode() (string, bool) { return "budget_exceeded", false }

func TestWireCode(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		err       error
		code      string
		retryable bool
	}{
		{&llm.Error{Kind: llm.KindUnavailable}, "provider_unavailable", true},
		{&llm.Error{Kind: llm.KindConnection}, "provider_unavailable", true},
		{fmt.Errorf("job: %w", &llm.Error{Kind: llm.KindBadRequest}), "invalid_request", false},
		{&llm.Error{Kind: llm.KindContextWindow}, "context_window_exceeded", false},
		{cancelled.Err(), "cancelled", false},
		{fmt.Errorf("%w: %q", ErrUnknownGroup, "nope"), "unknown_group", false},
		{fmt.Errorf("job: %w", spent{}), "budget_exceeded", false},
		{errors.New("mystery"), "internal", true},
	}
	for _, tt := range tests {
		code, retryable := WireCode(tt.err)
		require.Equal(t, tt.code, code, "%v", tt.err)
		require.Equal(t, tt.retryable, retryable, "%v", tt.err)
	}
}
