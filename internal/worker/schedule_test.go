package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// gated is a provider whose calls wait at a gate until the test lets them
// through, recording their prompts in call order and how many of each
// prompt's kind (its text before "-") wait at once.
type gated struct {
	inner *mock.Provider
	open  chan struct{} // a receive lets one call through; closed: all

	mu      sync.Mutex
	order   []string
	waiting map[string]int
	most    map[string]int
}

func newGated() *gated {
	return &gated{inner: mock.New(mock.Config{Tokens: 2}), open: make(chan struct{}), waiting: map[string]int{}, most: map[string]int{}}
}

func (g *gated) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	prompt := req.Messages[len(req.Messages)-1].Text()
	kind, _, _ := strings.Cut(prompt, "-")
	g.mu.Lock()
	g.order = append(g.order, prompt)
	g.waiting[kind]++
	g.most[kind] = max(g.most[kind], g.waiting[kind])
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting[kind]--
		g.mu.Unlock()
	}()
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.inner.Stream(ctx, req)
}

func (g *gated) calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.order...)
}

func (g *gated) inGate(kind string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting[kind]
}

func (g *gated) mostAtOnce(kind string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most[kind]
}

// publish publishes a job of class p whose prompt is its id, and returns
// it (read its result with collect).
func publish(t *testing.T, ctx context.Context, c *bus.Client, id string, p bus.Priority) *bus.Job {
	t.Helper()
	req := userReq(id, id)
	req.Priority = p
	no := false
	req.Stream = &no
	job, err := c.Publish(ctx, "demo", req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = job.Close() })
	return job
}

func TestFreeSlotGoesToTheHighestClass(t *testing.T) {
	t.Parallel()
	g := newGated()
	e := setup(t, opts{provider: g, cfg: worker.Config{Concurrency: 1}})
	ctx := ctxT(t, 60*time.Second)

	// The one slot is taken; then every class queues work, lowest first.
	var jobs []*bus.Job
	jobs = append(jobs, publish(t, ctx, e.client, "plug-0", bus.PriorityBatch))
	require.Eventually(t, func() bool { return g.inGate("plug") == 1 }, 10*time.Second, 5*time.Millisecond)
	for i := range 3 {
		for _, p := range []bus.Priority{bus.PriorityBatch, bus.PriorityDefault, bus.PriorityInteractive} {
			jobs = append(jobs, publish(t, ctx, e.client, fmt.Sprintf("%s-%d", p, i), p))
		}
	}
	close(g.open)
	for _, j := range jobs {
		_, res := collect(t, ctx, j)
		require.Equal(t, bus.StatusOK, res.Status, res.Error)
	}
	require.Equal(t, []string{"plug-0",
		"interactive-0", "interactive-1", "interactive-2",
		"default-0", "default-1", "default-2",
		"batch-0", "batch-1", "batch-2"}, g.calls())
}

func TestSlotsKeptForInteractive(t *testing.T) {
	t.Parallel()
	g := newGated()
	// 4 slots, half of them kept for interactive jobs.
	e := setup(t, opts{provider: g, cfg: worker.Config{Concurrency: 4, InteractiveShare: 0.5}})
	ctx := ctxT(t, 60*time.Second)

	var jobs []*bus.Job
	for i := range 8 {
		jobs = append(jobs, publish(t, ctx, e.client, fmt.Sprintf("batch-%d", i), bus.PriorityBatch))
	}
	require.Eventually(t, func() bool { return g.inGate("batch") == 2 }, 10*time.Second, 5*time.Millisecond)
	// The two other slots wait for interactive jobs, and take them at once
	// though six batch jobs are queued.
	for i := range 2 {
		jobs = append(jobs, publish(t, ctx, e.client, fmt.Sprintf("interactive-%d", i), bus.PriorityInteractive))
	}
	require.Eventually(t, func() bool { return g.inGate("interactive") == 2 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 2, g.inGate("batch"))
	close(g.open)
	for _, j := range jobs {
		_, res := collect(t, ctx, j)
		require.Equal(t, bus.StatusOK, res.Status, res.Error)
	}
	require.Equal(t, 2, g.mostAtOnce("batch"), "batch jobs never held more than the slots not kept for interactive")
}

func TestTenantsShareAClass(t *testing.T) {
	t.Parallel()
	g := newGated()
	e := setup(t, opts{provider: g, cfg: worker.Config{Concurrency: 1, InteractiveShare: -1, TenantNames: []string{"a", "b"}}})
	ctx := ctxT(t, 60*time.Second)
	a, b := tenantClient(t, e, "a"), tenantClient(t, e, "b")

	var jobs []*bus.Job
	jobs = append(jobs, publish(t, ctx, a, "plug-0", bus.PriorityBatch))
	require.Eventually(t, func() bool { return g.inGate("plug") == 1 }, 10*time.Second, 5*time.Millisecond)
	// a queues a backlog, then b a few jobs: b's do not wait for a's.
	for i := range 12 {
		jobs = append(jobs, publish(t, ctx, a, fmt.Sprintf("a-%d", i), bus.PriorityBatch))
	}
	for i := range 4 {
		jobs = append(jobs, publish(t, ctx, b, fmt.Sprintf("b-%d", i), bus.PriorityBatch))
	}
	close(g.open)
	for _, j := range jobs {
		_, res := collect(t, ctx, j)
		require.Equal(t, bus.StatusOK, res.Status, res.Error)
	}
	calls := g.calls()
	require.Len(t, calls, 17)
	var tenants string
	for _, c := range calls[1:9] {
		tenants += c[:1]
	}
	// The plug was a's: b has the next turn.
	require.Equal(t, "babababa", tenants, "the first calls after the plug alternate between the tenants: %v", calls)
}

func TestBodyPriorityMustMatchTheSubject(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 2}, cfg: worker.Config{Classes: map[string]bus.Priority{"demo": bus.PriorityBatch}}})
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		body bus.Priority
		ok   bool
	}{
		{"", true}, {bus.PriorityDefault, true}, {bus.PriorityBatch, true}, // the group's bare subject is batch
		{bus.PriorityInteractive, false}, {"urgent", false},
	} {
		// Published raw on the bare subject, as any NATS client could.
		body := fmt.Sprintf(`{"id":"raw-%s","stream":false,"messages":[{"role":"user","content":"hi"}],"priority":%q}`, cmpStr(string(tc.body), "none"), tc.body)
		if tc.body == "" {
			body = `{"id":"raw-none","stream":false,"messages":[{"role":"user","content":"hi"}]}`
		}
		sub, err := e.nc.SubscribeSync(e.client.Subjects().Reply("raw-"+cmpStr(string(tc.body), "none")) + ".result")
		require.NoError(t, err)
		_, err = e.js.Publish(ctx, e.client.Subjects().Request("demo"), []byte(body))
		require.NoError(t, err)
		m, err := sub.NextMsg(20 * time.Second)
		require.NoError(t, err)
		res, err := e.client.DecodeResult(ctx, m.Header, m.Data)
		require.NoError(t, err)
		if tc.ok {
			require.Equal(t, bus.StatusOK, res.Status, "%s: %v", tc.body, res.Error)
		} else {
			require.Equal(t, bus.StatusError, res.Status, tc.body)
			require.Equal(t, bus.CodeInvalidRequest, res.Error.Code)
		}
		_ = sub.Unsubscribe()
	}
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
