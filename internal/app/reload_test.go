package app_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

func TestSIGHUPReloadsTheModelFile(t *testing.T) {
	models := filepath.Join(t.TempDir(), "models.yaml")
	write := func(text string) {
		require.NoError(t, os.WriteFile(models, []byte(`
groups:
  demo:
    deployments:
      - {name: m, provider: mock, mock: {text: "`+text+`"}}
`), 0o600))
	}
	write("before reload")
	srv := natstest.Server(t)
	env := baseEnv(t)
	env.NATSURL = srv.ClientURL()
	env.ConfigPath = models
	require.NoError(t, runApp(t, env))
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ask := func() string {
		res, err := c.Submit(ctx, "demo", &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text("x")}}})
		require.NoError(t, err)
		return res.Text
	}
	require.Equal(t, "before reload", ask())
	write("after reload")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return ask() == "after reload" }, 10*time.Second, 50*time.Millisecond)
}
