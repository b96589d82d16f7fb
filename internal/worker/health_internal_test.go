package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestHealthIgnoresFailuresOlderThanTheLastSuccess: a write that times
// out after the store recovered, having started before another write
// succeeded, made the worker unready, and once the work queue was empty
// no write came to make it ready again. (TestFullDiskLosesNoJob failed
// once on "ready again by itself" after a server restart, where a try
// sent across the reconnect can time out 10s later; it did not fail again
// in six runs, so that this was the cause is likely, not shown.)
func TestHealthIgnoresFailuresOlderThanTheLastSuccess(t *testing.T) {
	t.Parallel()
	var h health
	down := errors.New("insufficient resources")
	first := time.Now()
	h.record(down, first)
	require.ErrorIs(t, h.err, down, "failing")

	slow := time.Now() // a try starts, and hangs
	time.Sleep(time.Millisecond)
	h.record(nil, time.Now()) // another one works
	require.NoError(t, h.err, "recovered")
	h.record(context.DeadlineExceeded, slow) // the hung try times out
	require.NoError(t, h.err, "a failure older than the last success does not count")

	time.Sleep(time.Millisecond)
	h.record(down, time.Now())
	require.ErrorIs(t, h.err, down, "a failure after it does")
	h.record(context.Canceled, time.Now())
	require.ErrorIs(t, h.err, down, "shutting down says nothing of the store")
}

// TestAlreadyAckedIsPermanent: acking a message this client has already
// acked fails in nats.go itself (ErrMsgAlreadyAckd), before anything is
// sent: it says nothing of the store and can never succeed. It was retried
// for the store's whole budget and counted as a failed write, so a worker
// whose messages were acked on pick-up (make chaos-broken's build) was
// never ready after a restart ("/readyz: 503 ... message was already
// acknowledged").
func TestAlreadyAckedIsPermanent(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("ack: %w", jetstream.ErrMsgAlreadyAckd)
	require.True(t, permanent(err), "not retried")
	var h health
	h.record(err, time.Now())
	require.NoError(t, h.err, "not a store failure")
}
