package llm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	rl := &Error{Kind: KindRateLimited, Provider: "openai", Status: 429, Message: "slow down", RetryAfter: 2 * time.Second}
	wrapped := fmt.Errorf("call: %w", rl)
	require.ErrorIs(t, wrapped, ErrRateLimited)
	require.NotErrorIs(t, wrapped, ErrUnavailable)
	require.Equal(t, KindRateLimited, KindOf(wrapped))
	require.Equal(t, 2*time.Second, RetryAfterOf(wrapped))
	require.Equal(t, "openai: rate_limited (HTTP 429): slow down", rl.Error())
	require.False(t, IsMidStream(wrapped))
	require.True(t, IsMidStream(&Error{Kind: KindUnavailable, MidStream: true}))

	cases := []struct {
		err  error
		kind Kind
	}{
		{context.Canceled, KindCancelled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), KindTimeout},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, KindConnection},
		{errors.New("mystery"), KindUnknown},
		{nil, KindUnknown},
	}
	for _, c := range cases {
		require.Equal(t, c.kind, KindOf(c.err), "%v", c.err)
	}
}

func TestMessageText(t *testing.T) {
	t.Parallel()
	m := Message{Parts: []Part{{Type: PartText, Text: "a"}, {Type: PartImage, ImageURL: "https://x"}, {Type: PartText, Text: "b"}}}
	require.Equal(t, "a\nb", m.Text())
	require.True(t, (&Request{Messages: []Message{m}}).HasImages())
	require.Equal(t, Usage{1, 2, 3}, Usage{1, 1, 1}.Add(Usage{0, 1, 2}))
}
