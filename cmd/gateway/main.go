// Command gateway is Switchyard's HTTP front door: OpenAI's chat completions
// and Batch API, Anthropic's Messages API and Switchyard's async jobs, turned
// into jobs on the fleet's queue. It is stateless (everything it must keep
// is in NATS), so any number can run behind a load balancer.
//
// Settings come from the environment (gateway --help lists them;
// docs/http.md is the reference of the API). It reads the model file
// (SWITCHYARD_CONFIG) for the model names, aliases and API keys, but never
// the providers' secrets: it does not call providers.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/gatewayrun"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// defaultAddr is where a gateway process listens without SWITCHYARD_HTTP_ADDR.
const defaultAddr = "127.0.0.1:8080"

func main() {
	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { usage(os.Stdout) }
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "gateway: %v: settings come from the environment (gateway --help lists them)\n", err)
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gateway takes no arguments, got %q: settings come from the environment\n", strings.Join(fs.Args(), " "))
		os.Exit(2)
	}
	env, err := config.LoadEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := newLogger(env)
	config.ApplyGCDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env, log); err != nil {
		log.Error("gateway failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, env config.Env, log *slog.Logger) error {
	shutdownTracing, err := telemetry.SetupTracing(ctx, "switchyard-gateway")
	if err != nil {
		return fmt.Errorf("tracing (OTEL_ settings): %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(sctx)
	}()
	models, err := config.LoadGatewayModels(env.ConfigPath)
	if err != nil {
		return err
	}
	url := cmp.Or(env.NATSURL, "nats://"+env.EmbeddedAddr)
	opts, err := env.NATSOptions("switchyard-gateway")
	if err != nil {
		return err
	}
	opts = append(opts,
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", slog.String("url", nc.ConnectedUrlRedacted())) }),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", config.RedactURL(url), err)
	}
	defer nc.Close()
	ln, err := gatewayrun.Listener(cmp.Or(env.HTTPAddr, defaultAddr))
	if err != nil {
		return err
	}
	return gatewayrun.Serve(ctx, env, models, nc, ln, log)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: gateway

Serves the HTTP API (docs/http.md) on SWITCHYARD_HTTP_ADDR (default %s)
and turns requests into jobs on NATS_URL (default the worker's embedded
server at nats://127.0.0.1:4222). SIGTERM lets running requests finish
within SWITCHYARD_SHUTDOWN_GRACE.

environment (the gateway reads these; the worker's others are ignored):
`, defaultAddr)
	for _, v := range config.Variables() {
		if !gatewayVariable(v.Name) {
			continue
		}
		def := ""
		if v.Default != "" {
			def = " (default " + v.Default + ")"
		}
		fmt.Fprintf(w, "  %-32s %s%s\n", v.Name, v.Help, def)
	}
}

// gatewayVariable reports whether the gateway reads a variable.
func gatewayVariable(name string) bool {
	if strings.HasPrefix(name, "NATS_") || strings.HasPrefix(name, "LOG_") {
		return true
	}
	switch name {
	case "SWITCHYARD_CONFIG", "SWITCHYARD_PREFIX", "SWITCHYARD_REPLICAS", "SWITCHYARD_SHUTDOWN_GRACE", "SWITCHYARD_EMBEDDED_ADDR",
		"SWITCHYARD_HTTP_ADDR", "SWITCHYARD_HTTP_MAX_BODY", "SWITCHYARD_HTTP_WRITE_TIMEOUT", "SWITCHYARD_REQUIRE_API_KEYS", "SWITCHYARD_WEBHOOK_ALLOW_PRIVATE":
		return true
	}
	return false
}

func newLogger(env config.Env) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(env.LogLevel))
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	if env.LogFormat == "json" || env.LogFormat == "auto" && !tty {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewTextHandler(os.Stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !tty}))
}
