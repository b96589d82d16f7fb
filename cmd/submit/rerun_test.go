package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// TestBatchRefusesAGroupNoWorkerServes: like a single prompt, a batch naming
// a group no worker serves fails at once, before any line is sent (it used
// to wait for the fleet's unknown_group answers, and re-runs read them back).
func TestBatchRefusesAGroupNoWorkerServes(t *testing.T) {
	f := startFleet(t, map[string]mock.Config{"demo": {Tokens: 3}})
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(batchLine("a", "demo", "")+batchLine("b", "ghost", "")), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, stderr, err := submitCLI(ctx, "batch", in, "-o", out)
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.ErrorContains(t, err, `no worker serves group "ghost" (served: demo)`)
	require.Zero(t, f.requestsEverPublished(t), "nothing was sent")
}

// TestBatchReRunsReadBackOnlySettledLines runs one batch file five times
// through the CLI: lines that failed for the fleet's reasons run again, lines
// that ended ok or failed for their request's reasons are read back, and
// --retry-failed and another --group run them on purpose.
func TestBatchReRunsReadBackOnlySettledLines(t *testing.T) {
	f := startFleet(t, map[string]mock.Config{
		"demo":  {Tokens: 3, Script: []mock.Step{{Error: "unavailable"}, {Error: "unavailable"}}},
		"other": {Tokens: 3},
	})
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	lines := batchLine("a", "demo", "") + batchLine("b", "demo", "") + batchLine("c", "demo", `,"temperature":5`)
	require.NoError(t, os.WriteFile(in, []byte(lines), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	batch := func(extra ...string) (string, error) {
		_, stderr, err := submitCLI(ctx, append([]string{"batch", in, "-o", out, "--concurrency", "1"}, extra...)...)
		return stderr, err
	}

	// 1: a and b fail provider_unavailable (retryable), c invalid_request.
	stderr, err := batch()
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.Contains(t, stderr, "3 of 3 lines: 0 ok, 3 failed (0 invalid), 0 read back from earlier runs")
	require.EqualValues(t, 2, f.mocks["demo"].Calls())

	// 2: a and b run again and succeed; c's own error is read back.
	stderr, err = batch()
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.Contains(t, stderr, "3 of 3 lines: 2 ok, 1 failed (0 invalid), 1 read back from earlier runs")
	require.Contains(t, stderr, "2 run again after failing")
	require.EqualValues(t, 4, f.mocks["demo"].Calls())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(b), "\n"))
	require.Contains(t, string(b), "temperature: 5 is outside [0, 2]")

	// 3: everything is read back; no provider call.
	stderr, err = batch()
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.Contains(t, stderr, "2 ok, 1 failed (0 invalid), 3 read back from earlier runs")
	require.Contains(t, stderr, "0 run again after failing")
	require.EqualValues(t, 4, f.mocks["demo"].Calls())

	// 4: --retry-failed runs c again (the worker refuses it again, before
	// any provider call); a and b are read back.
	stderr, err = batch("--retry-failed")
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.Contains(t, stderr, "2 ok, 1 failed (0 invalid), 2 read back from earlier runs")
	require.Contains(t, stderr, "1 run again after failing")
	require.EqualValues(t, 4, f.mocks["demo"].Calls())

	// 5: another group is another batch: nothing is read back.
	stderr, err = batch("-g", "other")
	require.Equal(t, 1, exitCode(t, err), stderr)
	require.Contains(t, stderr, "2 ok, 1 failed (0 invalid), 0 read back from earlier runs")
	require.Contains(t, stderr, "0 run again after failing")
	require.EqualValues(t, 2, f.mocks["other"].Calls())
}
