package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// startBatchFleet runs a server and a worker for group demo and points NATS_URL
// at it (so the test cannot be parallel).
func startBatchFleet(t *testing.T) {
	t.Helper()
	srv := natstest.Server(t)
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: mock.New(mock.Config{Tokens: 3})}}}})
	require.NoError(t, err)
	w, err := worker.New(natstest.Connect(t, srv), r, worker.Config{Groups: []string{"demo"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready")
	}
	t.Setenv("NATS_URL", srv.ClientURL())
}

func TestSubmitBatchWritesEveryLineAndFailsOnBadOnes(t *testing.T) {
	startBatchFleet(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	out := filepath.Join(dir, "out.jsonl")
	lines := `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"hi"}]}}
{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"ho"}]}}
`
	require.NoError(t, os.WriteFile(in, []byte(lines), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"batch", in, "-o", out}, nil, &stdout, &stderr), stderr.String())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(b), "\n"))
	require.Contains(t, string(b), `"custom_id":"a"`)
	require.Contains(t, string(b), `"custom_id":"b"`)
	require.Contains(t, stderr.String(), "2 ok, 0 failed")

	// A bad line is reported with its number, written, and fails the run.
	require.NoError(t, os.WriteFile(in, []byte(lines+"{oops\n"), 0o600))
	stderr.Reset()
	err = run(ctx, []string{"batch", in, "-o", out}, nil, &stdout, &stderr)
	var ee *exitError
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, 1, ee.code)
	require.Contains(t, stderr.String(), "invalid: line 3:")
	require.Contains(t, stderr.String(), "2 ok, 1 failed (1 invalid), 0 read back")
	b, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(b), "\n"))
}
