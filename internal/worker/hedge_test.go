package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// hedgingEnv is a worker whose demo group hedges after 50ms: mock-a's
// first token comes after 400ms, mock-b's at once.
func hedgingEnv(t *testing.T) (*env, *mock.Provider, *mock.Provider) {
	t.Helper()
	e := setup(t, opts{noStart: true})
	a := mock.New(mock.Config{Text: "slow answer from a", TTFT: 400 * time.Millisecond})
	b := mock.New(mock.Config{Text: "fast answer from b"})
	r, err := policy.NewRouter([]policy.Group{{Name: "demo",
		Options: policy.GroupOptions{Hedge: &policy.HedgeOptions{Delay: 50 * time.Millisecond}},
		Deployments: []policy.Deployment{
			{Name: "mock-a", Model: "mock-1", Provider: a},
			{Name: "mock-b", Model: "mock-1", Provider: b, Options: policy.DeploymentOptions{Priority: 1}},
		}}})
	require.NoError(t, err)
	e.router = r
	e.startWorker(worker.Config{})
	return e, a, b
}

func TestInteractiveJobIsHedged(t *testing.T) {
	t.Parallel()
	e, a, b := hedgingEnv(t)
	ctx := ctxT(t, 30*time.Second)
	req := userReq("hedged-1", "hi")
	req.Priority = bus.PriorityInteractive
	job, err := e.client.Publish(ctx, "demo", req)
	require.NoError(t, err)
	defer job.Close()
	evs, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, res.Error)
	require.Equal(t, "mock-b", res.Deployment)
	require.Equal(t, "fast answer from b", res.Text)
	// The client's stream is the winner's alone.
	require.Equal(t, "fast answer from b", text(evs))
	for _, ev := range evs {
		require.NotEqual(t, bus.EventRestart, ev.Type)
		if ev.Deployment != "" {
			require.Equal(t, "mock-b", ev.Deployment, "event %s of the cancelled attempt", ev.Type)
		}
	}
	require.Len(t, res.Attempts, 2)
	require.Equal(t, bus.Attempt{Deployment: "mock-a", ErrorCode: "cancelled", Race: "cancelled"},
		bus.Attempt{Deployment: res.Attempts[0].Deployment, ErrorCode: res.Attempts[0].ErrorCode, Race: res.Attempts[0].Race, Hedge: res.Attempts[0].Hedge})
	require.Equal(t, bus.Attempt{Deployment: "mock-b", Hedge: true, Race: "won"},
		bus.Attempt{Deployment: res.Attempts[1].Deployment, ErrorCode: res.Attempts[1].ErrorCode, Race: res.Attempts[1].Race, Hedge: res.Attempts[1].Hedge})
	require.EqualValues(t, 1, a.Calls())
	require.EqualValues(t, 1, b.Calls())
}

func TestDefaultAndBatchJobsAreNotHedged(t *testing.T) {
	t.Parallel()
	e, a, b := hedgingEnv(t)
	ctx := ctxT(t, 30*time.Second)
	for _, p := range []bus.Priority{bus.PriorityDefault, bus.PriorityBatch} {
		req := userReq("plain-"+string(p), "hi")
		req.Priority = p
		job, err := e.client.Publish(ctx, "demo", req)
		require.NoError(t, err)
		_, res := collect(t, ctx, job)
		_ = job.Close()
		require.Equal(t, bus.StatusOK, res.Status, res.Error)
		require.Equal(t, "mock-a", res.Deployment, p)
		require.Len(t, res.Attempts, 1, p)
		require.False(t, res.Attempts[0].Hedge)
		require.Empty(t, res.Attempts[0].Race)
	}
	require.EqualValues(t, 2, a.Calls())
	require.EqualValues(t, 0, b.Calls())
}
