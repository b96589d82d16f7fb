package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// keyServer replays OpenAI's streaming format and records which key each
// prompt was sent with.
type keyServer struct {
	mu    sync.Mutex
	byKey map[string][]string // key -> prompts
}

func (k *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	k.mu.Lock()
	k.byKey[key] = append(k.byKey[key], body.Messages[len(body.Messages)-1].Content)
	k.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}`+"\n\n")
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}`+"\n\n")
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func (k *keyServer) prompts(key string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.byKey[key]...)
}

func TestTenantKeysAndBudgets(t *testing.T) {
	ks := &keyServer{byKey: map[string][]string{}}
	srv := httptest.NewServer(ks)
	t.Cleanup(srv.Close)
	t.Setenv("DEFAULT_KEY", "sk-default")
	t.Setenv("ACME_KEY", "sk-acme")
	t.Setenv("GLOBEX_KEY", "sk-globex")
	models := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(fmt.Sprintf(`
groups:
  gpt:
    retry: {max_retries: -1}
    deployments:
      - {name: oa, provider: openai, model: gpt-4o-mini, base_url: %s/v1, api_key: "${DEFAULT_KEY}"}
unknown_tenants: anonymous
tenants:
  acme:
    keys: {oa: "${ACME_KEY}"}
    budget: {tokens: 30, window: 1h}
  globex:
    keys: {oa: "${GLOBEX_KEY}"}
  initech:
    budget: {tokens: 1000}
`, srv.URL)), 0o600))
	nsrv := natstest.Server(t)
	env := baseEnv(t)
	env.NATSURL = nsrv.ClientURL()
	env.ConfigPath = models
	require.NoError(t, runApp(t, env))
	// The config is loadable on its own too (and names its tenants).
	m, err := config.LoadModels(models)
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex", "initech"}, m.TenantNames())

	nc, err := nats.Connect(nsrv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A tenant is whose subjects a job is published on (a client
	// WithTenant); "" is the anonymous tenant, which this file runs as the
	// deployments' own keys (unknown_tenants: anonymous).
	submit := func(tenant, prompt string) (*bus.Result, error) {
		c, err := bus.NewClient(nc, bus.WithTenant(tenant))
		require.NoError(t, err)
		return c.Submit(ctx, "gpt", &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt)}}})
	}
	for _, tc := range []struct{ tenant, prompt string }{{"acme", "a1"}, {"globex", "g1"}, {"initech", "i1"}, {"", "n1"}} {
		res, err := submit(tc.tenant, tc.prompt)
		require.NoError(t, err)
		require.Equal(t, bus.StatusOK, res.Status)
	}
	require.Equal(t, []string{"a1"}, ks.prompts("sk-acme"), "acme's jobs use acme's key")
	require.Equal(t, []string{"g1"}, ks.prompts("sk-globex"))
	require.Equal(t, []string{"i1", "n1"}, ks.prompts("sk-default"), "a tenant without a key of its own never gets another tenant's")

	// acme's budget: 30 tokens a window, 14 a job. Two more jobs spend it
	// (14+14+14 = 42), the next is refused before any provider call.
	for _, p := range []string{"a2", "a3"} {
		_, err := submit("acme", p)
		require.NoError(t, err)
	}
	res, err := submit("acme", "a4")
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeBudgetExceeded})
	require.Contains(t, res.Error.Message, "42 of 30 tokens")
	require.Equal(t, []string{"a1", "a2", "a3"}, ks.prompts("sk-acme"))
	// Other tenants are not affected.
	_, err = submit("globex", "g2")
	require.NoError(t, err)

	// Saying "acme" in the body of an anonymous job makes it acme's no
	// more than it makes it anyone's: refused, no provider call.
	sub, err := nc.SubscribeSync("llm.res.spoof.result")
	require.NoError(t, err)
	m2 := nats.NewMsg("llm.req.gpt")
	m2.Header.Set(bus.HeaderMsgID, "spoof")
	m2.Data = []byte(`{"tenant":"acme","messages":[{"role":"user","content":"spoof"}]}`)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, m2)
	require.NoError(t, err)
	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)
	var spoofed bus.Result
	require.NoError(t, bus.JSON.Unmarshal(msg.Data, &spoofed))
	require.Equal(t, bus.CodeInvalidRequest, spoofed.Error.Code)
	require.Equal(t, []string{"a1", "a2", "a3"}, ks.prompts("sk-acme"))
}
