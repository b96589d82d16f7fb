// Package app wires a whole worker process from its settings: NATS (or an
// embedded server), the model file, the router with fleet-wide state, the
// consume loop and the HTTP endpoints. cmd/worker is a thin main around it,
// and tests run it in process.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/embedded"
	"github.com/switchyard/switchyard/internal/fleet"
	"github.com/switchyard/switchyard/internal/metrics"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/internal/tenant"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Options are what a process supplies besides its environment.
type Options struct {
	Logger *slog.Logger
	// Console receives the human hint printed once the worker is ready on
	// an embedded server. Default os.Stderr; io.Discard silences it.
	Console io.Writer
	// OnReady, when set, is called once the worker consumes, with the NATS
	// URL it uses and the address of its HTTP endpoints ("" when off).
	OnReady func(natsURL, httpAddr string)
	// OnGateway, when set, is called with the HTTP gateway's address once
	// it listens (SWITCHYARD_HTTP_ADDR).
	OnGateway func(addr string)
}

// Run runs a worker until ctx ends.
func Run(ctx context.Context, env config.Env, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	console := o.Console
	if console == nil {
		console = os.Stderr
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "switchyard-worker")
	if err != nil {
		return fmt.Errorf("tracing (OTEL_ settings): %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(sctx)
	}()
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
		// On a cluster that is still electing leaders the buckets cannot
		// be created at once; retry for a while before going local.
		rp := retrypolicy.NewBuilder[*fleet.State]().
			WithMaxRetries(-1).WithMaxDuration(30*time.Second).
			WithBackoff(200*time.Millisecond, 5*time.Second).Build()
		st, err := failsafe.With(rp).WithContext(ctx).Get(func() (*fleet.State, error) {
			return fleet.New(ctx, js, fleet.Config{Replicas: env.Replicas})
		})
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
	tenants, err := tenantRouters(ctx, models, groups, ropts)
	if err != nil {
		return err
	}
	var budgets worker.Budgets
	if limits := budgetLimits(models); len(limits) > 0 {
		b, err := tenant.New(ctx, js, limits, env.Replicas, log)
		if err != nil {
			return err
		}
		budgets = b
	}
	subj := bus.Subjects{Prefix: env.Prefix}
	met := metrics.New(router, js, serve)
	w, err := worker.New(nc, router, worker.Config{
		Observer:          met,
		Tenants:           executors(tenants),
		Budgets:           budgets,
		ValidationRetries: validationRetries(env.ValidationRetries),
		Groups:            serve,
		Subjects:          subj,
		Streams: bus.StreamsConfig{
			Replicas: env.Replicas, DurableEvents: env.DurableEvents, EventsMaxAge: env.EventsMaxAge, ResultsMaxAge: env.ResultsMaxAge,
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
	httpAddr := ""
	if env.MetricsAddr != "" && env.MetricsAddr != "off" {
		srv, addr, err := serveHTTP(env.MetricsAddr, nc, w, met.Handler(), log)
		if err != nil {
			return err
		}
		defer srv.Close()
		httpAddr = addr
	}
	var gw *gatewayStep
	gctx, stopGateway := context.WithCancel(ctx)
	defer stopGateway()
	if env.HTTPAddr != "" {
		if gw, err = startGateway(gctx, env, models, url, log); err != nil {
			return err
		}
		if o.OnGateway != nil {
			o.OnGateway(gw.addr)
		}
	}
	// Register before the worker is ready, so that a SIGHUP sent once it
	// is can never fall through to the default action (exit).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHUP(ctx, hup, env, router, tenants, log)
	go func() {
		select {
		case <-w.Ready():
			if o.OnReady != nil {
				o.OnReady(url, httpAddr)
			}
			if env.NATSURL == "" {
				fmt.Fprintf(console, "\nSwitchyard is ready. In another terminal, try:\n\n    go run ./cmd/submit \"Tell me about switchyards\"\n\nor publish a JSON job with the nats CLI (see README). Ctrl-C stops the worker.\n\n")
				if gw != nil {
					gatewayBanner(console, gw.addr)
				}
			}
		case <-ctx.Done():
		}
	}()
	err = w.Run(ctx)
	if gw != nil {
		stopGateway() // also when the worker failed on its own
		err = errors.Join(err, gw.wait())
	}
	return err
}

// reloadOnHUP reloads the model file on SIGHUP, keeping the state of
// unchanged deployments. Groups served stay as they were at start.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, env config.Env, r *policy.Router, tenants map[string]*policy.Router, log *slog.Logger) {
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
			// Tenants known at start get their new keys; a tenant added
			// to the file needs a restart.
			for name, tr := range tenants {
				if err != nil {
					break
				}
				var tg []policy.Group
				if tg, err = models.BuildTenant(ctx, name, groups); err == nil {
					err = tr.Reload(tg)
				}
			}
		}
		if err != nil {
			log.Error("config reload failed; keeping the running config", slog.Any("error", err))
			continue
		}
		log.Info("config reloaded", slog.Any("groups", models.GroupNames()))
	}
}

func serveHTTP(addr string, nc *nats.Conn, w *worker.Worker, metricsHandler http.Handler, log *slog.Logger) (*http.Server, string, error) {
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
	mux.Handle("GET /metrics", metricsHandler)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", slog.Any("error", err))
		}
	}()
	log.Info("serving /metrics, /healthz, /readyz", slog.String("addr", ln.Addr().String()))
	return srv, ln.Addr().String(), nil
}

// validationRetries maps the setting to the worker's convention, where 0
// means the default and a negative number none.
func validationRetries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// tenantRouters builds one router per tenant that has keys of its own.
func tenantRouters(ctx context.Context, m *config.Models, base []policy.Group, opts []policy.Option) (map[string]*policy.Router, error) {
	out := map[string]*policy.Router{}
	for _, name := range m.TenantNames() {
		if len(m.Tenants[name].Keys) == 0 {
			continue
		}
		groups, err := m.BuildTenant(ctx, name, base)
		if err != nil {
			return nil, err
		}
		r, err := policy.NewRouter(groups, opts...)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", name, err)
		}
		out[name] = r
	}
	return out, nil
}

func executors(rs map[string]*policy.Router) map[string]worker.Executor {
	out := make(map[string]worker.Executor, len(rs))
	for k, r := range rs {
		out[k] = r
	}
	return out
}

func budgetLimits(m *config.Models) map[string]tenant.Limit {
	out := map[string]tenant.Limit{}
	for _, name := range m.TenantNames() {
		if b := m.Tenants[name].Budget; b != nil {
			d := b.WithDefaults()
			out[name] = tenant.Limit{Tokens: d.Tokens, CostUSD: d.CostUSD, Window: d.Window}
		}
	}
	return out
}
