// Package natstest starts real in-process nats-servers with JetStream for
// tests. It is test support only; nothing in production imports it.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/embedded"
)

// Server starts a JetStream server on a free 127.0.0.1 port with its store in
// a temporary directory, and shuts it down when the test ends.
func Server(t testing.TB, configure ...func(*server.Options)) *server.Server {
	t.Helper()
	o := embedded.Options{Addr: "127.0.0.1:-1", StoreDir: t.TempDir()}
	if len(configure) > 0 {
		o.Configure = func(so *server.Options) {
			for _, c := range configure {
				c(so)
			}
		}
	}
	s, err := embedded.Start(o)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens a connection to s that is closed when the test ends.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
