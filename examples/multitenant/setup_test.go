package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/pkg/bus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The in-process server's and the worker's background loops end
		// after the tests' cleanups; these are the server's.
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
	)
}

// provider replays OpenAI's streaming chat format. It records which key
// each prompt came with, answers with the prompt itself ("echo: <prompt>")
// so that results say whose job they are, holds a prompt "hold:<gate> ..."
// until release(gate), and reports usage tokens per call.
type provider struct {
	mu    sync.Mutex
	calls map[string][]string // key -> prompts
	usage int
	gates map[string]chan struct{}
	held  chan string // the gate of a held call that arrived
	done  chan struct{}
}

func newProvider(t *testing.T) (*provider, string) {
	p := &provider{calls: map[string][]string{}, usage: 14, gates: map[string]chan struct{}{}, held: make(chan string, 64), done: make(chan struct{})}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { close(p.done); srv.Close() })
	return p, srv.URL + "/v1"
}

func (p *provider) gate(name string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.gates[name]
	if !ok {
		g = make(chan struct{})
		p.gates[name] = g
	}
	return g
}

func (p *provider) release(name string) { close(p.gate(name)) }

// waitHeld waits until a call held at gate name has arrived (calls held at
// other gates, such as a redelivered job's second call, are skipped).
func (p *provider) waitHeld(t *testing.T, name string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-p.held:
			if got == name {
				return
			}
		case <-timeout:
			t.Fatalf("no call held at %s", name)
		}
	}
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	prompt := body.Messages[len(body.Messages)-1].Content
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	p.calls[key] = append(p.calls[key], prompt)
	usage := p.usage
	p.mu.Unlock()
	if rest, ok := strings.CutPrefix(prompt, "hold:"); ok {
		name, _, _ := strings.Cut(rest, " ")
		g := p.gate(name)
		p.held <- name
		select {
		case <-g:
		case <-r.Context().Done():
			return
		case <-p.done:
			return
		}
	}
	text, _ := json.Marshal("echo: " + prompt)
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":%s},"finish_reason":null}]}`+"\n\n", text)
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
	fmt.Fprintf(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":0,"total_tokens":%d}}`+"\n\n", usage, usage)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func (p *provider) prompts(key string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls[key]...)
}

func (p *provider) setUsage(n int) {
	p.mu.Lock()
	p.usage = n
	p.mu.Unlock()
}

// The tenants' keys the tests give the model file.
const (
	fleetKey  = "sk-fleet-0000"
	acmeKey   = "sk-acme-1111"
	globexKey = "sk-globex-2222"
)

// fleet is the example as README.md runs it: the server of nats.conf and a
// worker serving models.yaml as the worker user, on a free port.
type fleet struct {
	t   *testing.T
	srv *server.Server
	p   *provider
}

// startFleet is not parallel-safe: the model file's keys and provider URL
// come from the environment.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	p, url := newProvider(t)
	t.Setenv("OPENAI_BASE_URL", url)
	t.Setenv("OPENAI_API_KEY", fleetKey)
	t.Setenv("ACME_OPENAI_KEY", acmeKey)
	t.Setenv("GLOBEX_OPENAI_KEY", globexKey)
	t.Setenv("SWITCHYARD_METRICS_ADDR", "off")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := StartServer(Setup{Dir: ".", Addr: "127.0.0.1:-1", StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	env, err := WorkerEnv(".", srv.ClientURL())
	require.NoError(t, err)
	env.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- app.Run(ctx, env, app.Options{Logger: log, Console: io.Discard, OnReady: func(string, string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("worker ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("worker not ready in 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop in 30s")
		}
	})
	return &fleet{t: t, srv: srv, p: p}
}

// permErrors records the permission violations the server reports to a
// connection (asynchronously, through the error handler).
type permErrors struct {
	mu   sync.Mutex
	errs []string
}

func (pe *permErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		pe.mu.Lock()
		pe.errs = append(pe.errs, err.Error())
		pe.mu.Unlock()
	}
}

func (pe *permErrors) list() []string {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return append([]string(nil), pe.errs...)
}

// user is one connection of one user of nats.conf.
type user struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	perm *permErrors
	c    *bus.Client // in the user's tenant namespace (tenants only)
}

// connect logs in as name (password <name>-dev); tenants use their own
// inbox prefix, as their permissions require.
func (f *fleet) connect(name string) *user {
	f.t.Helper()
	pe := &permErrors{}
	opts := []nats.Option{nats.UserInfo(name, name+"-dev"), nats.ErrorHandler(pe.handler)}
	tenant := name == "acme" || name == "globex"
	if tenant {
		opts = append(opts, nats.CustomInboxPrefix("_INBOX."+name))
	}
	nc, err := nats.Connect(f.srv.ClientURL(), opts...)
	require.NoError(f.t, err)
	f.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(f.t, err)
	u := &user{nc: nc, js: js, perm: pe}
	if tenant {
		u.c, err = bus.NewClient(nc, bus.WithTenant(name))
		require.NoError(f.t, err)
	}
	return u
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func prompt(id, text string) *bus.Request {
	return &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text(text)}}}
}

// results subscribes to everything under prefix and returns a function
// that lists the results received so far, by subject.
func results(t *testing.T, nc *nats.Conn, prefix string) func() map[string][]bus.Result {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]bus.Result{}
	sub, err := nc.Subscribe(prefix+".>", func(m *nats.Msg) {
		if !strings.HasSuffix(m.Subject, ".result") {
			return
		}
		var r bus.Result
		_ = bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &r)
		mu.Lock()
		got[m.Subject] = append(got[m.Subject], r)
		mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() map[string][]bus.Result {
		mu.Lock()
		defer mu.Unlock()
		out := map[string][]bus.Result{}
		for k, v := range got {
			out[k] = append([]bus.Result(nil), v...)
		}
		return out
	}
}

// raw publishes a job as any NATS client could, returning the PubAck.
func raw(t *testing.T, ctx context.Context, u *user, subject string, h nats.Header, req *bus.Request, enc bus.Encoding) (*jetstream.PubAck, error) {
	t.Helper()
	m := nats.NewMsg(subject)
	for k, v := range h {
		m.Header[k] = v
	}
	m.Header.Set(bus.HeaderContentType, enc.ContentType())
	data, err := enc.Marshal(req)
	require.NoError(t, err)
	m.Data = data
	return u.js.PublishMsg(ctx, m)
}

// waitResult waits for one result on subject.
func waitResult(t *testing.T, list func() map[string][]bus.Result, subject string) bus.Result {
	t.Helper()
	var r bus.Result
	require.Eventually(t, func() bool {
		rs := list()[subject]
		if len(rs) > 0 {
			r = rs[0]
			return true
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "no result on %s", subject)
	return r
}

// storedResult waits for a job's result in the results stream (the stream
// may store it just after its requester saw it).
func storedResult(t *testing.T, ctx context.Context, c *bus.Client, id string) *bus.Result {
	t.Helper()
	var r *bus.Result
	require.Eventually(t, func() bool {
		var err error
		r, err = c.StoredResult(ctx, c.Subjects().Reply(id))
		require.NoError(t, err)
		return r != nil
	}, 10*time.Second, 10*time.Millisecond, "no stored result for %s", id)
	return r
}
