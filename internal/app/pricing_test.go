package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// A deployment's price overrides, a price of 0 included, are what cost_usd
// is computed from (they used to be ignored for the catalogue's prices).
func TestPriceOverridesReachCostUSD(t *testing.T) {
	models := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(`
groups:
  list:
    deployments:
      - {name: list, provider: mock, model: gpt-4o}
  free:
    deployments:
      - {name: free, provider: mock, model: gpt-4o, input_cost_per_mtok: 0, output_cost_per_mtok: 0}
  custom:
    deployments:
      - {name: custom, provider: mock, model: gpt-4o, input_cost_per_mtok: 1, output_cost_per_mtok: 3}
`), 0o600))
	nsrv := natstest.Server(t)
	env := baseEnv(t)
	env.NATSURL = nsrv.ClientURL()
	env.ConfigPath = models
	require.NoError(t, runApp(t, env))

	nc, err := nats.Connect(nsrv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(group string) *bus.Result {
		res, err := c.Submit(ctx, group, &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text("price me")}}})
		require.NoError(t, err)
		require.NotNil(t, res.Usage)
		require.Positive(t, res.Usage.PromptTokens)
		require.Positive(t, res.Usage.CompletionTokens)
		return res
	}
	listed, ok := catalog.Lookup("gpt-4o")
	require.True(t, ok)
	res := run("list")
	require.InDelta(t, catalog.Cost(listed, usage(res)), res.CostUSD, 1e-12, "no override: the catalogue's price")
	require.Positive(t, res.CostUSD)

	require.Zero(t, run("free").CostUSD, "a price of 0 is a price")

	res = run("custom")
	want := (float64(res.Usage.PromptTokens)*1 + float64(res.Usage.CompletionTokens)*3) / 1e6
	require.InDelta(t, want, res.CostUSD, 1e-12)
}

func usage(res *bus.Result) llm.Usage {
	return llm.Usage{PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens, TotalTokens: res.Usage.TotalTokens}
}
