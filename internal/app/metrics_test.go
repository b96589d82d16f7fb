package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/bus"
)

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// value sums the samples of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sum := 0.0
	for _, m := range f.Metric {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricsMoveAfterJobs(t *testing.T) {
	t.Setenv("SWITCHYARD_METRICS_ADDR", "127.0.0.1:0")
	t.Setenv("SWITCHYARD_EMBEDDED_ADDR", "127.0.0.1:-1")
	t.Setenv("SWITCHYARD_DATA_DIR", t.TempDir())
	env, err := config.LoadEnv()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	type ready struct{ url, http string }
	rc := make(chan ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, env, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Console: io.Discard,
			OnReady: func(u, h string) { rc <- ready{u, h} }})
	}()
	var r ready
	select {
	case r = <-rc:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	// Health endpoints.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + r.http + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
	before := scrape(t, r.http)
	require.Equal(t, 0.0, value(before, "switchyard_breaker_open", map[string]string{"group": "demo"}))

	nc, err := nats.Connect(r.url)
	require.NoError(t, err)
	defer nc.Close()
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	jctx, jcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer jcancel()
	for range 3 {
		_, err := c.Submit(jctx, "demo", &bus.Request{Messages: []bus.Message{{Role: "user", Content: bus.Text("count me")}}})
		require.NoError(t, err)
	}
	_, err = c.Submit(jctx, "demo", &bus.Request{Messages: []bus.Message{{Role: "wizard", Content: bus.Text("x")}}})
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeInvalidRequest})

	// A job is counted right after its result is published (and acked), so
	// the client can see the result a moment before the counter moves.
	var after map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		after = scrape(t, r.http)
		return value(after, "switchyard_jobs_total", map[string]string{"group": "demo", "status": "ok"}) == 3 &&
			value(after, "switchyard_jobs_total", map[string]string{"group": "demo", "code": "invalid_request"}) == 1
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 3.0, value(after, "gen_ai_server_time_to_first_token_seconds", map[string]string{"group": "demo"}))
	require.Equal(t, 3.0, value(after, "gen_ai_client_token_usage", map[string]string{"gen_ai_token_type": "output", "gen_ai_provider_name": "mock"}))
	require.Equal(t, 3.0, value(after, "switchyard_attempts_total", map[string]string{"group": "demo", "code": ""}))
	require.Equal(t, 0.0, value(after, "switchyard_jobs_in_flight", map[string]string{"group": "demo"}))
	require.Equal(t, 0.0, value(after, "switchyard_queue_pending", map[string]string{"group": "demo"}))
	require.Contains(t, strings.Join(keys(after), " "), "switchyard_job_duration_seconds")
}

func keys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
