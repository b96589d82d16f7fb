package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/gateway"
	"github.com/switchyard/switchyard/internal/heartbeat"
	"github.com/switchyard/switchyard/internal/metrics"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/tenant"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// fleet is a nats-server, workers, and a gateway serving the console, all in
// process. Groups (mock providers):
//
//	demo    8 tokens
//	slow    first token after 30ms, then 5 tokens 30ms apart; the worker runs 2 jobs at a time per group
//	retry   the first call fails (unavailable), the retry answers
//	poison  3 tokens; not served until a test starts a worker for it
//	long    40 tokens, 75ms apart (3s)
type fleet struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	client *bus.Client
	URL    string
	logs   *syncBuf
}

var tenants = []string{"acme", "globex"}

// budgets are the tenants' budgets, as the model file would give them.
var budgets = map[string]tenant.Limit{"acme": {Tokens: 1000, CostUSD: 2, Window: time.Hour}}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, logs: &syncBuf{}}
	f.srv = natstest.Server(t)
	f.nc = natstest.Connect(t, f.srv)
	var err error
	f.js, err = jetstream.New(f.nc)
	require.NoError(t, err)
	f.client, err = bus.NewClient(f.nc)
	require.NoError(t, err)
	f.startWorker([]string{"demo", "slow", "retry", "long"}, bus.ConsumerConfig{})
	f.startGateway()
	return f
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func groups() []policy.Group {
	mk := func(name string, c mock.Config) policy.Group {
		g := policy.Group{Name: name, Deployments: []policy.Deployment{{Name: "mock-" + name, Model: "mock-1", Provider: mock.New(c)}}}
		g.Options.Retry.Backoff.Initial = 20 * time.Millisecond
		return g
	}
	return []policy.Group{
		mk("demo", mock.Config{Tokens: 8}),
		mk("slow", mock.Config{Tokens: 5, TTFT: 30 * time.Millisecond, ChunkDelay: 30 * time.Millisecond}),
		mk("retry", mock.Config{Tokens: 6, Script: []mock.Step{{Error: "unavailable"}}}),
		mk("poison", mock.Config{Tokens: 3}),
		mk("long", mock.Config{Tokens: 40, ChunkDelay: 75 * time.Millisecond}),
	}
}

// startWorker runs a worker of groups with its metrics and heartbeat, as
// the worker process does, until the returned stop (or the test's end).
func (f *fleet) startWorker(serve []string, consumer bus.ConsumerConfig) (stop func()) {
	t := f.t
	t.Helper()
	r, err := policy.NewRouter(groups())
	require.NoError(t, err)
	nc := natstest.Connect(t, f.srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	met := metrics.New(r, js, serve)
	w, err := worker.New(nc, r, worker.Config{
		Groups: serve, Consumer: consumer, Concurrency: 2, Observer: met, FetchWait: 200 * time.Millisecond,
		Streams: bus.StreamsConfig{DurableEvents: true, Tenants: tenants}, Logger: quiet(),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- w.Run(ctx) })
	wg.Go(func() {
		errs <- heartbeat.Run(ctx, js, heartbeat.Config{Gatherer: met.Registry(), Groups: serve, Concurrency: 2, Interval: 200 * time.Millisecond, Logger: quiet()})
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			nc.Close()
		})
	}
	t.Cleanup(stop)
	select {
	case <-w.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("worker not ready")
	}
	return stop
}

func (f *fleet) startGateway() {
	t := f.t
	var models []gateway.Model
	for _, g := range []string{"demo", "slow", "retry", "poison", "long"} {
		models = append(models, gateway.Model{Name: g, Group: g})
	}
	cat, err := gateway.NewCatalog(models)
	require.NoError(t, err)
	nc := natstest.Connect(t, f.srv)
	gw, err := gateway.New(nc, gateway.Config{
		Catalog: cat, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), ShutdownGrace: 2 * time.Second,
		ConsoleSampleInterval: 200 * time.Millisecond, BatchConcurrency: 64, Budgets: budgets,
	})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.URL = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// createKey stores an API key in the gateway's bucket (as `submit keys
// create` does) and waits until the gateway knows it.
func (f *fleet) createKey(tenant, name string, admin bool) string {
	t := f.t
	ctx := ctxT(t, 10*time.Second)
	kv, err := gateway.KeysBucket(ctx, f.js, 1)
	require.NoError(t, err)
	key, _, err := gateway.CreateKey(ctx, kv, tenant, name, admin, time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.status("/v1/models", key) == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	return key
}

// status is the status of GET path with key (none: "").
func (f *fleet) status(path, key string) int {
	req, _ := http.NewRequest(http.MethodGet, f.URL+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func req(id, prompt string) *bus.Request {
	return &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt)}}}
}

// browser is a headless Chromium at 1280x800, driven through chromedp.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// chromium finds Debian's chromium (.ci/run installs it when missing).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium: the browser tests need it (apt-get install -y chromium; .ci/run installs it)")
	return ""
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, dir: t.ArtifactDir()}
	// The first call starts the browser, which lives as long as its
	// context: no timeout on this one.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
	return b
}

// run runs browser actions within a minute.
func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...))
}

// navigate loads url. A load that Chromium aborts because the host's
// network changed (another process adding or removing an interface, such
// as a container's) is loaded again: it says nothing about the console.
func navigate(url string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var err error
		for range 3 {
			if _, err = chromedp.Navigate(url)(ctx, t); err == nil || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, err
	}
}

// get runs one action that returns a value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err)
	return v
}

// shot saves a screenshot of the page into the test's artifact directory
// (go test -artifacts keeps it) and, when SWITCHYARD_SCREENSHOTS names a
// directory, there too.
func (b *browser) shot(name string) {
	b.t.Helper()
	png := get(b, chromedp.FullScreenshot(100))
	for _, dir := range []string{b.dir, os.Getenv("SWITCHYARD_SCREENSHOTS")} {
		if dir == "" {
			continue
		}
		require.NoError(b.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
	}
	b.t.Logf("screenshot %s", filepath.Join(b.dir, name+".png"))
}

// text is the visible text of the first element that sel (CSS, or an
// XPath starting with //) matches, "" when none does. It is read in one
// script, so a live update swapping the element meanwhile cannot break it.
func (b *browser) text(sel string) string {
	b.t.Helper()
	if strings.HasPrefix(sel, "//") {
		return eval[string](b, fmt.Sprintf(`(function(){var n=document.evaluate(%q,document,null,XPathResult.FIRST_ORDERED_NODE_TYPE,null).singleNodeValue;return n?n.innerText:""})()`, sel))
	}
	return eval[string](b, fmt.Sprintf(`(function(){var n=document.querySelector(%q);return n?n.innerText:""})()`, sel))
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	return get(b, chromedp.Evaluate[T](expr))
}

// login logs in with key on the console's login page.
func (b *browser) login(base, key string) {
	b.run(navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=key]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=key]`), key),
		chromedp.Submit(chromedp.CSS(`input[name=key]`)),
		chromedp.WaitVisible(chromedp.CSS(`#overview`)))
}

// syncBuf collects the gateway's logs.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
