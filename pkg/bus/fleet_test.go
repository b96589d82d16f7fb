package bus_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// fleet is a real in-process NATS server with one worker serving the group
// "demo" on the mock provider.
type fleet struct {
	srv    *server.Server
	nc     *nats.Conn
	client *bus.Client
	mock   *mock.Provider
}

type fleetOpts struct {
	mock    mock.Config
	durable bool                  // store events in LLM_RESULTS
	server  func(*server.Options) // configures the server
	worker  func(*worker.Config)  // configures the worker
}

func startFleet(t *testing.T, o fleetOpts) *fleet {
	t.Helper()
	var conf []func(*server.Options)
	if o.server != nil {
		conf = append(conf, o.server)
	}
	srv := natstest.Server(t, conf...)
	nc := natstest.Connect(t, srv)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	m := mock.New(o.mock)
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: m}}}})
	require.NoError(t, err)
	cfg := worker.Config{
		Groups:       []string{"demo"},
		Streams:      bus.StreamsConfig{DurableEvents: o.durable},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		UnknownSweep: 100 * time.Millisecond,
		UnknownGrace: 10 * time.Millisecond,
	}
	if o.worker != nil {
		o.worker(&cfg)
	}
	w, err := worker.New(natstest.Connect(t, srv), r, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("worker did not stop in 20s")
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready in 10s")
	}
	return &fleet{srv: srv, nc: nc, client: c, mock: m}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func userReq(id, prompt string) *bus.Request {
	return &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt)}}}
}

type workerConfig = worker.Config
