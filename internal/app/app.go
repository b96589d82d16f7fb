// Package app wires a whole worker process from its settings: NATS (or an
// embedded server), the model file, the router with fleet-wide state, the
// consume loop and the HTTP endpoints. cmd/worker is a thin main around it,
// and tests run it in process.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/embedded"
	"github.com/switchyard/switchyard/internal/fleet"
	"github.com/switchyard/switchyard/internal/heartbeat"
	"github.com/switchyard/switchyard/internal/metrics"
	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/respcache"
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

// Run runs a worker until ctx ends. Its steps run in order, each in a
// function of its own (tracing, model file, NATS, routers, worker, HTTP
// listeners); then the long-running parts (the worker, the HTTP servers,
// reload on SIGHUP, the ready hook) run in one errgroup, which owns them:
// the first to fail stops the others, and Run returns only once all of them
// have ended and everything the steps opened is closed, in reverse order.
func Run(ctx context.Context, env config.Env, o Options) (err error) {
	p := &process{env: env, o: o, log: cmp.Or(o.Logger, slog.Default())}
	if p.o.Console == nil {
		p.o.Console = os.Stderr
	}
	defer func() { err = errors.Join(err, p.close()) }()
	for _, step := range []func(context.Context) error{
		p.startTracing, p.loadModels, p.connect, p.buildRouters, p.buildWorker, p.listen,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return p.run(ctx)
}

// process is what Run's steps build, in order.
type process struct {
	env     config.Env
	o       Options
	log     *slog.Logger
	closers []func() error // undo the steps, run in reverse order

	models  *config.Models
	groups  []policy.Group
	url     string // NATS
	nc      *nats.Conn
	js      jetstream.JetStream
	router  *policy.Router
	tenants map[string]*policy.Router
	budgets worker.Budgets
	metrics *metrics.Metrics
	worker  *worker.Worker
	http    *httpStep    // nil when SWITCHYARD_METRICS_ADDR is off
	gateway *gatewayStep // nil without SWITCHYARD_HTTP_ADDR
}

func (p *process) onClose(f func() error) { p.closers = append(p.closers, f) }

func (p *process) close() error {
	var errs []error
	for _, f := range slices.Backward(p.closers) {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

func (p *process) startTracing(ctx context.Context) error {
	shutdown, err := telemetry.SetupTracing(ctx, "switchyard-worker")
	if err != nil {
		return fmt.Errorf("tracing (OTEL_ settings): %w", err)
	}
	p.onClose(func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx) // spans that cannot be flushed are not the process's failure
		return nil
	})
	return nil
}

func (p *process) loadModels(ctx context.Context) error {
	models, err := config.LoadModels(p.env.ConfigPath)
	if err != nil {
		return err
	}
	for _, n := range models.Notices() {
		p.log.Warn("model file key has no effect here", slog.String("key", n.Key), slog.Int("line", n.Line), slog.String("why", n.Reason))
	}
	p.models = models
	p.groups, err = models.Build(ctx)
	return err
}

// served returns the groups this worker consumes.
func (p *process) served() []string {
	if len(p.env.Groups) > 0 {
		return p.env.Groups
	}
	return p.models.GroupNames()
}

// connect starts the embedded server when no NATS_URL is given, then
// connects.
func (p *process) connect(ctx context.Context) error {
	p.url = p.env.NATSURL
	if p.url == "" {
		dir, _ := filepath.Abs(p.env.DataDir)
		srv, err := embedded.StartContext(ctx, embedded.Options{Addr: p.env.EmbeddedAddr, StoreDir: dir, SyncAlways: p.env.SyncAlways, Logger: p.log})
		if errors.Is(err, embedded.ErrAddrInUse) {
			return fmt.Errorf("SWITCHYARD_EMBEDDED_ADDR=%s is in use, by another worker's embedded server perhaps: join it with NATS_URL=nats://%s, or set SWITCHYARD_EMBEDDED_ADDR to a free address", p.env.EmbeddedAddr, p.env.EmbeddedAddr)
		}
		if err != nil {
			return err
		}
		p.onClose(func() error { srv.Shutdown(); srv.WaitForShutdown(); return nil })
		p.url = srv.ClientURL()
		p.log.Info("embedded NATS server started", slog.String("url", p.url), slog.String("data", dir))
	}
	nopts, err := p.env.NATSOptions("switchyard-worker")
	if err != nil {
		return err
	}
	nopts = append(nopts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				p.log.Warn("NATS disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { p.log.Info("NATS reconnected", slog.String("url", nc.ConnectedUrlRedacted())) }),
	)
	if p.nc, err = nats.Connect(p.url, nopts...); err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", config.RedactURL(p.url), err)
	}
	p.onClose(func() error { p.nc.Close(); return nil })
	p.js, err = jetstream.New(p.nc)
	return err
}

// buildRouters builds the worker's router and the tenants' (with the
// fleet-wide state when it can be had) and the tenants' budgets.
func (p *process) buildRouters(ctx context.Context) error {
	var ropts []policy.Option
	if p.env.FleetState {
		if st := p.fleetState(ctx); st != nil {
			p.onClose(st.Close)
			ropts = append(ropts, policy.WithSharedState(st))
		}
	}
	var err error
	if p.router, err = policy.NewRouter(p.groups, ropts...); err != nil {
		return err
	}
	p.onClose(func() error { p.router.Close(); return nil })
	if p.tenants, err = tenantRouters(ctx, p.models, p.groups, ropts); err != nil {
		return err
	}
	p.onClose(func() error {
		for _, r := range p.tenants {
			r.Close()
		}
		return nil
	})
	if limits := budgetLimits(p.models); len(limits) > 0 {
		b, err := tenant.New(ctx, p.js, limits, p.env.Replicas, p.log)
		if err != nil {
			return err
		}
		p.budgets = b
	}
	return nil
}

// fleetState binds the fleet-wide breaker and rate state, or returns nil
// (local state only) when it cannot be had. On a cluster that is still
// electing leaders the buckets cannot be created at once: retry for a while
// before going local.
func (p *process) fleetState(ctx context.Context) *fleet.State {
	rp := retrypolicy.NewBuilder[*fleet.State]().
		WithMaxRetries(-1).WithMaxDuration(30*time.Second).
		WithBackoff(200*time.Millisecond, 5*time.Second).Build()
	st, err := failsafe.With(rp).WithContext(ctx).Get(func() (*fleet.State, error) {
		return fleet.New(ctx, p.js, fleet.Config{Replicas: p.env.Replicas})
	})
	if err != nil {
		p.log.Warn("fleet-wide state unavailable; breakers and limits are local to this worker", slog.Any("error", err))
		return nil
	}
	return st
}

// interactiveShare maps the variable's 0 (no reserve) to the worker's
// "none", which is negative (its 0 is the default).
func interactiveShare(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

func (p *process) buildWorker(context.Context) error {
	serve := p.served()
	p.metrics = metrics.New(p.router, p.js, serve)
	anonAs, denyAnon := p.models.AnonymousJobs()
	cache := respcache.New(p.js, respcache.Config{Subjects: bus.Subjects{Prefix: p.env.Prefix}, Replicas: p.env.Replicas})
	w, err := worker.New(p.nc, cached(p.router, cache), worker.Config{
		Observer:          p.metrics,
		TenantNames:       p.models.TenantNames(),
		Secrets:           append(p.models.Secrets(), p.env.Secrets()...),
		AnonymousAs:       anonAs,
		DenyAnonymous:     denyAnon,
		Tenants:           executors(p.tenants, cache),
		Budgets:           p.budgets,
		Offload:           &worker.OffloadConfig{Targets: batchTargets(p.router, p.tenants, anonAs)},
		ValidationRetries: validationRetries(p.env.ValidationRetries),
		Groups:            serve,
		Subjects:          bus.Subjects{Prefix: p.env.Prefix},
		Streams: bus.StreamsConfig{
			Replicas: p.env.Replicas, DurableEvents: p.env.DurableEvents, EventsMaxAge: p.env.EventsMaxAge, ResultsMaxAge: p.env.ResultsMaxAge,
		},
		Consumer:         bus.ConsumerConfig{AckWait: p.env.AckWait, MaxDeliver: p.env.MaxDeliver},
		Concurrency:      p.env.Concurrency,
		InteractiveShare: interactiveShare(p.env.InteractiveShare),
		Classes:          p.models.Classes(),
		ShutdownGrace:    p.env.ShutdownGrace,
		MaxJobTime:       p.env.MaxJobTime,
		Logger:           p.log,
	})
	p.worker = w
	return err
}

// listen opens the HTTP addresses at once, so that a taken port fails the
// start instead of a running worker.
func (p *process) listen(context.Context) error {
	if a := p.env.MetricsAddr; a != "" && a != "off" {
		h, err := listenHTTP(a, p.nc, p.worker, p.metrics.Handler())
		if err != nil {
			return err
		}
		p.http = h
		p.onClose(func() error { _ = h.ln.Close(); return nil }) // in case it never served
		p.log.Info("serving /metrics, /healthz, /readyz", slog.String("addr", h.addr))
	}
	if p.env.HTTPAddr != "" {
		gw, err := openGateway(p.env, p.url)
		if err != nil {
			return err
		}
		p.onClose(gw.close)
		p.gateway = gw
		if p.o.OnGateway != nil {
			p.o.OnGateway(gw.addr)
		}
	}
	return nil
}

// run runs the long-running parts in one errgroup until ctx ends or one of
// them fails. The worker drains its jobs after ctx ends; the metrics and
// health endpoints are shut down only once it has.
func (p *process) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	workerDone := make(chan struct{})
	g.Go(func() error {
		defer close(workerDone)
		return p.worker.Run(gctx)
	})
	if p.http != nil {
		g.Go(p.http.serve)
		g.Go(func() error { <-workerDone; return p.http.shutdown() })
	}
	if gw := p.gateway; gw != nil {
		g.Go(func() error { return gw.serve(gctx, p.env, p.models, p.log) })
	}
	// The console's view of this worker (internal/heartbeat).
	g.Go(func() error {
		return heartbeat.Run(gctx, p.js, heartbeat.Config{
			Gatherer: p.metrics.Registry(), Groups: p.served(), Concurrency: p.env.Concurrency, Replicas: p.env.Replicas, Logger: p.log,
		})
	})
	// Register before the worker is ready, so that a SIGHUP sent once it
	// is can never fall through to the default action (exit).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	run := running{groups: p.served(), tenants: p.models.TenantNames(), budgets: budgetLimits(p.models)}
	g.Go(func() error { reloadOnHUP(gctx, hup, p.env, p.router, p.tenants, run, p.log); return nil })
	g.Go(func() error { p.announce(gctx); return nil })
	return g.Wait()
}

// announce calls OnReady and prints the hint of an embedded server once the
// worker consumes.
func (p *process) announce(ctx context.Context) {
	select {
	case <-p.worker.Ready():
	case <-ctx.Done():
		return
	}
	httpAddr := ""
	if p.http != nil {
		httpAddr = p.http.addr
	}
	if p.o.OnReady != nil {
		p.o.OnReady(p.url, httpAddr)
	}
	if p.env.NATSURL == "" {
		fmt.Fprint(p.o.Console, readyBanner(p.served()))
		if p.gateway != nil {
			gatewayBanner(p.o.Console, p.gateway.addr)
		}
	}
}

// readyBanner is the hint printed once a worker on an embedded server is
// ready: a submit command for a group it serves (demo when it does).
func readyBanner(serve []string) string {
	submit := "go run ./cmd/submit"
	if fi, err := os.Stat(filepath.Join("bin", "submit")); err == nil && !fi.IsDir() {
		submit = "bin/submit"
	}
	cmd := submit + ` "Tell me about switchyards"`
	if len(serve) > 0 && !slices.Contains(serve, "demo") {
		cmd = fmt.Sprintf(`%s -g %s "Tell me about switchyards"`, submit, serve[0])
	}
	return "\nSwitchyard is ready. In another terminal, try:\n\n    " + cmd +
		"\n\nor publish a JSON job with the nats CLI (docs/wire.md). Ctrl-C stops the worker.\n\n"
}

// running is what a worker took from the model file at start and a reload
// does not change: the groups it consumes and the tenants it knows.
type running struct {
	groups, tenants []string
	budgets         map[string]tenant.Limit
}

// reloadNotes says what a reloaded model file asks for that only a restart
// applies: groups the worker does not consume, tenants it does not know.
func (r running) reloadNotes(m *config.Models) []string {
	var notes []string
	for _, g := range m.GroupNames() {
		if !slices.Contains(r.groups, g) {
			notes = append(notes, "group "+g+" is not served (no consumer until a restart)")
		}
	}
	for _, t := range m.TenantNames() {
		if !slices.Contains(r.tenants, t) {
			notes = append(notes, "tenant "+t+" is new (its keys and budget apply after a restart)")
		}
	}
	limits := budgetLimits(m)
	for _, t := range slices.Sorted(maps.Keys(limits)) {
		if old, ok := r.budgets[t]; ok && old != limits[t] {
			notes = append(notes, "the budget of tenant "+t+" changed (it applies after a restart)")
		}
	}
	for _, g := range r.groups {
		if !slices.Contains(m.GroupNames(), g) {
			notes = append(notes, "group "+g+" is gone from the file but still consumed until a restart")
		}
	}
	return notes
}

// reloadOnHUP reloads the model file on SIGHUP, keeping the state of
// unchanged deployments: the deployments, options and keys of the groups
// and tenants the worker started with change in place. What needs a
// restart (a new group or tenant) is logged as not applied.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, env config.Env, r *policy.Router, tenants map[string]*policy.Router, run running, log *slog.Logger) {
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
		attrs := []any{slog.Any("groups", run.groups), slog.Any("tenants", run.tenants)}
		if notes := run.reloadNotes(models); len(notes) > 0 {
			attrs = append(attrs, slog.Any("not_applied", notes))
		}
		log.Info("config reloaded: deployments, options and keys of the running groups and tenants", attrs...)
	}
}

// httpStep serves /metrics, /healthz and /readyz.
type httpStep struct {
	srv  *http.Server
	ln   net.Listener
	addr string
}

func listenHTTP(addr string, nc *nats.Conn, w *worker.Worker, metricsHandler http.Handler) (*httpStep, error) {
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
		if err := w.StoreHealth(); err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rw.Write([]byte("ready\n")) //nolint:errcheck // client gone
	})
	mux.Handle("GET /metrics", metricsHandler)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SWITCHYARD_METRICS_ADDR=%s: %w (another worker on this machine? give each its own address, or off)", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return &httpStep{srv: srv, ln: ln, addr: ln.Addr().String()}, nil
}

func (h *httpStep) serve() error {
	if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// shutdown lets the requests in flight (a scrape) finish.
func (h *httpStep) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.srv.Shutdown(ctx)
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

func executors(rs map[string]*policy.Router, cache policy.CacheStore) map[string]worker.Executor {
	out := make(map[string]worker.Executor, len(rs))
	for k, r := range rs {
		out[k] = cached(r, cache)
	}
	return out
}

// cached puts the response cache in front of r: the groups whose options
// say cache are answered from store (the others pass through).
func cached(r *policy.Router, store policy.CacheStore) worker.Executor {
	return routerExec{Executor: policy.Chain(r, policy.Cache(policy.CacheConfig{Store: store, Options: r.CacheOptions})), r: r}
}

// batchTargets says where a namespace's vendor batches go: to the
// tenant's own router when it has one (its keys), else the worker's. The
// anonymous namespace's jobs run as anonAs.
func batchTargets(main *policy.Router, tenants map[string]*policy.Router, anonAs string) offload.Targets {
	return func(ns, group string) (policy.BatchTarget, bool) {
		tenant := ns
		if tenant == "" {
			tenant = anonAs
		}
		if r, ok := tenants[tenant]; ok {
			return r.BatchTarget(group)
		}
		return main.BatchTarget(group)
	}
}

// routerExec is an executor chain over a router, with the router's groups.
type routerExec struct {
	policy.Executor
	r *policy.Router
}

func (e routerExec) HasGroup(name string) bool { return e.r.HasGroup(name) }

func budgetLimits(m *config.Models) map[string]tenant.Limit { return m.BudgetLimits() }
