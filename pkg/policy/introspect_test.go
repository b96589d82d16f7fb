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

func TestStatusReportsLimitsAndTheMinutesUse(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	r, err := NewRouter([]Group{{
		Name:        "g",
		Deployments: []Deployment{{Name: "d", Model: "m", Provider: mock.New(mock.Config{Tokens: 2}), Options: DeploymentOptions{RPM: 10, TPM: 1000, MaxConcurrency: 4}}},
	}}, WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	req := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hello there"}}}
	for range 3 {
		_, err := r.Execute(context.Background(), &Call{Group: "g", Request: req}, func(Event) {})
		require.NoError(t, err)
	}
	st := r.Status()[0]
	require.Equal(t, [3]int{4, 10, 1000}, [3]int{st.MaxConcurrency, st.RPM, st.TPM})
	require.Equal(t, 3, st.Requests)
	require.Positive(t, st.Tokens)
	now = now.Add(time.Minute) // a new minute: nothing used yet
	st = r.Status()[0]
	require.Zero(t, st.Requests)
	require.Zero(t, st.Tokens)
}
