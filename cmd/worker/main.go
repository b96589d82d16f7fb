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
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/embedded"
	"github.com/switchyard/switchyard/internal/fleet"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *check {
		os.Exit(runCheck(ctx, env, os.Stdout))
	}
	if err := run(ctx, env, log); err != nil {
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
	return slog.New(tint.NewHandler(os.Stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !term.IsTerminal(int(os.Stderr.Fd()))}))
}

func run(ctx context.Context, env config.Env, log *slog.Logger) error {
	models, err := config.LoadModels(env.ConfigPath)
	if err != nil {
		return err
	}
	groups, err := models.Build(ctx)
	if err != nil {
		return err
	}
	serve := env.Groups
	if len(serve) == 0 {
		serve = models.GroupNames()
	}

	url := env.NATSURL
	if url == "" {
		dir, _ := filepath.Abs(env.DataDir)
		srv, err := embedded.Start(embedded.Options{Addr: env.EmbeddedAddr, StoreDir: dir, SyncAlways: env.SyncAlways, Logger: log})
		if err != nil {
			return err
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		url = srv.ClientURL()
		log.Info("embedded NATS server started", slog.String("url", url), slog.String("data", dir))
	}
	nopts, err := env.NATSOptions("switchyard-worker")
	if err != nil {
		return err
	}
	nopts = append(nopts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", slog.String("url", nc.ConnectedUrlRedacted())) }),
	)
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	var ropts []policy.Option
	if env.FleetState {
		st, err := fleet.New(ctx, js, fleet.Config{Replicas: env.Replicas})
		if err != nil {
			log.Warn("fleet-wide state unavailable; breakers and limits are local to this worker", slog.Any("error", err))
		} else {
			defer st.Close()
			ropts = append(ropts, policy.WithSharedState(st))
		}
	}
	router, err := policy.NewRouter(groups, ropts...)
	if err != nil {
		return err
	}
	subj := bus.Subjects{Prefix: env.Prefix}
	w, err := worker.New(nc, router, worker.Config{
		Groups:   serve,
		Subjects: subj,
		Streams: bus.StreamsConfig{
			Replicas: env.Replicas, DurableEvents: env.DurableEvents, ResultsMaxAge: env.ResultsMaxAge,
		},
		Consumer:      bus.ConsumerConfig{AckWait: env.AckWait, MaxDeliver: env.MaxDeliver},
		Concurrency:   env.Concurrency,
		ShutdownGrace: env.ShutdownGrace,
		MaxJobTime:    env.MaxJobTime,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	if env.MetricsAddr != "" {
		srv, err := serveHTTP(env.MetricsAddr, nc, w, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	go reloadOnHUP(ctx, env, router, log)
	go func() {
		select {
		case <-w.Ready():
			if env.NATSURL == "" {
				fmt.Fprintf(os.Stderr, "\nSwitchyard is ready. In another terminal, try:\n\n    go run ./cmd/submit \"Tell me about switchyards\"\n\nor publish a JSON job with the nats CLI (see README). Ctrl-C stops the worker.\n\n")
			}
		case <-ctx.Done():
		}
	}()
	return w.Run(ctx)
}

// reloadOnHUP reloads the model file on SIGHUP, keeping the state of
// unchanged deployments. Groups served stay as they were at start.
func reloadOnHUP(ctx context.Context, env config.Env, r *policy.Router, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		models, err := config.LoadModels(env.ConfigPath)
		if err == nil {
			var groups []policy.Group
			if groups, err = models.Build(ctx); err == nil {
				err = r.Reload(groups)
			}
		}
		if err != nil {
			log.Error("config reload failed; keeping the running config", slog.Any("error", err))
			continue
		}
		log.Info("config reloaded", slog.Any("groups", models.GroupNames()))
	}
}

func serveHTTP(addr string, nc *nats.Conn, w *worker.Worker, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n")) //nolint:errcheck // client gone
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		select {
		case <-w.Ready():
		default:
			http.Error(rw, "starting", http.StatusServiceUnavailable)
			return
		}
		if !nc.IsConnected() {
			http.Error(rw, "NATS disconnected", http.StatusServiceUnavailable)
			return
		}
		rw.Write([]byte("ready\n")) //nolint:errcheck // client gone
	})
	registerMetrics(mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", slog.Any("error", err))
		}
	}()
	log.Info("serving /metrics, /healthz, /readyz", slog.String("addr", ln.Addr().String()))
	return srv, nil
}
