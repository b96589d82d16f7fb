package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestReadyzFailsWhileJetStreamWritesFail: /readyz said ready while every
// JetStream write failed. A job runs while the server's store fills up: its
// result cannot be stored, and /readyz says so (503, naming the failure).
// Once space is freed the result is stored and /readyz is ready again, with
// no restart.
func TestReadyzFailsWhileJetStreamWritesFail(t *testing.T) {
	srv := natstest.Server(t, func(o *server.Options) { o.JetStreamMaxStore = 4 << 20 })
	models := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(`
groups:
  slow:
    deployments:
      - {name: m, provider: mock, mock: {ttft: 1s, tokens: 3}}
`), 0o600))
	t.Setenv("SWITCHYARD_METRICS_ADDR", "127.0.0.1:0")
	env := baseEnv(t)
	env.MetricsAddr = "127.0.0.1:0"
	env.NATSURL = srv.ClientURL()
	env.ConfigPath = models
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, env, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Console: io.Discard,
			OnReady: func(_, h string) { addr <- h }})
	}()
	var httpAddr string
	select {
	case httpAddr = <-addr:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := readyz()
	require.Equal(t, http.StatusOK, code)

	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	jctx, jcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer jcancel()
	job, err := c.Publish(jctx, "slow", &bus.Request{ID: "while-full", Messages: []bus.Message{{Role: "user", Content: bus.Text("x")}}})
	require.NoError(t, err)
	defer job.Close()
	// While the job waits for its first token, the store fills up.
	_, err = js.CreateStream(jctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}})
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for {
		if _, err := js.Publish(jctx, "filler", chunk); err != nil {
			require.ErrorContains(t, err, "insufficient resources")
			break
		}
	}
	require.Eventually(t, func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && bytes.Contains([]byte(body), []byte("JetStream writes failing"))
	}, 30*time.Second, 20*time.Millisecond, "unready while the result cannot be stored")

	require.NoError(t, js.DeleteStream(jctx, "FILLER"))
	for {
		_, res, err := job.Next(jctx)
		require.NoError(t, err)
		if res != nil {
			require.Equal(t, bus.StatusOK, res.Status)
			break
		}
	}
	require.Eventually(t, func() bool { code, _ := readyz(); return code == http.StatusOK }, 30*time.Second, 20*time.Millisecond, "ready again by itself")
}
