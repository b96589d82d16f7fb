package metrics

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestCostCountsEveryJobThatSpent: switchyard_cost_usd_total and the
// token histogram count what a job spent whether it ended ok or not. A
// structured job that was re-asked until validation gave up paid for
// every answer; it used to count for nothing, as if failures were free.
func TestCostCountsEveryJobThatSpent(t *testing.T) {
	m := New(nil, nil, nil)
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusOK, Deployment: "a", Model: "m",
		CostUSD: 0.25, Usage: &bus.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}})
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusError, Deployment: "a", Model: "m",
		Error: &bus.Error{Code: bus.CodeValidationFailed}, CostUSD: 0.5,
		Usage: &bus.Usage{PromptTokens: 30, CompletionTokens: 15, TotalTokens: 45}}})
	// A cached answer costs nothing; a job refused before any call has no
	// cost or usage at all.
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusOK, Deployment: "a", Model: "m", Cached: true}})
	m.JobDone(worker.JobReport{Group: "chat", Result: &bus.Result{Status: bus.StatusError, Error: &bus.Error{Code: bus.CodeBudgetExceeded}}})

	body := scrape(t, m)
	cost := samples(body, "switchyard_cost_usd_total{")
	tokens := samples(body, "gen_ai_client_token_usage_count{", "gen_ai_client_token_usage_sum{")
	require.Equal(t, []string{`switchyard_cost_usd_total{deployment="a",group="chat"} 0.75`}, cost)
	require.ElementsMatch(t, []string{
		`gen_ai_client_token_usage_sum{gen_ai_provider_name="",gen_ai_request_model="m",gen_ai_token_type="input"} 40`,
		`gen_ai_client_token_usage_count{gen_ai_provider_name="",gen_ai_request_model="m",gen_ai_token_type="input"} 2`,
		`gen_ai_client_token_usage_sum{gen_ai_provider_name="",gen_ai_request_model="m",gen_ai_token_type="output"} 20`,
		`gen_ai_client_token_usage_count{gen_ai_provider_name="",gen_ai_request_model="m",gen_ai_token_type="output"} 2`,
	}, tokens)
}
