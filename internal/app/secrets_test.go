package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// forms are the ways a vendor echoed a key in the issue: raw, upper case,
// URL-query-escaped, base64.
func forms(key string) []string {
	return []string{key, strings.ToUpper(key), url.QueryEscape(key), base64.StdEncoding.EncodeToString([]byte(key))}
}

// A provider that echoes the key it was sent, in every form, in its error
// body: none of them reaches a result, an attempt or a log line.
func TestEchoedKeysNeverLeaveTheWorker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		b, _ := json.Marshal(map[string]any{"error": map[string]any{
			"message": "Incorrect API key provided: " + strings.Join(forms(key), " / "),
			"type":    "invalid_request_error", "code": "invalid_api_key",
		}})
		w.Write(b) //nolint:errcheck // test server
	}))
	t.Cleanup(srv.Close)
	const fleetKey, acmeKey = "sk-fleet-SECRET+/0123456789", "sk-acme-SECRET=0123456789ab"
	t.Setenv("FLEET_KEY", fleetKey)
	t.Setenv("ACME_KEY", acmeKey)
	models := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(fmt.Sprintf(`
unknown_tenants: anonymous
groups:
  gpt:
    retry: {max_retries: 0}
    deployments:
      - {name: oa, provider: openai, model: gpt-4o-mini, base_url: %s/v1, api_key: "${FLEET_KEY}"}
tenants:
  acme:
    keys: {oa: "${ACME_KEY}"}
`, srv.URL)), 0o600))
	nsrv := natstest.Server(t)
	env := baseEnv(t)
	env.NATSURL = nsrv.ClientURL()
	env.ConfigPath = models
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- app.Run(ctx, env, app.Options{
			Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Console: logs, OnReady: func(string, string) { close(ready) },
		})
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	nc := natstest.Connect(t, nsrv)
	jctx, jcancel := context.WithTimeout(ctx, 20*time.Second)
	defer jcancel()
	var texts []string
	for _, tenant := range []string{"", "acme"} {
		c, err := bus.NewClient(nc, bus.WithTenant(tenant), bus.WithEncoding(bus.JSON))
		require.NoError(t, err)
		var events []string
		res, err := c.Submit(jctx, "gpt", &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text("hi")}}},
			bus.OnEvent(func(e *bus.Event) { events = append(events, e.Reason) }))
		require.ErrorIs(t, err, &bus.Error{Code: bus.CodeAuth}, "tenant %q", tenant)
		require.Contains(t, res.Error.Message, "[redacted]")
		raw, err := json.Marshal(res)
		require.NoError(t, err)
		texts = append(texts, string(raw), strings.Join(events, "\n"))
	}
	texts = append(texts, logs.String())
	for _, text := range texts {
		for _, key := range []string{fleetKey, acmeKey} {
			for _, f := range forms(key) {
				require.NotContains(t, strings.ToLower(text), strings.ToLower(f), "a form of %s leaked", key)
			}
		}
	}
}

// The worker's settings never print a NATS password, in NATS_URL or beside
// it, not even when the connection fails.
func TestNATSCredentialsNeverLogged(t *testing.T) {
	env := baseEnv(t)
	const pw, token = "nats-PASSWORD-42", "nats-TOKEN-4242"
	env.NATSURL = "nats://worker:" + pw + "@127.0.0.1:1,nats://" + token + "@127.0.0.1:2"
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := app.Run(ctx, env, app.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Console: logs})
	require.Error(t, err)
	for _, text := range []string{err.Error(), logs.String()} {
		require.NotContains(t, text, pw)
		require.NotContains(t, text, token)
	}
	require.Contains(t, err.Error(), "127.0.0.1:1", "the error still says where")
}
