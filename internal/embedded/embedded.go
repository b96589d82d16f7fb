// Package embedded runs an in-process nats-server with JetStream, for the
// worker's zero-configuration mode (`make run`) and for tests.
package embedded

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures the embedded server.
type Options struct {
	// Addr is host:port to listen on. Default 127.0.0.1:4222; port -1 picks
	// a free one.
	Addr string
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// SyncAlways fsyncs every write (no loss on power failure, slower).
	SyncAlways bool
	// Logger receives the server's notices and errors; nil discards them.
	Logger *slog.Logger
	// Configure, when set, may change the server options before start
	// (authorization, TLS, ...).
	Configure func(*server.Options)
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded: StoreDir is required")
	}
	host, portStr, err := net.SplitHostPort(cmp.Or(o.Addr, "127.0.0.1:4222"))
	if err != nil {
		return nil, fmt.Errorf("embedded: address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded: port %q: %w", portStr, err)
	}
	opts := &server.Options{
		ServerName: "switchyard-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	if o.Configure != nil {
		o.Configure(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(&logAdapter{l: o.Logger}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded: server on %s not ready in 30s", o.Addr)
	}
	return s, nil
}

type logAdapter struct{ l *slog.Logger }

func (a *logAdapter) Noticef(format string, v ...any) {
	a.l.Debug(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Warnf(format string, v ...any) {
	a.l.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Fatalf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Errorf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Debugf(format string, v ...any) {}
func (a *logAdapter) Tracef(format string, v ...any) {}
