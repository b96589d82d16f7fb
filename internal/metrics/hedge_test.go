package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestHedgesScraped: every hedge of a job's attempts is counted in
// switchyard_hedges_total by its deployment and outcome (won, cancelled,
// or failed on its own), on the worker's /metrics; primary attempts are
// not hedges.
func TestHedgesScraped(t *testing.T) {
	m := New(nil, nil, nil)
	// A hedge that won, and the late primary it cancelled.
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusOK, Deployment: "b", Attempts: []bus.Attempt{
		{Deployment: "a", ErrorCode: "cancelled", Race: "cancelled"},
		{Deployment: "b", Hedge: true, Race: "won"},
	}}})
	// A primary that won, its hedge cancelled; then a job whose hedge
	// failed before a first token, with no winner.
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusOK, Deployment: "a", Attempts: []bus.Attempt{
		{Deployment: "a", Race: "won"},
		{Deployment: "b", Hedge: true, ErrorCode: "cancelled", Race: "cancelled"},
	}}})
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusError, Error: &bus.Error{Code: bus.CodeProviderUnavailable},
		Attempts: []bus.Attempt{
			{Deployment: "a", ErrorCode: "provider_unavailable"},
			{Deployment: "b", Hedge: true, ErrorCode: "provider_unavailable"},
			{Deployment: "c", Hedge: true, ErrorCode: "provider_unavailable"},
		}}})

	body := scrape(t, m)
	require.ElementsMatch(t, []string{
		`switchyard_hedges_total{deployment="b",group="chat",outcome="won"} 1`,
		`switchyard_hedges_total{deployment="b",group="chat",outcome="cancelled"} 1`,
		`switchyard_hedges_total{deployment="b",group="chat",outcome="failed"} 1`,
		`switchyard_hedges_total{deployment="c",group="chat",outcome="failed"} 1`,
	}, samples(body, "switchyard_hedges_total{"))
	require.Contains(t, body, "# TYPE switchyard_hedges_total counter")
}

// scrape returns what m's /metrics serves.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	// The server's own client: Close closes its idle connections, so no
	// keep-alive goroutine outlives the test (goleak in TestMain).
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// samples returns the lines of body that start with one of prefixes.
func samples(body string, prefixes ...string) []string {
	var got []string
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				got = append(got, line)
				break
			}
		}
	}
	return got
}
