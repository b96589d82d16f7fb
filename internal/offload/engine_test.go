package offload_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/anthropic"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/gemini"
	"github.com/switchyard/switchyard/pkg/llm/openai"
	"github.com/switchyard/switchyard/pkg/policy"
)

// vendor is one vendor's replay and provider.
type vendor struct {
	name  string
	start func(testing.TB) *vendortest.Batches
	new   func(t *testing.T, url string) llm.Batcher
	model string
}

var vendors = []vendor{
	{"openai", vendortest.OpenAIBatches, func(t *testing.T, url string) llm.Batcher {
		c, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: url})
		require.NoError(t, err)
		return c
	}, "gpt-4o-mini"},
	{"anthropic", vendortest.AnthropicBatches, func(t *testing.T, url string) llm.Batcher {
		c, err := anthropic.New(anthropic.Options{APIKey: "sk-ant-test", BaseURL: url})
		require.NoError(t, err)
		return c
	}, "claude-haiku-4-5"},
	{"gemini", vendortest.GeminiBatches, func(t *testing.T, url string) llm.Batcher {
		c, err := gemini.New(t.Context(), gemini.Options{APIKey: "gm-test", BaseURL: url})
		require.NoError(t, err)
		return c
	}, "gemini-2.5-flash"},
}

// host records what the engine asks of the worker.
type host struct {
	mu        sync.Mutex
	answers   map[string][]*offload.Answer
	live      map[string][]string
	cancelled map[string]bool
	liveErr   error
}

func newHost() *host {
	return &host{answers: map[string][]*offload.Answer{}, live: map[string][]string{}, cancelled: map[string]bool{}}
}

type body struct {
	Prompt string `json:"prompt"`
}

func (h *host) Request(l *offload.Line) (*llm.Request, error) {
	var b body
	if err := json.Unmarshal(l.Data, &b); err != nil {
		return nil, err
	}
	return &llm.Request{MaxTokens: 50, Messages: []llm.Message{{Role: llm.RoleUser, Content: b.Prompt}}}, nil
}

func (h *host) Answer(_ context.Context, l *offload.Line, a *offload.Answer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers[l.Job] = append(h.answers[l.Job], a)
	return nil
}

func (h *host) Cancelled(l *offload.Line) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cancelled[l.Job]
}

func (h *host) Live(_ context.Context, l *offload.Line, why string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.liveErr != nil {
		return h.liveErr
	}
	h.live[l.Job] = append(h.live[l.Job], why)
	return nil
}

// cancel marks jobs cancelled.
func (h *host) cancel(jobs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range jobs {
		h.cancelled[j] = true
	}
}

// answered is the number of jobs answered or run live.
func (h *host) answered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.answers) + len(h.live)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t       *testing.T
	js      jetstream.JetStream
	vendor  *vendortest.Batches
	batcher llm.Batcher
	target  policy.BatchTarget
	clock   *clock
}

func setup(t *testing.T, v vendor, after time.Duration) *fixture {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	replay := v.start(t)
	b := v.new(t, replay.URL)
	info, ok := catalog.Lookup(v.model)
	require.True(t, ok, v.model)
	return &fixture{
		t: t, js: js, vendor: replay, batcher: b, clock: &clock{now: time.Now()},
		target: policy.BatchTarget{
			Group: "demo", Deployment: v.name + "-batch", Model: v.model, Batcher: b, Info: info,
			Options: policy.VendorBatchOptions{After: after, MaxWait: 24 * time.Hour},
		},
	}
}

func (f *fixture) engine(h offload.Host, owner string) *offload.Engine {
	return f.engineWith(h, owner, f.batcher, bus.Subjects{}, bus.Subjects{Tenant: "acme"})
}

// engineWith is an engine of owner for namespaces whose demo group's
// target sends through b.
func (f *fixture) engineWith(h offload.Host, owner string, b llm.Batcher, namespaces ...bus.Subjects) *offload.Engine {
	return offload.New(f.js, namespaces,
		func(_, group string) (policy.BatchTarget, bool) {
			tg := f.target
			tg.Batcher = b
			return tg, group == "demo"
		}, h,
		offload.Config{Owner: owner, Lease: 30 * time.Second, Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// sent adds n lines to a new engine of h, sends them as one batch that the
// vendor holds in progress, and returns the engine, the jobs and the batch.
func (f *fixture) sent(h *host, n int) (*offload.Engine, []string, vendortest.ReplayedBatch) {
	f.t.Helper()
	f.vendor.Hold()
	e := f.engine(h, "w1")
	ids := f.add(e, "", 0, n)
	f.clock.Add(time.Second)
	e.Tick(f.t.Context())
	created := f.vendor.Created()
	require.Len(f.t, created, 1)
	require.Len(f.t, created[0].Lines, n)
	return e, ids, created[0]
}

// add records n lines job-<from> ... of tenant.
func (f *fixture) add(e *offload.Engine, tenant string, from, n int) []string {
	f.t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("job-%d", i)
		data, _ := json.Marshal(body{Prompt: fmt.Sprintf("q%d", i)})
		require.NoError(f.t, e.Add(f.t.Context(), &offload.Line{Job: id, Group: "demo", Tenant: tenant, Data: data, Added: f.clock.Now()}))
		ids = append(ids, id)
	}
	return ids
}

// run ticks e until h has n jobs answered (bounded).
func (f *fixture) run(e *offload.Engine, h *host, n int) {
	f.t.Helper()
	for range 200 {
		e.Tick(f.t.Context())
		if h.answered() >= n {
			return
		}
	}
	f.t.Fatalf("%d of %d jobs answered after 200 ticks", h.answered(), n)
}

// TestOneBatchPerVendor: the lines of a group become one vendor batch
// (per tenant) once the oldest waited `after`, and every job gets exactly
// one answer at the catalogue's batch price.
func TestOneBatchPerVendor(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Minute)
			h := newHost()
			e := f.engine(h, "w1")
			ids := f.add(e, "", 0, 200)
			// Added again (a redelivered job): still one line.
			f.add(e, "", 0, 1)
			e.Tick(t.Context())
			require.Empty(t, f.vendor.Created(), "nothing sent before after")
			f.clock.Add(time.Minute)
			f.run(e, h, len(ids))

			created := f.vendor.Created()
			require.Len(t, created, 1)
			require.Len(t, created[0].Lines, 200)
			require.Equal(t, 200, f.vendor.BilledLines())
			want := catalog.BatchCost(f.target.Info, llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15})
			require.Positive(t, want)
			for i, id := range ids {
				as := h.answers[id]
				require.Len(t, as, 1, id)
				require.Equal(t, fmt.Sprintf("answer to q%d", i), as[0].Text)
				require.Equal(t, created[0].ID, lastSegment(as[0].BatchID))
				require.InDelta(t, want, as[0].CostUSD, 1e-12)
			}
			require.Empty(t, h.live)
		})
	}
}

// TestTenantsApart: two tenants' lines never share a batch.
func TestTenantsApart(t *testing.T) {
	t.Parallel()
	f := setup(t, vendors[0], time.Second)
	h := newHost()
	e := f.engine(h, "w1")
	f.add(e, "", 0, 3)
	f.add(e, "acme", 10, 2)
	f.clock.Add(time.Second)
	f.run(e, h, 5)
	created := f.vendor.Created()
	require.Len(t, created, 2)
	sizes := []int{len(created[0].Lines), len(created[1].Lines)}
	require.ElementsMatch(t, []int{3, 2}, sizes)
}

// flaky loses the vendor's reply to SubmitBatch once: the batch exists at
// the vendor, the engine does not know its id (a worker that died before
// it recorded it).
type flaky struct {
	llm.Batcher
	once sync.Once
}

func (f *flaky) SubmitBatch(ctx context.Context, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	info, err := f.Batcher.SubmitBatch(ctx, ref, reqs)
	lost := false
	f.once.Do(func() { lost = true })
	if lost && err == nil {
		return nil, &llm.Error{Kind: llm.KindConnection, Message: "connection reset after the vendor answered"}
	}
	return info, err
}

// TestReplyLostAfterSubmit: a batch the vendor created whose id was not
// recorded is found again (FindBatch) and not sent twice.
func TestReplyLostAfterSubmit(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			f.target.Batcher = &flaky{Batcher: f.batcher}
			h := newHost()
			e := f.engine(h, "w1")
			ids := f.add(e, "", 0, 5)
			f.clock.Add(time.Second)
			e.Tick(t.Context())
			require.Len(t, f.vendor.Created(), 1)
			f.run(e, h, len(ids))
			require.Len(t, f.vendor.Created(), 1, "not sent twice")
			require.Equal(t, 5, f.vendor.BilledLines())
			for _, id := range ids {
				require.Len(t, h.answers[id], 1, id)
			}
		})
	}
}

// TestLeaseTakeover: a second engine leaves a bucket alone while the first
// holds its lease, and takes it over once the lease lapsed (the first
// died), polling the first's batch to its end: nothing sent twice.
func TestLeaseTakeover(t *testing.T) {
	t.Parallel()
	f := setup(t, vendors[0], time.Second)
	f.vendor.Hold()
	h1, h2 := newHost(), newHost()
	e1, e2 := f.engine(h1, "w1"), f.engine(h2, "w2")
	ids := f.add(e1, "", 0, 4)
	f.clock.Add(time.Second)
	e1.Tick(t.Context())
	require.Len(t, f.vendor.Created(), 1)
	polls := f.vendor.Polls()
	e2.Tick(t.Context())
	require.Equal(t, polls, f.vendor.Polls(), "w2 does not poll w1's batch")

	// w1 dies (no more ticks, its lease not given back).
	f.vendor.Release()
	f.clock.Add(31 * time.Second)
	f.run(e2, h2, len(ids))
	require.Len(t, f.vendor.Created(), 1)
	require.Equal(t, 4, f.vendor.BilledLines())
	require.Zero(t, h1.answered())
	for _, id := range ids {
		require.Len(t, h2.answers[id], 1, id)
	}
}

// TestFailedLinesRunLive: a line the vendor failed runs live; so do the
// lines of a batch the vendor failed as a whole, or expired, or that was
// cancelled at the vendor.
func TestFailedLinesRunLive(t *testing.T) {
	t.Parallel()
	t.Run("failed line", func(t *testing.T) {
		t.Parallel()
		f := setup(t, vendors[0], time.Second)
		f.vendor.SetAnswer(func(l vendortest.Line) vendortest.Outcome {
			if l.Prompt == "q2" {
				return vendortest.Outcome{Status: 500, ErrType: "server_error", ErrMessage: "boom"}
			}
			return vendortest.Outcome{}
		})
		h := newHost()
		e := f.engine(h, "w1")
		ids := f.add(e, "", 0, 4)
		f.clock.Add(time.Second)
		f.run(e, h, len(ids))
		require.Len(t, h.live["job-2"], 1)
		require.Contains(t, h.live["job-2"][0], "boom")
		require.Len(t, h.answers, 3)
	})
	t.Run("batch failed", func(t *testing.T) {
		t.Parallel()
		f := setup(t, vendors[0], time.Second)
		f.vendor.FailNext("bad input file")
		h := newHost()
		e := f.engine(h, "w1")
		ids := f.add(e, "", 0, 3)
		f.clock.Add(time.Second)
		f.run(e, h, len(ids))
		require.Len(t, h.live, 3)
		require.Empty(t, h.answers)
	})
	for _, v := range vendors {
		t.Run("expired/"+v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			f.vendor.ExpireNext()
			h := newHost()
			e := f.engine(h, "w1")
			ids := f.add(e, "", 0, 4)
			f.clock.Add(time.Second)
			f.run(e, h, len(ids))
			require.Len(t, h.answers, 2, "the half the vendor ran")
			require.Len(t, h.live, 2, "the half it did not")
			require.Equal(t, 2, f.vendor.BilledLines())
		})
		t.Run("cancelled at the vendor/"+v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			h := newHost()
			e, ids, batch := f.sent(h, 3)
			id := batch.ID
			if v.name == "gemini" {
				id = "batches/" + id
			}
			require.NoError(t, f.batcher.CancelBatch(t.Context(), id))
			f.run(e, h, len(ids))
			require.Len(t, h.live, 3)
			require.Zero(t, f.vendor.BilledLines())
		})
	}
}

// TestCancelBeforeSend: a cancelled job waiting for its batch is answered
// cancelled and not sent.
func TestCancelBeforeSend(t *testing.T) {
	t.Parallel()
	f := setup(t, vendors[0], time.Second)
	h := newHost()
	e := f.engine(h, "w1")
	ids := f.add(e, "", 0, 3)
	e.Tick(t.Context())
	h.mu.Lock()
	h.cancelled["job-1"] = true
	h.mu.Unlock()
	f.clock.Add(time.Second)
	f.run(e, h, len(ids))
	require.Len(t, h.answers["job-1"], 1)
	require.True(t, h.answers["job-1"][0].Cancelled)
	created := f.vendor.Created()
	require.Len(t, created, 1)
	require.Len(t, created[0].Lines, 2)
}

// TestLiveFailureKeepsLine: a line whose live run failed (the worker
// stopped under it) stays for the next tick.
func TestLiveFailureKeepsLine(t *testing.T) {
	t.Parallel()
	f := setup(t, vendors[0], time.Second)
	f.vendor.FailNext("bad input file")
	h := newHost()
	h.liveErr = errors.New("worker stopping")
	e := f.engine(h, "w1")
	ids := f.add(e, "", 0, 2)
	f.clock.Add(time.Second)
	for range 5 {
		e.Tick(t.Context())
	}
	require.Zero(t, h.answered())
	h.mu.Lock()
	h.liveErr = nil
	h.mu.Unlock()
	f.run(e, h, len(ids))
	require.Len(t, h.live, 2)
	for _, id := range ids {
		require.Len(t, h.live[id], 1, id)
	}
}

func lastSegment(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '/' {
			return id[i+1:]
		}
	}
	return id
}
