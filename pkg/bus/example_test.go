package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/embedded"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Publish a job to the group "demo" and stream its tokens as they come,
// then read its result. Any NATS client can do the same with the subjects
// of docs/wire.md; pkg/bus is the Go client. (The example starts a NATS
// server and a worker of its own, so that it runs anywhere.)
func Example() {
	url, stop := exampleFleet()
	defer stop()

	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	c, err := bus.NewClient(nc)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	job, err := c.Publish(ctx, "demo", &bus.Request{
		ID:       "example-1",
		Messages: []bus.Message{{Role: "user", Content: bus.Text("Tell me about switchyards")}},
	})
	if err != nil {
		panic(err)
	}
	defer job.Close()
	for {
		ev, res, err := job.Next(ctx)
		if err != nil {
			panic(err)
		}
		if res != nil {
			fmt.Printf("\n%s: %s, %d completion tokens\n", res.ID, res.Status, res.Usage.CompletionTokens)
			return
		}
		if ev.Type == bus.EventChunk {
			fmt.Print(ev.Delta)
		}
	}
	// Output:
	// Switchyards sort railway cars onto trains.
	// example-1: ok, 6 completion tokens
}

// exampleFleet starts an embedded NATS server and a worker serving "demo"
// on the mock provider; stop ends both.
func exampleFleet() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "bus-example")
	if err != nil {
		panic(err)
	}
	srv, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:-1", StoreDir: dir})
	if err != nil {
		panic(err)
	}
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{
		{Name: "mock", Model: "mock-1", Provider: mock.New(mock.Config{Text: "Switchyards sort railway cars onto trains."})},
	}}})
	if err != nil {
		panic(err)
	}
	wnc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	w, err := worker.New(wnc, r, worker.Config{Groups: []string{"demo"}, FetchWait: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-w.Ready()
	return srv.ClientURL(), func() {
		cancel()
		<-done
		wnc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
}
