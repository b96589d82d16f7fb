package policy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// TestCallerEndSparesBreaker: a call that ends because its caller did (the
// job's deadline passed, the job was cancelled) says nothing of the
// deployment and must not open its breaker. Seen in the container suite: 49
// jobs whose 3 s deadline passed while a NATS node was cut off opened the
// fleet-wide breaker of a healthy deployment, and the next 290 jobs failed
// provider_unavailable without a call.
func TestCallerEndSparesBreaker(t *testing.T) {
	t.Parallel()
	p := mock.New(mock.Config{Tokens: 50, ChunkDelay: 20 * time.Millisecond})
	o := fast()
	o.Retry.MaxRetries = -1
	o.Breaker = BreakerOptions{Failures: 2, Period: time.Minute, Cooldown: time.Minute}
	r := newRouter(t, Group{Name: "g", Options: o, Deployments: []Deployment{dep("a", p, DeploymentOptions{})}})
	st := r.cfg.Load().groups["g"].deps[0].state
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		_, err := r.Execute(ctx, &Call{Group: "g", Request: req("deadline")}, nil)
		cancel()
		require.Error(t, err, "the deadline ends the call mid-stream")
	}
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(30*time.Millisecond, cancel)
		_, err := r.Execute(ctx, &Call{Group: "g", Request: req("cancel")}, nil)
		cancel()
		require.Error(t, err, "the cancel ends the call mid-stream")
	}
	require.True(t, st.breaker.IsClosed(), "callers that gave up are no failures of the deployment")
	_, err := r.Execute(t.Context(), &Call{Group: "g", Request: req("x")}, nil)
	require.NoError(t, err)
}
