package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// TestCancelSaysWhetherARunningJobStopped: submit cancel exits 0 once the
// cancel is sent (it used to print "nats: context requires a deadline" and
// exit 1) and says whether the worker running the job confirmed.
func TestCancelSaysWhetherARunningJobStopped(t *testing.T) {
	f := startFleet(t, map[string]mock.Config{"slow": {Tokens: 1000, ChunkDelay: 20 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := bus.NewClient(natstest.Connect(t, f.srv))
	require.NoError(t, err)
	job, err := c.Publish(ctx, "slow", &bus.Request{ID: "cancel-me", Messages: []bus.Message{{Role: "user", Content: bus.Text("go on")}}})
	require.NoError(t, err)
	defer job.Close()
	ev, _, err := job.Next(ctx) // running once it streams
	require.NoError(t, err)
	require.NotNil(t, ev)

	// As main runs it: a context without a deadline.
	_, stderr, err := submitCLI(context.Background(), "cancel", "cancel-me")
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, "job cancel-me was running and its worker confirmed that it stops")
	for {
		_, res, err := job.Next(ctx)
		require.NoError(t, err)
		if res != nil {
			require.Equal(t, bus.CodeCancelled, res.Error.Code)
			break
		}
	}

	_, stderr, err = submitCLI(context.Background(), "cancel", "--wait", "200ms", "nobody-runs-this")
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, "no worker running job nobody-runs-this confirmed within 200ms")
}
