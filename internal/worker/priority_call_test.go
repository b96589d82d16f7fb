package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// priorityRecorder is the router, recording the Priority of each call it
// runs by the job's prompt.
type priorityRecorder struct {
	*policy.Router
	mu   sync.Mutex
	seen map[string]policy.Priority
}

func (p *priorityRecorder) Execute(ctx context.Context, c *policy.Call, emit func(policy.Event)) (*policy.Outcome, error) {
	p.mu.Lock()
	p.seen[c.Request.Messages[len(c.Request.Messages)-1].Text()] = c.Priority
	p.mu.Unlock()
	return p.Router.Execute(ctx, c, emit)
}

// TestCallCarriesTheJobsClass: the policy.Call a job runs as says its
// class, the one its subject (or the group's bare-subject class) gave it,
// through the chain's middlewares.
func TestCallCarriesTheJobsClass(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	var groups []policy.Group
	for _, g := range []string{"demo", "bulk"} {
		groups = append(groups, policy.Group{Name: g, Deployments: []policy.Deployment{{Name: "mock-" + g, Model: "mock-1", Provider: mock.New(mock.Config{})}}})
	}
	r, err := policy.NewRouter(groups)
	require.NoError(t, err)
	rec := &priorityRecorder{Router: r, seen: map[string]policy.Priority{}}
	w, err := worker.New(natstest.Connect(t, e.srv), rec, worker.Config{Groups: []string{"demo", "bulk"},
		Classes: map[string]bus.Priority{"bulk": bus.PriorityBatch}, FetchWait: 300 * time.Millisecond, Logger: cmpLogger(nil)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready")
	}
	tctx := ctxT(t, 30*time.Second)
	for _, j := range []struct {
		group, id string
		p         bus.Priority
	}{
		{"demo", "i-1", bus.PriorityInteractive},
		{"demo", "d-1", ""},
		{"demo", "b-1", bus.PriorityBatch},
		{"bulk", "bare-bulk-1", ""},
	} {
		req := userReq(j.id, j.id)
		req.Priority = j.p
		job, err := e.client.Publish(tctx, j.group, req)
		require.NoError(t, err)
		_, res := collect(t, tctx, job)
		job.Close()
		require.Equal(t, bus.StatusOK, res.Status, j.id)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, map[string]policy.Priority{
		"i-1": policy.PriorityInteractive, "d-1": policy.PriorityDefault, "b-1": policy.PriorityBatch,
		"bare-bulk-1": policy.PriorityBatch,
	}, rec.seen)
}
