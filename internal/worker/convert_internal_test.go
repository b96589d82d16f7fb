package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

func TestDeadlineOfRanges(t *testing.T) {
	t.Parallel()
	pub := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		req      bus.Request
		want     time.Time
		errParts []string
	}{
		{name: "none", req: bus.Request{}},
		{name: "timeout", req: bus.Request{TimeoutMS: 1500}, want: pub.Add(1500 * time.Millisecond)},
		{name: "the longest timeout", req: bus.Request{TimeoutMS: bus.MaxTimeout.Milliseconds()}, want: pub.Add(bus.MaxTimeout)},
		{name: "deadline", req: bus.Request{Deadline: "2026-03-01T12:00:05Z"}, want: pub.Add(5 * time.Second)},
		{name: "a past deadline is a deadline (answered deadline_exceeded)", req: bus.Request{Deadline: "2020-01-01T00:00:00Z"}, want: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "the earlier of both", req: bus.Request{Deadline: "2026-03-01T12:00:05Z", TimeoutMS: 1000}, want: pub.Add(time.Second)},
		{name: "negative timeout", req: bus.Request{TimeoutMS: -1}, errParts: []string{"timeout_ms", "-1", "[1, 604800000]"}},
		{name: "timeout over a week", req: bus.Request{TimeoutMS: bus.MaxTimeout.Milliseconds() + 1}, errParts: []string{"timeout_ms", "604800001", "[1, 604800000]", "7 days"}},
		{name: "timeout past time.Duration", req: bus.Request{TimeoutMS: 10_000_000_000_000}, errParts: []string{"timeout_ms", "10000000000000", "[1, 604800000]"}},
		{name: "timeout wrapping into the past", req: bus.Request{TimeoutMS: 18_446_744_073_709}, errParts: []string{"timeout_ms", "[1, 604800000]"}},
		{name: "deadline over a week after publication", req: bus.Request{Deadline: "2026-03-08T12:00:01Z"}, errParts: []string{"deadline", "2026-03-08T12:00:01Z", "7 days", "2026-03-08T12:00:00Z"}},
		{name: "deadline not RFC 3339", req: bus.Request{Deadline: "tomorrow"}, errParts: []string{"deadline", "RFC 3339"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := deadlineOf(&tt.req, pub)
			if tt.errParts != nil {
				require.Error(t, err)
				require.IsType(t, &invalid{}, err)
				for _, p := range tt.errParts {
					require.Contains(t, err.Error(), p)
				}
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
		})
	}
}
