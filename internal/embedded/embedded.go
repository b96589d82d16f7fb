// Package embedded runs an in-process nats-server with JetStream, for the
// worker's zero-configuration mode (`make run`) and for tests.
package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
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

// ErrAddrInUse is returned (wrapped) when the address is taken, typically
// by another worker's embedded server.
var ErrAddrInUse = errors.New("address already in use")

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) { return StartContext(context.Background(), o) }

// StartContext is Start, giving up when ctx ends. A taken address fails at
// once with ErrAddrInUse instead of waiting out the readiness timeout.
func StartContext(ctx context.Context, o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded: StoreDir is required")
	}
	addr := cmp.Or(o.Addr, "127.0.0.1:4222")
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded: address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded: port %q: %w", portStr, err)
	}
	if port > 0 {
		// nats-server reports a failed listen only to its logger and
		// keeps running; try the address first for a plain answer.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("embedded: %s: %w", addr, ErrAddrInUse)
			}
			return nil, fmt.Errorf("embedded: %s: %w", addr, err)
		}
		_ = ln.Close()
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
	// The logger also catches a fatal error (the address taken between the
	// check above and the server's listen), so that the wait below ends.
	fatal := make(chan string, 1)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.SetLoggerV2(&logAdapter{l: log, fatal: fatal}, false, false, false)
	go s.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !s.ReadyForConnections(100 * time.Millisecond) {
		select {
		case msg := <-fatal:
			s.Shutdown()
			if strings.Contains(msg, "address already in use") {
				return nil, fmt.Errorf("embedded: %s: %w", addr, ErrAddrInUse)
			}
			return nil, fmt.Errorf("embedded: %s", msg)
		case <-ctx.Done():
			s.Shutdown()
			s.WaitForShutdown()
			return nil, fmt.Errorf("embedded: %w", ctx.Err())
		default:
		}
		if time.Now().After(deadline) {
			s.Shutdown()
			return nil, fmt.Errorf("embedded: server on %s not ready in 30s", addr)
		}
	}
	return s, nil
}

type logAdapter struct {
	l     *slog.Logger
	fatal chan<- string // receives the first fatal message; never blocks
}

func (a *logAdapter) Noticef(format string, v ...any) {
	a.l.Debug(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Warnf(format string, v ...any) {
	a.l.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.l.Error(msg, "component", "nats-server")
	select {
	case a.fatal <- msg:
	default:
	}
}
func (a *logAdapter) Errorf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (a *logAdapter) Debugf(format string, v ...any) {}
func (a *logAdapter) Tracef(format string, v ...any) {}
