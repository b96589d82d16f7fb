package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/internal/console"
	"github.com/switchyard/switchyard/internal/tenant"
	"github.com/switchyard/switchyard/pkg/bus"
)

// Config configures a Gateway. Every field but Catalog has a default, stated
// on the field.
type Config struct {
	// Catalog resolves request models to groups. Required.
	Catalog *Catalog
	// Subjects of the fleet (default prefix "llm").
	Subjects bus.Subjects
	// APIKeys are the model file's keys (hashed). Keys are also read from
	// the bucket LLM_API_KEYS (`submit keys`). While neither has a key,
	// every request is the anonymous tenant's without a key (the `make run`
	// default); once one exists, every request needs one.
	APIKeys []KeyRecord
	// RequireKeys makes a key required even while none exists (a
	// production gateway should set it: revoking the last key must not
	// open the gateway).
	RequireKeys bool
	// Logger default slog.Default().
	Logger *slog.Logger
	// Registerer receives the gateway's metrics. Default: a registry of its
	// own, served at /metrics.
	Registerer prometheus.Registerer

	// MaxBodyBytes bounds a request body (default 32 MiB); MaxFileBytes an
	// uploaded batch file (default 200 MB, OpenAI's limit).
	MaxBodyBytes, MaxFileBytes int64
	// ReadHeaderTimeout bounds reading a request's headers (default 10s),
	// BodyTimeout its body (default 60s; 10 minutes for file uploads),
	// IdleTimeout an idle keep-alive connection (default 120s), and
	// WriteTimeout every write of a response, so that a client that stops
	// reading a stream is dropped (default 30s).
	ReadHeaderTimeout, BodyTimeout, IdleTimeout, WriteTimeout time.Duration
	// ShutdownGrace is how long running requests (streams included) may
	// finish once the gateway is told to stop (default 25s).
	ShutdownGrace time.Duration

	// BatchConcurrency bounds the jobs in flight per batch (default 64).
	BatchConcurrency int

	// Replicas of the buckets the gateway creates (default 1).
	Replicas int
	// WebhookAllowPrivate lets webhooks call loopback and private
	// addresses (default false: a tenant must not make the gateway call
	// into the operator's network).
	WebhookAllowPrivate bool
	// WebhookTimeout bounds one webhook call (default 10s).
	WebhookTimeout time.Duration

	// Budgets are the tenants' budgets (the model file's), which the
	// console shows spend against.
	Budgets map[string]tenant.Limit
	// ConsoleSampleInterval is how often the console samples the fleet
	// (default 3s).
	ConsoleSampleInterval time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time

	// webhookRetryBase is the first webhook retry's delay (1s); tests
	// shorten it.
	webhookRetryBase time.Duration
}

func (c Config) withDefaults() Config {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, 32<<20)
	c.MaxFileBytes = cmp.Or(c.MaxFileBytes, 200_000_000)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, 10*time.Second)
	c.BodyTimeout = cmp.Or(c.BodyTimeout, time.Minute)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, 2*time.Minute)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, 30*time.Second)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 25*time.Second)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.BatchConcurrency = cmp.Or(c.BatchConcurrency, 64)
	c.WebhookTimeout = cmp.Or(c.WebhookTimeout, 10*time.Second)
	c.webhookRetryBase = cmp.Or(c.webhookRetryBase, time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Gateway serves the HTTP API. Create it with New, serve it with Serve (or
// mount Handler and run Background yourself).
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	catalog *Catalog
	met     *metrics
	mux     *http.ServeMux

	clientsMu sync.Mutex
	clients   map[string]*bus.Client // by tenant; "" anonymous

	keys     *KeyStore
	draining atomic.Bool
	hooks    *webhooks
	batches  *batchRunner
	store    *store
	console  *console.Console
}

// New returns a gateway publishing on nc. It does not own nc.
func New(nc *nats.Conn, cfg Config) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if cfg.Catalog == nil {
		return nil, errors.New("gateway: Config.Catalog is required")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, nc: nc, js: js, catalog: cfg.Catalog, clients: map[string]*bus.Client{}}
	g.met, err = newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	g.store = newStore(js, cfg.Replicas)
	if g.keys, err = NewKeyStore(cfg.APIKeys); err != nil {
		return nil, err
	}
	g.hooks = newWebhooks(g)
	g.batches = newBatchRunner(g)
	g.console, err = console.New(console.Config{
		Backend: consoleBackend{g}, JetStream: js, Subjects: cfg.Subjects, Budgets: cfg.Budgets,
		SampleInterval: cfg.ConsoleSampleInterval, Logger: cfg.Logger.With(slog.String("component", "console")), Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	g.routes()
	return g, nil
}

// Handler returns the HTTP API.
func (g *Gateway) Handler() http.Handler { return g.mux }

// client returns the bus client of a tenant ("" the anonymous one).
func (g *Gateway) client(tenant string) (*bus.Client, error) {
	g.clientsMu.Lock()
	defer g.clientsMu.Unlock()
	if c, ok := g.clients[tenant]; ok {
		return c, nil
	}
	c, err := newTenantClient(g.nc, g.cfg.Subjects, tenant)
	if err != nil {
		return nil, err
	}
	g.clients[tenant] = c
	return c, nil
}

// Serve serves HTTP on ln and runs the gateway's background work (webhook
// deliveries, batches) until ctx ends; then it stops accepting, lets
// running requests finish within ShutdownGrace, and closes the rest.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.mux,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		// No ReadTimeout or WriteTimeout: they would cut long streams.
		// Bodies and writes get deadlines of their own per request.
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	bctx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	eg, bctx := errgroup.WithContext(bctx)
	eg.Go(func() error { return g.Background(bctx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	g.log.Info("gateway serving", slog.String("addr", ln.Addr().String()))

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	g.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		g.log.Warn("gateway: requests still running after the shutdown grace were cut", slog.Any("error", serr))
		_ = srv.Close()
	}
	stopBackground()
	if berr := eg.Wait(); berr != nil && !errors.Is(berr, context.Canceled) {
		err = errors.Join(err, berr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Background runs the deliveries of webhooks and the batches until ctx
// ends. Serve runs it; a caller mounting Handler elsewhere runs it itself.
func (g *Gateway) Background(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.watchKeys(ctx) })
	eg.Go(func() error { return g.hooks.run(ctx) })
	eg.Go(func() error { return g.runBatches(ctx) })
	eg.Go(func() error { return g.console.Run(ctx) })
	return eg.Wait()
}

// watchKeys follows the keys bucket, retrying while NATS is not reachable
// (until then every authenticated request waits, then fails: never open).
func (g *Gateway) watchKeys(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		kv, err := g.store.kv(ctx, BucketKeys)
		if err == nil {
			err = g.keys.Run(ctx, kv)
		}
		if ctx.Err() != nil {
			return nil
		}
		g.log.Warn("API keys bucket unavailable; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (g *Gateway) routes() {
	m := http.NewServeMux()
	g.mux = m
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", g.readyz)
	m.Handle("GET /metrics", g.met.handler())

	api := func(pattern, route string, werr errorWriter, h http.HandlerFunc) {
		m.Handle(pattern, g.instrument(route, g.authenticate(werr, h)))
	}
	api("POST /v1/chat/completions", "chat_completions", writeOpenAIError, g.chatCompletions)
	api("POST /v1/messages", "messages", writeAnthropicError, g.messages)
	api("GET /v1/models", "models", writeOpenAIError, g.listModels)
	api("GET /v1/models/{model}", "models", writeOpenAIError, g.getModel)
	// LiteLLM's proxy also serves these without /v1, and its docs point the
	// SDKs at the bare host: a client moved from it keeps its base URL.
	api("POST /chat/completions", "chat_completions", writeOpenAIError, g.chatCompletions)
	api("GET /models", "models", writeOpenAIError, g.listModels)
	api("GET /models/{model}", "models", writeOpenAIError, g.getModel)

	api("POST /v1/jobs", "jobs", writeOpenAIError, g.createJob)
	api("GET /v1/jobs/{id}", "jobs", writeOpenAIError, g.getJob)
	api("GET /v1/jobs/{id}/events", "job_events", writeOpenAIError, g.jobEvents)
	api("DELETE /v1/jobs/{id}", "jobs", writeOpenAIError, g.deleteJob)
	api("GET /v1/webhooks/secret", "webhooks", writeOpenAIError, g.webhookSecret)

	api("POST /v1/files", "files", writeOpenAIError, g.uploadFile)
	api("GET /v1/files", "files", writeOpenAIError, g.listFiles)
	api("GET /v1/files/{id}", "files", writeOpenAIError, g.getFile)
	api("GET /v1/files/{id}/content", "files", writeOpenAIError, g.fileContent)
	api("DELETE /v1/files/{id}", "files", writeOpenAIError, g.deleteFile)
	api("POST /v1/batches", "batches", writeOpenAIError, g.createBatch)
	api("GET /v1/batches", "batches", writeOpenAIError, g.listBatches)
	api("GET /v1/batches/{id}", "batches", writeOpenAIError, g.getBatch)
	api("POST /v1/batches/{id}/cancel", "batches", writeOpenAIError, g.cancelBatch)

	api("GET /admin/status", "admin", writeOpenAIError, g.admin(g.adminStatus))
	api("GET /admin/keys", "admin", writeOpenAIError, g.admin(g.adminListKeys))
	api("POST /admin/keys", "admin", writeOpenAIError, g.admin(g.adminCreateKey))
	api("DELETE /admin/keys/{id}", "admin", writeOpenAIError, g.admin(g.adminRevokeKey))

	// The operator's console (internal/console): its own sessions, pages
	// and assets.
	m.Handle("/console/", g.instrument("console", g.console.Handler()))
	m.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))

	m.Handle("/", g.instrument("not_found", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := newError(bus.CodeInvalidRequest, "Invalid URL (%s %s)", r.Method, r.URL.Path)
		e.status = http.StatusNotFound
		writeOpenAIError(w, e)
	})))
}

func (g *Gateway) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case g.draining.Load():
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case !g.nc.IsConnected():
		http.Error(w, "NATS disconnected", http.StatusServiceUnavailable)
	default:
		_, _ = io.WriteString(w, "ready\n")
	}
}

// decodeBody reads a JSON body within the size limit and the body timeout.
func (g *Gateway) decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	b, e := readBody(w, r, g.cfg.MaxBodyBytes, g.cfg.BodyTimeout)
	if e != nil {
		return e
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalidParam(te.Field, "", "Invalid type for '%s': expected %s.", te.Field, te.Type)
		}
		return newError(bus.CodeInvalidRequest, "We could not parse the JSON body of your request: %v", err)
	}
	return nil
}

// readBody reads a body within limit bytes and timeout, then lifts the read
// deadline again: a deadline left on the connection would cut a stream
// (net/http's background read cancels the request on any read error).
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, *apiError) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
		defer rc.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newError(bus.CodeTooLarge, "request body larger than %d bytes", limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			e := newError(bus.CodeInvalidRequest, "the request body did not arrive within %s", timeout)
			e.status = http.StatusRequestTimeout
			return nil, e
		}
		return nil, newError(bus.CodeInvalidRequest, "reading the request body: %v", err)
	}
	return b, nil
}

// listModels answers OpenAI's model list, or Anthropic's when the request
// carries anthropic-version (both SDKs call GET /v1/models).
func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	anth := r.Header.Get("anthropic-version") != ""
	var data []any
	for _, m := range g.catalog.Models() {
		data = append(data, g.modelObject(m.Name, m.Group, anth))
	}
	if anth {
		first, last := "", ""
		if len(data) > 0 {
			first, last = data[0].(map[string]any)["id"].(string), data[len(data)-1].(map[string]any)["id"].(string)
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (g *Gateway) getModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	group, ok := g.catalog.Resolve(name)
	anth := r.Header.Get("anthropic-version") != ""
	if !ok {
		if anth {
			writeAnthropicError(w, newError(bus.CodeUnknownGroup, "model: %s", name))
		} else {
			writeOpenAIError(w, unknownModel(name))
		}
		return
	}
	writeJSON(w, http.StatusOK, g.modelObject(name, group, anth))
}

func (g *Gateway) modelObject(name, group string, anth bool) map[string]any {
	if anth {
		return map[string]any{"type": "model", "id": name, "display_name": fmt.Sprintf("%s (Switchyard group %s)", name, group), "created_at": "1970-01-01T00:00:00Z"}
	}
	return map[string]any{"id": name, "object": "model", "created": 0, "owned_by": "switchyard", "group": group}
}
