package worker_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// max_cost_usd on the wire bounds the job as Call.MaxCostUSD does: a job
// whose worst case is above it is refused before any provider call; one
// within it runs; a negative bound is bad input.
func TestMaxCostUSDOnTheWire(t *testing.T) {
	t.Parallel()
	f := newFleetEnv(t)
	p := mock.New(mock.Config{Text: "fine", Tokens: 2})
	w := f.newWorker([]policy.Group{{Name: "priced", Deployments: []policy.Deployment{{
		Name: "d", Model: "m", Provider: p,
		Options: policy.DeploymentOptions{InputCostPerMTok: ptr(10.0), OutputCostPerMTok: ptr(30.0)},
	}}}}, false)
	f.run(w, worker.Config{})
	msgs := []bus.Message{{Role: "user", Content: bus.Text("hello")}}

	// 1,000 output tokens at $30/Mtok are $0.03 at most.
	res := f.submit(t.Context(), "priced",
		&bus.Request{ID: "too-dear", Messages: msgs, MaxTokens: ptr(1000), MaxCostUSD: 0.001},
		&bus.Request{ID: "affordable", Messages: msgs, MaxTokens: ptr(1000), MaxCostUSD: 0.5},
		&bus.Request{ID: "negative", Messages: msgs, MaxCostUSD: -1},
	)
	require.Equal(t, bus.StatusError, res[0].Status)
	require.Equal(t, bus.CodeBudgetExceeded, res[0].Error.Code)
	require.Empty(t, res[0].Attempts)
	require.Equal(t, bus.StatusOK, res[1].Status)
	require.Equal(t, bus.StatusError, res[2].Status)
	require.Equal(t, bus.CodeInvalidRequest, res[2].Error.Code)
	require.Contains(t, res[2].Error.Message, "max_cost_usd")
	require.EqualValues(t, 1, p.Calls(), "only the affordable job reached the provider")
}
