package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/gateway"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// fleet is a nats-server, a worker and a gateway, all in process, with
// groups on mock providers:
//
//	demo  text (aliases gpt-4o-mini, claude-haiku-4-5)
//	tools calls a tool when offered one
//	json  structured output
//	slow  text, chunks 20ms apart
//	fail  scripted by the test (opts.fail), no retries
//	err-<kind>  every call fails with that llm.Kind, no retries
type fleet struct {
	t      testing.TB
	srv    *server.Server
	nc     *nats.Conn
	client *bus.Client
	js     jetstream.JetStream
	mocks  map[string]*mock.Provider
	gw     *gatewayProc
	opts   fleetOpts
}

type fleetOpts struct {
	fail       mock.Config
	slow       mock.Config
	notDurable bool
	// tenants are served by the worker besides the anonymous tenant (their
	// request streams, llm.t.<tenant>.req.<group>).
	tenants []string
	// maxPayload is the server's max_payload (default 1 MiB).
	maxPayload int32
	gateway    func(*gatewayConfig)
}

// gatewayProc is one running gateway: it can be stopped and another started
// on the same fleet, as a restarted process would be.
type gatewayProc struct {
	URL  string
	gw   *gateway.Gateway
	stop func()
	done chan error
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newFleet(t testing.TB, o fleetOpts) *fleet {
	t.Helper()
	f := &fleet{t: t, opts: o, mocks: map[string]*mock.Provider{}}
	f.srv = natstest.Server(t, func(so *server.Options) {
		if o.maxPayload > 0 {
			so.MaxPayload = o.maxPayload
		}
	})
	f.nc = natstest.Connect(t, f.srv)
	var err error
	f.client, err = bus.NewClient(f.nc)
	require.NoError(t, err)
	f.js, err = jetstream.New(f.nc)
	require.NoError(t, err)

	slow := o.slow
	if slow.ChunkDelay == 0 {
		slow = mock.Config{Tokens: 30, ChunkDelay: 20 * time.Millisecond}
	}
	cfgs := map[string]mock.Config{
		"demo":  {Tokens: 8},
		"tools": {ToolCalls: true},
		"json":  {},
		"slow":  slow,
		"fail":  o.fail,
	}
	for _, k := range errKinds {
		cfgs["err-"+strings.ReplaceAll(k, "_", "-")] = mock.Config{ErrorRate: map[string]float64{k: 1}}
	}
	// A provider that says how long to wait.
	cfgs[errRateLimitedWait] = mock.Config{ErrorRate: map[string]float64{"rate_limited": 1}, RetryAfter: providerRetryAfter}
	var groups []policy.Group
	var names []string
	for name, c := range cfgs {
		m := mock.New(c)
		f.mocks[name] = m
		g := policy.Group{Name: name, Deployments: []policy.Deployment{{Name: "mock-" + name, Model: "mock-1", Provider: m}}}
		if name == "fail" || strings.HasPrefix(name, "err-") {
			g.Options.Retry.MaxRetries = -1
		}
		groups = append(groups, g)
		names = append(names, name)
	}
	r, err := policy.NewRouter(groups)
	require.NoError(t, err)
	wnc := natstest.Connect(t, f.srv)
	w, err := worker.New(wnc, r, worker.Config{
		Groups:       names,
		TenantNames:  o.tenants,
		Streams:      bus.StreamsConfig{DurableEvents: !o.notDurable},
		Logger:       logger(t),
		FetchWait:    300 * time.Millisecond,
		UnknownSweep: 100 * time.Millisecond,
		UnknownGrace: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker not ready")
	}
	f.gw = f.startGateway()
	return f
}

// errKinds are the mock's fault kinds that have an err- group.
var errKinds = []string{"rate_limited", "unavailable", "timeout", "context_window_exceeded", "content_policy", "auth", "bad_request"}

// errRateLimitedWait is the group whose provider answers 429 with a
// Retry-After of providerRetryAfter.
const (
	errRateLimitedWait = "err-rate-limited-wait"
	providerRetryAfter = 1500 * time.Millisecond
)

func (f *fleet) catalog() *gateway.Catalog {
	var models []gateway.Model
	for _, g := range []string{"demo", "tools", "json", "slow", "fail"} {
		models = append(models, gateway.Model{Name: g, Group: g})
	}
	for _, k := range errKinds {
		g := "err-" + strings.ReplaceAll(k, "_", "-")
		models = append(models, gateway.Model{Name: g, Group: g, Hidden: true})
	}
	models = append(models, gateway.Model{Name: errRateLimitedWait, Group: errRateLimitedWait, Hidden: true})
	models = append(models, gateway.Model{Name: "gpt-4o-mini", Group: "demo"}, gateway.Model{Name: "claude-haiku-4-5", Group: "demo"},
		gateway.Model{Name: "secret-alias", Group: "demo", Hidden: true})
	c, err := gateway.NewCatalog(models)
	require.NoError(f.t, err)
	return c
}

// startGateway runs a gateway on its own NATS connection and port.
func (f *fleet) startGateway() *gatewayProc {
	t := f.t
	t.Helper()
	nc := natstest.Connect(t, f.srv)
	cfg := gateway.Config{Catalog: f.catalog(), Logger: logger(t), WebhookAllowPrivate: true, ShutdownGrace: 5 * time.Second}
	if f.opts.gateway != nil {
		f.opts.gateway(&cfg)
	}
	gw, err := gateway.New(nc, cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	p := &gatewayProc{URL: "http://" + ln.Addr().String(), gw: gw, done: make(chan error, 1)}
	go func() { p.done <- gw.Serve(ctx, ln) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-p.done)
			nc.Close()
		})
	}
	t.Cleanup(p.stop)
	return p
}

func (f *fleet) openai(opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(f.gw.URL + "/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0),
	}, opts...)...)
}

func (f *fleet) anthropic(opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{
		aoption.WithBaseURL(f.gw.URL), aoption.WithAPIKey("sk-ant-test"), aoption.WithMaxRetries(0),
	}, opts...)...)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, d, 10*time.Millisecond, msg)
}

var _ = http.StatusOK

type gatewayConfig = gateway.Config
