// Package apptest runs a whole worker process (internal/app) inside a test:
// embedded or given NATS server, model file, routers, worker, endpoints. It
// is for tests only and must never be imported by non-test code.
package apptest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/config"
)

// Start runs app.Run(env, o) until the test ends and returns once the worker
// consumes, with the NATS URL it uses. A start that fails, and an error of
// Run at the end, fail the test. o.Logger and o.Console default to
// discarding; o.OnReady is still called.
func Start(t testing.TB, env config.Env, o app.Options) (natsURL string) {
	t.Helper()
	url, err := TryStart(t, env, o)
	if err != nil {
		t.Fatalf("worker failed to start: %v", err)
	}
	return url
}

// TryStart is Start, returning Run's error when the worker fails before it
// is ready instead of failing the test.
func TryStart(t testing.TB, env config.Env, o app.Options) (natsURL string, err error) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Console == nil {
		o.Console = io.Discard
	}
	ready := make(chan string, 1)
	onReady := o.OnReady
	o.OnReady = func(url, httpAddr string) {
		if onReady != nil {
			onReady(url, httpAddr)
		}
		ready <- url
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, env, o) }()
	select {
	case natsURL = <-ready:
	case err := <-done:
		cancel()
		return "", err
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("worker not ready in 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop in 30s")
		}
	})
	return natsURL, nil
}
