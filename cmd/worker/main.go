// Command worker is a Switchyard worker: it consumes chat jobs of its model
// groups from NATS JetStream, calls the providers through the policy router
// and publishes streamed events and one result per job.
//
// Settings come from the environment (see internal/config.Env and the
// README); model groups from the YAML file named by SWITCHYARD_CONFIG. With
// no NATS_URL it runs an embedded NATS server, and with no model file it
// serves a "demo" group on the mock provider, so it runs on a fresh machine
// with no keys.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/config"
)

func main() {
	check := flag.Bool("check", false, "load the config, make one minimal call per deployment, print what works, and exit")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: worker [--check]\n\nSettings come from the environment; see the README.\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	env, err := config.LoadEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := newLogger(env)
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *check {
		os.Exit(runCheck(ctx, env, os.Stdout))
	}
	if err := app.Run(ctx, env, app.Options{Logger: log}); err != nil {
		log.Error("worker failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func newLogger(env config.Env) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(env.LogLevel))
	format := env.LogFormat
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "text"
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewTextHandler(os.Stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !term.IsTerminal(int(os.Stderr.Fd()))}))
}

// tuneGC trades memory for CPU and tail latency unless the operator chose:
// a worker's heap is mostly short-lived per-chunk garbage, so the default
// GOGC=100 collects far more often than it needs to. GOGC=400 with a soft
// memory limit (GOMEMLIMIT, default 1 GiB) keeps collections rare but
// bounded.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
