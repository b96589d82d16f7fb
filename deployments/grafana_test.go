package deployments

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// metricLabels is the worker's Prometheus contract (issue 7): every metric
// the dashboard may query, with its labels; true marks a histogram.
var metricLabels = map[string]struct {
	labels    []string
	histogram bool
}{
	"switchyard_jobs_total":                     {labels: []string{"group", "class", "status", "code"}},
	"switchyard_job_duration_seconds":           {labels: []string{"group", "class"}, histogram: true},
	"switchyard_queue_wait_seconds":             {labels: []string{"group", "class"}, histogram: true},
	"switchyard_jobs_in_flight":                 {labels: []string{"group"}},
	"switchyard_queue_pending":                  {labels: []string{"group"}},
	"switchyard_attempts_total":                 {labels: []string{"group", "deployment", "code"}},
	"switchyard_retries_total":                  {labels: []string{"group", "deployment"}},
	"switchyard_hedges_total":                   {labels: []string{"group", "deployment", "outcome"}},
	"switchyard_fallbacks_total":                {labels: []string{"group"}},
	"switchyard_restarts_total":                 {labels: []string{"group", "reason"}},
	"switchyard_breaker_open":                   {labels: []string{"deployment"}},
	"switchyard_cost_usd_total":                 {labels: []string{"group", "deployment"}},
	"gen_ai_client_token_usage":                 {labels: []string{"gen_ai_token_type", "gen_ai_request_model", "gen_ai_provider_name"}, histogram: true},
	"gen_ai_server_time_to_first_token_seconds": {labels: []string{"gen_ai_request_model", "group", "deployment"}, histogram: true},
	"gen_ai_client_operation_duration_seconds":  {labels: []string{"gen_ai_request_model", "gen_ai_provider_name", "error_type"}, histogram: true},
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
}

var (
	metricRef   = regexp.MustCompile(`\b((?:switchyard|gen_ai)_[a-z0-9_]+?)(_bucket|_sum|_count)?\b(\{[^}]*\})?`)
	matcherName = regexp.MustCompile(`([a-z_][a-z0-9_]*)\s*(=~|!~|!=|=)`)
	byClause    = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
)

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("grafana", "switchyard.json"))
	require.NoError(t, err)
	var dash struct {
		UID        string         `json:"uid"`
		Title      string         `json:"title"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	require.NotEmpty(t, dash.UID)

	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	require.Subset(t, vars, []string{"datasource", "group", "deployment"})

	ids := map[int]bool{}
	used := map[string]bool{}
	var titles []string
	for _, p := range dash.Panels {
		require.False(t, ids[p.ID], "panel id %d repeats", p.ID)
		ids[p.ID] = true
		require.Positive(t, p.GridPos.W, p.Title)
		require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "%s overflows the grid", p.Title)
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		require.NotNil(t, p.Datasource, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, "%s: use the datasource variable", p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, m := range checkExpr(t, p.Title, tg.Expr) {
				used[m] = true
			}
		}
	}
	for m := range metricLabels {
		require.True(t, used[m], "no panel shows %s", m)
	}
	// The panels the issue asks for.
	for _, want := range []string{
		"Jobs by status", "Job errors by code", "Time to first token", "Job duration",
		"Queue pending", "Queue wait", "Jobs in flight", "Tokens / s", "Cost / h by deployment",
		"Retries, fallbacks, restarts", "Circuit breakers",
	} {
		require.Contains(t, titles, want)
	}
}

// checkExpr checks that expr names only known metrics, with histogram
// suffixes only on histograms, and matches and groups by labels those
// metrics have. It returns the metrics used.
func checkExpr(t *testing.T, title, expr string) []string {
	t.Helper()
	require.NotEmpty(t, expr, title)
	var metrics []string
	labels := map[string]bool{"le": true}
	for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
		name, suffix, sel := m[1], m[2], m[3]
		if allLabels()[name+suffix] {
			continue // a gen_ai_* label in a by clause, not a metric
		}
		def, ok := metricLabels[name]
		require.True(t, ok, "%s: unknown metric %s in %q", title, name, expr)
		if def.histogram {
			require.NotEmpty(t, suffix, "%s: histogram %s needs _bucket, _sum or _count", title, name)
		} else {
			require.Empty(t, suffix, "%s: %s is not a histogram", title, name)
		}
		for _, l := range matcherName.FindAllStringSubmatch(sel, -1) {
			require.Contains(t, def.labels, l[1], "%s: %s has no label %s", title, name, l[1])
		}
		for _, l := range def.labels {
			labels[l] = true
		}
		metrics = append(metrics, name)
	}
	require.NotEmpty(t, metrics, "%s: %q queries no Switchyard metric", title, expr)
	for _, by := range byClause.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(by[1], ",") {
			l = strings.TrimSpace(l)
			require.True(t, labels[l], "%s: groups by %s, which none of %v has", title, l, metrics)
		}
	}
	if strings.Contains(expr, "histogram_quantile") {
		require.True(t, slices.ContainsFunc(byClause.FindAllStringSubmatch(expr, -1), func(m []string) bool {
			return strings.Contains(m[1], "le")
		}), "%s: histogram_quantile without le in the by clause", title)
	}
	return metrics
}

func allLabels() map[string]bool {
	ls := map[string]bool{}
	for _, def := range metricLabels {
		for _, l := range def.labels {
			ls[l] = true
		}
	}
	return ls
}
