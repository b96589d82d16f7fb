package policy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// Retry.PerKind replaces MaxRetries for the kinds it names: LiteLLM's
// retry_policy (RateLimitErrorRetries, AuthenticationErrorRetries, ...).
func TestRetriesPerKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kind  string
		calls int64
	}{
		{"a kind with more retries than the group", "rate_limited", 5},
		{"a kind with none", "timeout", 1},
		{"a kind not named keeps max_retries", "unavailable", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mock.New(mock.Config{ErrorRate: map[string]float64{tt.kind: 1}})
			o := fast()
			o.Retry.MaxRetries = 1
			o.Retry.PerKind = map[string]int{"rate_limited": 4, "timeout": 0}
			r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
			_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
			require.Error(t, err)
			require.Equal(t, tt.calls, p.Calls())
		})
	}
}

// A retry that can go to another deployment goes at once: the backoff is
// for going back to one that failed.
func TestRetryAtOnceElsewhere(t *testing.T) {
	t.Parallel()
	bad := mock.New(mock.Config{Script: []mock.Step{{Error: "unavailable"}}})
	good := mock.New(mock.Config{})
	o := fast()
	o.Retry.Backoff = BackoffOptions{Initial: time.Hour, Max: time.Hour}
	o.Retry.AtOnceElsewhere = true
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("bad", bad, DeploymentOptions{}), dep("good", good, DeploymentOptions{Priority: 1})}})
	// An hour's backoff would pass this deadline, and the router fails fast
	// rather than wait past it: success means the retry did not wait.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
	require.NoError(t, err)
	require.Equal(t, "good", out.Deployment)
	require.Equal(t, 1, out.Retries)
}

// A failure that excludes the group's last deployment ends the group at
// once: the backoff before a retry that has nowhere to go is not waited.
func TestNoBackoffWhenTheGroupIsExhausted(t *testing.T) {
	t.Parallel()
	p, spare := mock.New(mock.Config{ErrorRate: map[string]float64{"auth": 1}}), mock.New(mock.Config{})
	o := fast()
	o.Retry.Backoff = BackoffOptions{Initial: time.Hour, Max: time.Hour}
	o.Fallbacks = []string{"spare"}
	r := newRouter(t,
		Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}},
		Group{Name: "spare", Options: fast(), Deployments: []Deployment{dep("spare", spare, DeploymentOptions{})}})
	ctx, cancel := context.WithCancel(t.Context()) // no deadline to fail fast against
	defer cancel()
	type result struct {
		out *Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := r.Execute(ctx, &Call{Group: "g", Request: req("x")}, nil)
		done <- result{out, err}
	}()
	select {
	case res := <-done:
		require.NoError(t, res.err)
		require.Equal(t, "spare", res.out.Group)
		require.EqualValues(t, 1, p.Calls())
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatal("waited the backoff of a retry that had no deployment to go to")
	}
}
