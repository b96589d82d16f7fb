package policy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func TestStatusReportsBreakerState(t *testing.T) {
	t.Parallel()
	bad := mock.New(mock.Config{ErrorRate: map[string]float64{"unavailable": 1}})
	r, err := NewRouter([]Group{{
		Name: "g",
		Options: GroupOptions{
			Retry:   RetryOptions{MaxRetries: -1},
			Breaker: BreakerOptions{Failures: 2, Period: time.Minute, Cooldown: time.Minute},
		},
		Deployments: []Deployment{{Name: "bad", Model: "m", Provider: bad}},
	}})
	require.NoError(t, err)
	require.Equal(t, []DeploymentStatus{{Group: "g", Deployment: "bad", Model: "m", Provider: "mock", Breaker: BreakerClosed}}, r.Status())
	req := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}}
	for range 2 {
		_, err := r.Execute(context.Background(), &Call{Group: "g", Request: req}, func(Event) {})
		require.Error(t, err)
	}
	require.Equal(t, BreakerOpen, r.Status()[0].Breaker)
}
