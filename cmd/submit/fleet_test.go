package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// fleet is a server and one worker serving groups on mock providers, with
// NATS_URL pointing at it (so its tests cannot be parallel).
type fleet struct {
	srv   *server.Server
	mocks map[string]*mock.Provider
}

// startFleet serves each group of groups with its own mock; a group's
// failures are not retried, so that a scripted error is the job's result.
func startFleet(t *testing.T, groups map[string]mock.Config) *fleet {
	t.Helper()
	f := &fleet{srv: natstest.Server(t), mocks: map[string]*mock.Provider{}}
	var gs []policy.Group
	var names []string
	for name, cfg := range groups {
		f.mocks[name] = mock.New(cfg)
		gs = append(gs, policy.Group{Name: name, Options: policy.GroupOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
			Deployments: []policy.Deployment{{Name: name + "-mock", Model: "mock-1", Provider: f.mocks[name]}}})
		names = append(names, name)
	}
	r, err := policy.NewRouter(gs)
	require.NoError(t, err)
	w, err := worker.New(natstest.Connect(t, f.srv), r, worker.Config{Groups: names, FetchWait: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	t.Setenv("NATS_URL", f.srv.ClientURL())
	return f
}

// requests returns how many messages the request stream holds or ever held.
func (f *fleet) requestsEverPublished(t *testing.T) uint64 {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, f.srv))
	require.NoError(t, err)
	s, err := js.Stream(t.Context(), bus.StreamRequests)
	require.NoError(t, err)
	return s.CachedInfo().State.LastSeq
}

func submitCLI(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errw syncBuf
	err = run(ctx, args, strings.NewReader(""), &out, &errw)
	return out.String(), errw.String(), err
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	ee, ok := errors.AsType[*exitError](err)
	require.True(t, ok, "not an exit status: %v", err)
	return ee.code
}

func batchLine(id, model, extra string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"line %s"}]%s}}`, id, model, id, extra) + "\n"
}
