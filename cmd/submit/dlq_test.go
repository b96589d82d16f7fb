package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// runMockWorker runs a worker of group demo on a mock provider until the
// returned stop is called.
func runMockWorker(t *testing.T, srv *server.Server, consumer bus.ConsumerConfig) (stop func()) {
	t.Helper()
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: mock.New(mock.Config{Tokens: 3})}}}})
	require.NoError(t, err)
	nc := natstest.Connect(t, srv)
	w, err := worker.New(nc, r, worker.Config{Groups: []string{"demo"}, Consumer: consumer, FetchWait: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
			nc.Close()
		}
	}
	t.Cleanup(stop)
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker: %v", err)
	}
	return stop
}

// TestDLQListShowReplayThroughTheCLI: a job dead-lettered by a worker that
// delivers once (MaxDeliver 1) is listed with its reason, shown with its
// request, replayed with `submit dlq replay`, and then has an ok result;
// the dead letter stays, marked replayed.
func TestDLQListShowReplayThroughTheCLI(t *testing.T) {
	srv := natstest.Server(t)
	t.Setenv("NATS_URL", srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc := natstest.Connect(t, srv)
	client, err := bus.NewClient(nc)
	require.NoError(t, err)

	stop := runMockWorker(t, srv, bus.ConsumerConfig{MaxDeliver: 1})
	for _, id := range []string{"cli-1", "cli-2"} {
		res, err := client.Submit(ctx, "demo", &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text("token sk-abcdefghijklmnop1234 please")}}})
		require.Error(t, err)
		require.Equal(t, bus.CodeInternal, res.Error.Code)
	}
	stop()

	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"dlq", "list"}, nil, &out, &errOut))
	require.Contains(t, out.String(), "2 dead letter(s) match of 2")
	require.Regexp(t, `(?m)^internal\s+2$`, out.String(), "the count per reason")
	require.Contains(t, out.String(), "cli-1")

	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "list", "--json", "--job", "cli-1"}, nil, &out, &errOut))
	var l ops.Listing
	require.NoError(t, json.Unmarshal(out.Bytes(), &l))
	require.Len(t, l.Entries, 1)
	seq := strconv.FormatUint(l.Entries[0].Seq, 10)

	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "show", seq}, nil, &out, &errOut))
	require.Contains(t, out.String(), "delivered 1 times")
	require.Contains(t, out.String(), "subject     llm.req.demo")
	require.Contains(t, out.String(), "token [redacted] please", "a key pasted into a prompt is not shown")
	require.NotContains(t, out.String(), "sk-abcdefghijklmnop1234")

	// Mistakes are usage errors (exit 2), and --all needs a confirmation
	// that a test (no terminal) can only give with --yes.
	err = run(ctx, []string{"dlq", "replay"}, nil, &out, &errOut)
	require.ErrorContains(t, err, "needs sequence numbers or --all")
	err = run(ctx, []string{"dlq", "replay", "x1"}, nil, &out, &errOut)
	require.ErrorContains(t, err, `"x1" is not a dead letter's sequence number`)
	err = run(ctx, []string{"dlq", "purge", "--all"}, strings.NewReader("y\n"), &out, &errOut)
	require.ErrorContains(t, err, "confirm with --yes")
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code)

	// The consumer is fixed (default MaxDeliver) and one is replayed.
	runMockWorker(t, srv, bus.ConsumerConfig{})
	out.Reset()
	errOut.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "replay", seq, "--by", "alice"}, nil, &out, &errOut))
	require.Contains(t, out.String(), "replayed as cli-1.replay."+seq)
	require.Contains(t, errOut.String(), "replayed 1 of 1 dead letter(s) (by alice)")
	require.Eventually(t, func() bool {
		r, err := client.StoredResult(ctx, "llm.res.cli-1")
		return err == nil && r != nil && r.Status == bus.StatusOK
	}, 10*time.Second, 20*time.Millisecond)

	// The result is stored before the worker acks the request, and until the
	// ack the job is running (a run in the work queue wins, see ops.Job), so
	// jobs show says ok once the ack has removed the request.
	require.Eventually(t, func() bool {
		out.Reset()
		require.NoError(t, run(ctx, []string{"jobs", "show", "cli-1"}, nil, &out, &errOut))
		return regexp.MustCompile(`(?m)^status\s+ok$`).MatchString(out.String())
	}, 10*time.Second, 20*time.Millisecond, "jobs show cli-1 never said ok")
	require.Contains(t, out.String(), "replayed ")
	require.Contains(t, out.String(), "by alice")

	// Replaying it again is refused; the rest of the reason is replayed.
	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "replay", "--all", "--code", "internal", "--yes", "--by", "bob"}, nil, &out, &errOut))
	require.Contains(t, out.String(), "skipped: replayed already")
	require.Contains(t, out.String(), "cli-2\treplayed as cli-2.replay.")
	require.Eventually(t, func() bool {
		r, err := client.StoredResult(ctx, "llm.res.cli-2")
		return err == nil && r != nil && r.Status == bus.StatusOK
	}, 10*time.Second, 20*time.Millisecond)

	require.Eventually(t, func() bool { // cli-2 is running until its ack, as above
		out.Reset()
		require.NoError(t, run(ctx, []string{"jobs", "ls", "--status", "ok"}, nil, &out, &errOut))
		return strings.Contains(out.String(), "cli-2")
	}, 10*time.Second, 20*time.Millisecond, "jobs ls --status ok never listed cli-2")
	require.Contains(t, out.String(), "cli-1")

	// Purge, confirmed.
	require.NoError(t, run(ctx, []string{"dlq", "purge", "--all", "--yes"}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "purged 2 dead letter(s)")
	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "list"}, nil, &out, &errOut))
	require.Contains(t, out.String(), "0 dead letter(s) match of 0")
}
