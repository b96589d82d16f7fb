package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// shortGrace makes submit give up soon after a job's --timeout.
func shortGrace(t *testing.T) {
	t.Helper()
	old := clientGrace
	clientGrace = 500 * time.Millisecond
	t.Cleanup(func() { clientGrace = old })
}

// TestSubmitGivesUpOnAGroupNobodyPulls: a durable consumer left by a worker
// that is gone makes the group look served; submit used to wait forever.
// It now gives up after --timeout plus the grace, naming the group and what
// the job waits for, for a prompt and for a batch line.
func TestSubmitGivesUpOnAGroupNobodyPulls(t *testing.T) {
	shortGrace(t)
	f := startFleet(t, map[string]mock.Config{"demo": {}})
	js, err := jetstream.New(natstest.Connect(t, f.srv))
	require.NoError(t, err)
	_, err = bus.EnsureConsumer(t.Context(), js, bus.Subjects{}, "ghost", bus.ConsumerConfig{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The test's deadline is a minute: the old submit ran into it.
	_, stderr, err := submitCLI(ctx, "-g", "ghost", "--timeout", "1s", "--id", "stale-1", "hello")
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.ErrorContains(t, err, `no result for job stale-1 of group "ghost" within 1.5s (--timeout 1s + 500ms)`)
	require.ErrorContains(t, err, `group "ghost" has a consumer but no worker is pulling from it`)

	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(batchLine("a", "ghost", "")), 0o600))
	_, stderr, err = submitCLI(ctx, "batch", in, "-o", out, "--timeout", "1s")
	require.Equal(t, 1, exitCode(t, err), stderr)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(b), `is a worker of group \"ghost\" pulling?`)
}
