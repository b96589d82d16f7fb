package main

import (
	"context"
	"encoding/json"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/heartbeat"
	"github.com/switchyard/switchyard/internal/natstest"
)

// workerGauges is a worker's registry with the deployment gauges
// internal/metrics exports, set to the given values.
func workerGauges(t *testing.T, learned, maxConc, inFlight map[[2]string]float64) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	for name, vals := range map[string]map[[2]string]float64{famLearnedLimit: learned, famMaxConc: maxConc, famDepInFlight: inFlight} {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, []string{"group", "deployment"})
		for k, v := range vals {
			g.WithLabelValues(k[0], k[1]).Set(v)
		}
		reg.MustRegister(g)
	}
	return reg
}

// TestStatusShowsTheLimitInForcePerDeployment: submit status lists each
// deployment's concurrency limit from the workers' heartbeats, summed over
// the workers: the learned limit of an adaptive deployment (each worker
// learns its own), the configured max_concurrency of another; one with
// neither is not listed.
func TestStatusShowsTheLimitInForcePerDeployment(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := [2]string{"demo", "adaptive"}, [2]string{"demo", "fixed"}
	regs := []*prometheus.Registry{
		workerGauges(t, map[[2]string]float64{a: 17}, map[[2]string]float64{b: 4}, map[[2]string]float64{a: 9, b: 1, {"demo", "free"}: 3}),
		workerGauges(t, map[[2]string]float64{a: 21}, map[[2]string]float64{b: 4}, map[[2]string]float64{a: 12}),
	}
	bctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, reg := range regs {
		wg.Go(func() {
			_ = heartbeat.Run(bctx, js, heartbeat.Config{Gatherer: reg, Groups: []string{"demo"}, Concurrency: 8, Interval: time.Second})
		})
	}
	require.Eventually(t, func() bool {
		ws, err := heartbeat.Read(ctx, js)
		return err == nil && len(ws) == 2
	}, 20*time.Second, 50*time.Millisecond)

	t.Setenv("NATS_URL", srv.ClientURL())
	out, errOut, err := submitCLI(ctx, "status")
	require.NoError(t, err, errOut)
	require.Regexp(t, regexp.MustCompile(`(?m)^GROUP\s+DEPLOYMENT\s+LIMIT\s+KIND\s+PER WORKER\s+WORKERS\s+IN FLIGHT$`), out)
	require.Regexp(t, regexp.MustCompile(`(?m)^demo\s+adaptive\s+38\s+learned\s+17-21\s+2\s+21$`), out)
	require.Regexp(t, regexp.MustCompile(`(?m)^demo\s+fixed\s+8\s+configured\s+4\s+2\s+1$`), out)
	require.NotContains(t, out, "free", "a deployment without a limit is not listed")

	out, errOut, err = submitCLI(ctx, "status", "--json")
	require.NoError(t, err, errOut)
	var st struct {
		Groups []json.RawMessage `json:"groups"`
		Limits []deploymentLimit `json:"deployment_limits"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Equal(t, []deploymentLimit{
		{Group: "demo", Deployment: "adaptive", Kind: "learned", Limit: 38, MinPerWorker: 17, MaxPerWorker: 21, Workers: 2, InFlight: 21},
		{Group: "demo", Deployment: "fixed", Kind: "configured", Limit: 8, MinPerWorker: 4, MaxPerWorker: 4, Workers: 2, InFlight: 1},
	}, st.Limits)
}
