package worker_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/anthropic"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/gemini"
	"github.com/switchyard/switchyard/pkg/llm/openai"
	"github.com/switchyard/switchyard/pkg/policy"
)

// offloadEnv is a fleet whose group "demo" sends its batch-class jobs to
// OpenAI's batch API (the replay) and its live calls to a mock.
type offloadEnv struct {
	*env
	vendor *vendortest.Batches
	clock  *offloadClock // the engines' clock: lines wait until it moves
}

// offloadClock is a clock the test moves.
type offloadClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *offloadClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *offloadClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const offloadModel = "gpt-4o-mini"

// batchVendor is one vendor's batch API replay and its provider.
type batchVendor struct {
	name  string
	model string
	start func(testing.TB) *vendortest.Batches
	new   func(t *testing.T, url string) llm.Provider
}

var (
	openAIBatch = batchVendor{"openai", offloadModel, vendortest.OpenAIBatches, func(t *testing.T, url string) llm.Provider {
		c, err := openai.New(openai.Options{APIKey: "sk-test", BaseURL: url})
		require.NoError(t, err)
		return c
	}}
	anthropicBatch = batchVendor{"anthropic", "claude-haiku-4-5", vendortest.AnthropicBatches, func(t *testing.T, url string) llm.Provider {
		c, err := anthropic.New(anthropic.Options{APIKey: "sk-ant-test", BaseURL: url})
		require.NoError(t, err)
		return c
	}}
	geminiBatch = batchVendor{"gemini", "gemini-2.5-flash", vendortest.GeminiBatches, func(t *testing.T, url string) llm.Provider {
		c, err := gemini.New(t.Context(), gemini.Options{APIKey: "gm-test", BaseURL: url})
		require.NoError(t, err)
		return c
	}}
)

func setupOffload(t *testing.T, vb policy.VendorBatchOptions) *offloadEnv {
	return setupOffloadAt(t, vb, openAIBatch)
}

// setupOffloadAt is setupOffload with v's batch API: the group's batch
// deployment is "<vendor>-batch".
func setupOffloadAt(t *testing.T, vb policy.VendorBatchOptions, v batchVendor) *offloadEnv {
	t.Helper()
	e := setup(t, opts{noStart: true})
	srv := v.start(t)
	r, err := policy.NewRouter([]policy.Group{{
		Name: "demo", Options: policy.GroupOptions{VendorBatch: &vb},
		Deployments: []policy.Deployment{
			{Name: "mock-a", Model: "mock-1", Provider: e.mock},
			{Name: v.name + "-batch", Model: v.model, Provider: v.new(t, srv.URL), Options: policy.DeploymentOptions{Priority: 1}},
		},
	}})
	require.NoError(t, err)
	e.router = r
	return &offloadEnv{env: e, vendor: srv, clock: &offloadClock{t: time.Now()}}
}

// start runs a worker that offloads, its engine ticking fast.
func (e *offloadEnv) start(owner string) (stop func(), nc *nats.Conn) {
	return e.startEngine(offload.Config{Owner: owner})
}

// startEngine runs a worker that offloads with cfg, its engine ticking
// fast on the test's clock.
func (e *offloadEnv) startEngine(cfg offload.Config) (stop func(), nc *nats.Conn) {
	cfg.Tick, cfg.Lease, cfg.Now = 50*time.Millisecond, 30*time.Second, e.clock.Now
	return e.startWorker(worker.Config{Offload: &worker.OffloadConfig{
		Targets: func(_, group string) (policy.BatchTarget, bool) { return e.router.BatchTarget(group) },
		Engine:  cfg,
	}})
}

// lines is the number of jobs waiting in the anonymous tenant's offload
// bucket (0 before it exists).
func (e *offloadEnv) lines(t *testing.T) int {
	kv, err := e.js.KeyValue(t.Context(), bus.Subjects{}.OffloadBucket())
	if err != nil {
		return 0
	}
	keys, _ := kv.Keys(t.Context())
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, "l.") {
			n++
		}
	}
	return n
}

// storedResults is the number of jobs with a stored result.
func (e *offloadEnv) storedResults(t *testing.T) int {
	s, err := e.js.Stream(t.Context(), bus.StreamResults)
	require.NoError(t, err)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("llm.res.*.result"))
	require.NoError(t, err)
	return len(info.State.Subjects)
}

// publishBatch publishes n batch-class jobs job-0 ... job-<n-1>.
func (e *offloadEnv) publishBatch(t *testing.T, n int, edit func(i int, r *bus.Request)) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("job-%d", i)
		req := userReq(ids[i], fmt.Sprintf("q%d", i))
		if edit != nil {
			edit(i, req)
		}
		data, err := json.Marshal(req)
		require.NoError(t, err)
		m := nats.NewMsg(bus.Subjects{}.RequestFor("demo", bus.PriorityBatch))
		m.Header.Set(bus.HeaderMsgID, ids[i])
		m.Data = data
		_, err = e.js.PublishMsg(t.Context(), m)
		require.NoError(t, err)
	}
	return ids
}

// waitLines waits until n jobs wait in the anonymous tenant's offload
// bucket. The bound is not a speed target: a worker takes jobs into the
// bucket one at a time (offload.Engine.Add), about 12 ms a job under the
// race detector alone, and a loaded make test runs three 1,000-job floods
// beside other packages: 60 s was too short there.
func (e *offloadEnv) waitLines(t *testing.T, n int) {
	t.Helper()
	var kv jetstream.KeyValue
	require.Eventually(t, func() bool {
		if kv == nil {
			var err error
			if kv, err = e.js.KeyValue(t.Context(), bus.Subjects{}.OffloadBucket()); err != nil {
				return false
			}
		}
		keys, _ := kv.Keys(t.Context())
		got := 0
		for _, k := range keys {
			if strings.HasPrefix(k, "l.") {
				got++
			}
		}
		return got == n
	}, 3*time.Minute, 250*time.Millisecond, "%d jobs wait in the bucket", n)
}

// results waits until every job of ids has a stored result and returns
// them, checking that each job has exactly one stored.
func (e *offloadEnv) results(t *testing.T, ids []string, within time.Duration) map[string]*bus.Result {
	t.Helper()
	s, err := e.js.Stream(t.Context(), bus.StreamResults)
	require.NoError(t, err)
	deadline := time.Now().Add(within)
	var counts map[string]uint64
	for {
		info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("llm.res.*.result"))
		require.NoError(t, err)
		counts = info.State.Subjects
		if len(counts) >= len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Len(t, counts, len(ids), "a stored result for every job")
	out := map[string]*bus.Result{}
	for _, id := range ids {
		subject := bus.ResultSubject(bus.Subjects{}.Reply(id))
		require.Equal(t, uint64(1), counts[subject], "exactly one result of %s", id)
		res, err := e.client.StoredResult(t.Context(), bus.Subjects{}.Reply(id))
		require.NoError(t, err)
		require.NotNil(t, res, id)
		out[id] = res
	}
	return out
}

// TestOffloadThousandJobsOneBatch: 1,000 batch-class jobs become one
// OpenAI batch, and each gets exactly one result, the vendor's answer at the
// catalogue's batch price, with no live call.
func TestOffloadThousandJobsOneBatch(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute})
	var published atomic.Int64
	sub, err := e.nc.Subscribe("llm.res.*.result", func(*nats.Msg) { published.Add(1) })
	require.NoError(t, err)
	defer sub.Unsubscribe()
	e.start("w1")
	ids := e.publishBatch(t, 1000, nil)
	e.waitLines(t, 1000)
	require.Empty(t, e.vendor.Created(), "nothing sent before after")
	st, err := e.client.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, "demo", st.Groups[0].Group)
	require.Equal(t, 1000, st.Groups[0].VendorBatchJobs, "status counts the jobs waiting")
	e.clock.Add(time.Minute)
	got := e.results(t, ids, 60*time.Second)

	created := e.vendor.Created()
	require.Len(t, created, 1, "one vendor batch")
	require.Len(t, created[0].Lines, 1000)
	require.Equal(t, 1000, e.vendor.BilledLines())
	require.Zero(t, e.mock.Calls(), "no live call")
	model, ok := catalog.Lookup(offloadModel)
	require.True(t, ok)
	want := catalog.BatchCost(model, llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15})
	require.Positive(t, want)
	for i, id := range ids {
		r := got[id]
		require.Equal(t, bus.StatusOK, r.Status, "%s: %+v", id, r.Error)
		require.Equal(t, fmt.Sprintf("answer to q%d", i), r.Text)
		require.Equal(t, "openai-batch", r.Deployment)
		require.Equal(t, created[0].ID, r.VendorBatchID)
		require.InDelta(t, want, r.CostUSD, 1e-12)
		require.Equal(t, 15, r.Usage.TotalTokens)
	}
	require.Eventually(t, func() bool { return published.Load() >= 1000 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // a second result would be published by now
	require.Equal(t, int64(1000), published.Load(), "one result published per job")
}

// TestOffloadWorkerKilledWhilePolling: the worker polling a batch dies (its
// connection closed); another takes the bucket's lease over, polls the same
// batch to its end and answers every job: one batch created, every line
// billed once, one result per job.
func TestOffloadWorkerKilledWhilePolling(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute})
	e.vendor.Hold()
	_, nc1 := e.start("w1")
	ids := e.publishBatch(t, 20, nil)
	e.waitLines(t, 20)
	e.clock.Add(time.Minute)
	require.Eventually(t, func() bool { return len(e.vendor.Created()) == 1 }, 20*time.Second, 20*time.Millisecond)
	polls := e.vendor.Polls()
	require.Eventually(t, func() bool { return e.vendor.Polls() > polls+1 }, 10*time.Second, 20*time.Millisecond, "w1 polls")
	st, err := e.client.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Groups[0].VendorBatches, "status shows the batch in flight")
	nc1.Close() // killed: its lease is not given back

	e.start("w2")
	polls = e.vendor.Polls()
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, polls, e.vendor.Polls(), "w2 waits for w1's lease to lapse")
	e.clock.Add(31 * time.Second)
	e.vendor.Release()
	got := e.results(t, ids, 30*time.Second)
	require.Len(t, e.vendor.Created(), 1, "the batch is not sent again")
	require.Equal(t, 20, e.vendor.BilledLines())
	for _, id := range ids {
		require.Equal(t, bus.StatusOK, got[id].Status, "%s: %+v", id, got[id].Error)
		require.Equal(t, e.vendor.Created()[0].ID, got[id].VendorBatchID)
	}
}

// TestOffloadFailedLinesFallBack: the line the vendor failed, and those of
// an expired batch it did not run, run live (on the mock) and get one
// result each.
func TestOffloadFailedLinesFallBack(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute})
	e.vendor.SetAnswer(func(l vendortest.Line) vendortest.Outcome {
		if l.Prompt == "q1" {
			return vendortest.Outcome{Status: 500, ErrType: "server_error", ErrMessage: "boom"}
		}
		return vendortest.Outcome{}
	})
	e.vendor.ExpireNext() // its second half is not run
	e.start("w1")
	ids := e.publishBatch(t, 6, nil)
	e.waitLines(t, 6)
	e.clock.Add(time.Minute)
	got := e.results(t, ids, 30*time.Second)
	require.Len(t, e.vendor.Created(), 1)
	for i, id := range ids {
		r := got[id]
		require.Equal(t, bus.StatusOK, r.Status, "%s: %+v", id, r.Error)
		if i == 1 || i >= 3 {
			require.Equal(t, "mock-a", r.Deployment, id)
			require.Empty(t, r.VendorBatchID, id)
			continue
		}
		require.Equal(t, "openai-batch", r.Deployment, id)
		require.NotEmpty(t, r.VendorBatchID, id)
	}
	require.Equal(t, int64(4), e.mock.Calls())
}

// TestOffloadCancelBeforeSend: a job cancelled while it waits for its
// batch is answered cancelled and never sent.
func TestOffloadCancelBeforeSend(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute})
	e.start("w1")
	ids := e.publishBatch(t, 3, nil)
	e.waitLines(t, 3)
	require.NoError(t, e.client.Cancel(t.Context(), ids[1]))
	// The worker has the cancel marker once its cancel set says so; the
	// cancel subject reaches it at once, the bucket's marker a moment later.
	time.Sleep(200 * time.Millisecond)
	e.clock.Add(time.Minute)
	got := e.results(t, ids, 30*time.Second)
	require.Equal(t, bus.StatusError, got[ids[1]].Status)
	require.Equal(t, bus.CodeCancelled, got[ids[1]].Error.Code)
	require.Equal(t, bus.StatusOK, got[ids[0]].Status)
	created := e.vendor.Created()
	require.Len(t, created, 1)
	require.Len(t, created[0].Lines, 2, "the cancelled job is not sent")
}

// TestOffloadOnlyJobsThatCanWait: a batch-class job whose deadline is
// nearer than max_wait, and a default-class job, run live; a default-class
// job with service_tier batch is offloaded.
func TestOffloadOnlyJobsThatCanWait(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute, MaxWait: time.Hour})
	e.start("w1")
	ctx := ctxT(t, 30*time.Second)
	near := userReq("near", "q-near")
	near.Priority, near.TimeoutMS = bus.PriorityBatch, 10*60*1000
	def := userReq("default", "q-default")
	for _, r := range []*bus.Request{near, def} {
		res, err := e.client.Submit(ctx, "demo", r)
		require.NoError(t, err)
		require.Equal(t, bus.StatusOK, res.Status, "%s: %+v", r.ID, res.Error)
		require.Equal(t, "mock-a", res.Deployment, r.ID)
	}
	tier := userReq("tier", "q-tier")
	tier.ServiceTier = bus.ServiceTierBatch
	job, err := e.client.Publish(ctx, "demo", tier)
	require.NoError(t, err)
	defer job.Close()
	e.waitLines(t, 1)
	e.clock.Add(time.Minute)
	_, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	require.NotEmpty(t, res.VendorBatchID)
	require.Equal(t, int64(2), e.mock.Calls())
	require.Len(t, e.vendor.Created(), 1)
}

// TestOffloadFullBucketRunsLive: the jobs a full offload bucket cannot take
// run live at once (not handed back to wait for room), and those it took
// go in the vendor batch: every job one result.
func TestOffloadFullBucketRunsLive(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute})
	e.startEngine(offload.Config{Owner: "w1", MaxBytes: 8 << 10})
	ids := e.publishBatch(t, 40, nil)
	// The clock does not move: the lines wait, the others run live.
	require.Eventually(t, func() bool {
		return e.lines(t)+e.storedResults(t) == len(ids)
	}, 30*time.Second, 20*time.Millisecond, "every job waits in the bucket or has its result")
	waiting := e.lines(t)
	require.Positive(t, waiting, "the bucket took some")
	require.Less(t, waiting, len(ids), "and was full before the last")
	require.Equal(t, int64(len(ids)-waiting), e.mock.Calls(), "the others ran live")

	e.clock.Add(time.Minute)
	got := e.results(t, ids, 30*time.Second)
	created := e.vendor.Created()
	require.Len(t, created, 1)
	require.Len(t, created[0].Lines, waiting)
	batched := 0
	for _, id := range ids {
		require.Equal(t, bus.StatusOK, got[id].Status, "%s: %+v", id, got[id].Error)
		if got[id].VendorBatchID != "" {
			batched++
		}
	}
	require.Equal(t, waiting, batched)
}

// TestOffloadCancelAfterSend: a job cancelled once its batch was sent is
// answered cancelled, once; the vendor's answer of its line is dropped.
func TestOffloadCancelAfterSend(t *testing.T) {
	t.Parallel()
	e := setupOffload(t, policy.VendorBatchOptions{After: time.Minute})
	e.vendor.Hold()
	e.start("w1")
	ids := e.publishBatch(t, 3, nil)
	e.waitLines(t, 3)
	e.clock.Add(time.Minute)
	require.Eventually(t, func() bool { return len(e.vendor.Created()) == 1 }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, e.client.Cancel(t.Context(), ids[1]))
	require.Eventually(t, func() bool { return e.storedResults(t) == 1 }, 20*time.Second, 20*time.Millisecond, "the cancelled job is answered while its batch runs")
	e.vendor.Release()
	got := e.results(t, ids, 30*time.Second)
	require.Equal(t, bus.StatusError, got[ids[1]].Status)
	require.Equal(t, bus.CodeCancelled, got[ids[1]].Error.Code)
	require.Contains(t, got[ids[1]].Error.Message, "after its vendor batch")
	for _, id := range []string{ids[0], ids[2]} {
		require.Equal(t, bus.StatusOK, got[id].Status, "%s: %+v", id, got[id].Error)
		require.NotEmpty(t, got[id].VendorBatchID)
	}
	require.Len(t, e.vendor.Created(), 1)
	require.Zero(t, e.mock.Calls())
}

// TestOffloadThousandJobsOtherVendors: through a worker, 1,000 batch-class
// jobs become one Anthropic Message Batch, or one Gemini batch, each job
// one result (the vendor's answer at the catalogue's batch price), and the
// line the vendor failed runs live.
func TestOffloadThousandJobsOtherVendors(t *testing.T) {
	t.Parallel()
	// One vendor after the other: two 1,000-job floods side by side took
	// the two cores from each other's intake (63 s, past waitLines' bound
	// under a loaded make test).
	for _, v := range []batchVendor{anthropicBatch, geminiBatch} {
		t.Run(v.name, func(t *testing.T) {
			e := setupOffloadAt(t, policy.VendorBatchOptions{After: time.Minute}, v)
			e.vendor.SetAnswer(func(l vendortest.Line) vendortest.Outcome {
				if l.Prompt == "q7" {
					return vendortest.Outcome{Status: 500, ErrType: "api_error", ErrMessage: "boom"}
				}
				return vendortest.Outcome{}
			})
			e.start("w1")
			ids := e.publishBatch(t, 1000, nil)
			e.waitLines(t, 1000)
			require.Empty(t, e.vendor.Created(), "nothing sent before after")
			e.clock.Add(time.Minute)
			got := e.results(t, ids, 60*time.Second)

			created := e.vendor.Created()
			require.Len(t, created, 1, "one vendor batch")
			require.Len(t, created[0].Lines, 1000)
			require.Equal(t, 1000, e.vendor.BilledLines(), "every line ran at the vendor once (one failed)")
			model, ok := catalog.Lookup(v.model)
			require.True(t, ok)
			want := catalog.BatchCost(model, llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15})
			require.Positive(t, want)
			for i, id := range ids {
				r := got[id]
				require.Equal(t, bus.StatusOK, r.Status, "%s: %+v", id, r.Error)
				if i == 7 {
					require.Equal(t, "mock-a", r.Deployment, "the failed line ran live")
					require.Empty(t, r.VendorBatchID)
					continue
				}
				require.Equal(t, fmt.Sprintf("answer to q%d", i), r.Text)
				require.Equal(t, v.name+"-batch", r.Deployment)
				require.True(t, strings.HasSuffix(r.VendorBatchID, created[0].ID), "%s of %s", r.VendorBatchID, created[0].ID)
				require.InDelta(t, want, r.CostUSD, 1e-12)
			}
			require.Equal(t, int64(1), e.mock.Calls())
		})
	}
}
