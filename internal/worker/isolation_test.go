package worker_test

// Issue #12's attacks on the anonymous (v1) namespace, where any producer
// may publish a job: each fails (see examples/multitenant for the same
// attacks between authenticated tenants).

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// publishJob publishes a JSON job as any NATS client could.
func publishJob(t *testing.T, ctx context.Context, js jetstream.JetStream, subject string, h nats.Header, body string) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(subject)
	for k, v := range h {
		m.Header[k] = v
	}
	m.Data = []byte(body)
	ack, err := js.PublishMsg(ctx, m)
	require.NoError(t, err)
	return ack
}

// nextResult waits for the next result on a subscription.
func nextResult(t *testing.T, sub *nats.Subscription) (string, bus.Result) {
	t.Helper()
	for {
		m, err := sub.NextMsg(10 * time.Second)
		require.NoError(t, err)
		if !strings.HasSuffix(m.Subject, ".result") {
			continue
		}
		var r bus.Result
		require.NoError(t, bus.Detect(m.Header, m.Data).Unmarshal(m.Data, &r))
		return m.Subject, r
	}
}

func TestReplyOutsideTheJobsNamespaceIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 3}})
	ctx := ctxT(t, 30*time.Second)
	for _, name := range []string{"events", "result"} {
		_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"app." + name}})
		require.NoError(t, err)
		_, err = e.js.Publish(ctx, "app."+name, []byte("keep me"))
		require.NoError(t, err)
	}
	reserved, err := e.nc.SubscribeSync("llm.>")
	require.NoError(t, err)
	dollar, err := e.nc.SubscribeSync("$KV.>")
	require.NoError(t, err)
	replies := []string{"llm.res.victim", "$JS.API.STREAM.PURGE", "$KV.LLM_CANCEL", "llm.req.demo", "llm.req", "llm.dlq", "llm.cancel", "llm.t.acme.res.x", "_INBOX.abc"}
	for i, reply := range replies {
		id := "aim-" + string(rune('a'+i))
		sub, err := e.nc.SubscribeSync("llm.res." + id + ".result")
		require.NoError(t, err)
		publishJob(t, ctx, e.js, "llm.req.demo", nats.Header{bus.HeaderMsgID: {id}, bus.HeaderReply: {reply}}, `{"messages":[{"role":"user","content":"hi"}]}`)
		_, r := nextResult(t, sub)
		require.Equal(t, bus.StatusError, r.Status, reply)
		require.Equal(t, bus.CodeInvalidRequest, r.Error.Code, reply)
	}
	require.NoError(t, e.nc.Flush())
	for _, name := range []string{"events", "result"} {
		s, err := e.js.Stream(ctx, name)
		require.NoError(t, err)
		require.EqualValues(t, 1, s.CachedInfo().State.Msgs, "stream %s was purged", name)
	}
	// Nothing but the jobs and their default replies went through llm.>.
	for {
		m, err := reserved.NextMsg(100 * time.Millisecond)
		if err != nil {
			break
		}
		ok := strings.HasPrefix(m.Subject, "llm.req.demo") && m.Subject == "llm.req.demo" || strings.HasPrefix(m.Subject, "llm.res.aim-")
		require.True(t, ok, "published on %s", m.Subject)
	}
	for {
		m, err := dollar.NextMsg(100 * time.Millisecond)
		if err != nil {
			break
		}
		require.False(t, strings.HasSuffix(m.Subject, ".events") || strings.HasSuffix(m.Subject, ".result"), "published on %s", m.Subject)
	}
	require.Zero(t, e.mock.Calls())
}

func TestObjectOfAnotherJobIsNotRead(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 3}})
	ctx := ctxT(t, 30*time.Second)
	obs, err := e.js.ObjectStore(ctx, bus.BucketObjects)
	require.NoError(t, err)
	_, err = obs.PutString(ctx, "victim", `{"messages":[{"role":"user","content":"the victim's secret"}],"metadata":{"owner":"victim"}}`)
	require.NoError(t, err)
	sub, err := e.nc.SubscribeSync("llm.res.thief.result")
	require.NoError(t, err)
	publishJob(t, ctx, e.js, "llm.req.demo", nats.Header{bus.HeaderMsgID: {"thief"}, bus.HeaderObject: {"victim"}}, `{"id":"thief"}`)
	_, r := nextResult(t, sub)
	require.Equal(t, bus.StatusError, r.Status, "the thief got an answer: %q", r.Text)
	require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)
	require.Empty(t, r.Metadata)
	_, err = obs.GetInfo(ctx, "victim")
	require.NoError(t, err, "the victim's object was deleted")
	require.Zero(t, e.mock.Calls())
}

// recordingExec records whose executor ran a job.
type recordingExec struct {
	worker.Executor
	n atomic.Int64
}

func (r *recordingExec) Execute(ctx context.Context, call *policy.Call, emit func(policy.Event)) (*policy.Outcome, error) {
	r.n.Add(1)
	return r.Executor.Execute(ctx, call, emit)
}

func TestBodyTenantIsNotWhoTheJobIs(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true, mock: mock.Config{Tokens: 3}})
	acme := &recordingExec{Executor: e.router}
	e.startWorker(worker.Config{Tenants: map[string]worker.Executor{"acme": acme}})
	ctx := ctxT(t, 30*time.Second)
	sub, err := e.nc.SubscribeSync("llm.res.spoof.result")
	require.NoError(t, err)
	publishJob(t, ctx, e.js, "llm.req.demo", nats.Header{bus.HeaderMsgID: {"spoof"}}, `{"tenant":"acme","messages":[{"role":"user","content":"on acme's key"}]}`)
	_, r := nextResult(t, sub)
	require.Equal(t, bus.StatusError, r.Status)
	require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)
	require.Zero(t, acme.n.Load(), "acme's keys were used for a job that only said it was acme's")
}

func TestInvalidMessageIDIsInvalidRequestWhereTheClientLooks(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 3}})
	ctx := ctxT(t, 30*time.Second)
	all, err := e.nc.SubscribeSync("llm.res.>")
	require.NoError(t, err)
	for _, id := range []string{"a b", "a.b.x", "*", ">", strings.Repeat("x", 10_000)} {
		ack := publishJob(t, ctx, e.js, "llm.req.demo", nats.Header{bus.HeaderMsgID: {id}}, `{"messages":[{"role":"user","content":"hi"}]}`)
		want := fmt.Sprintf("llm.res.seq-%d.result", ack.Sequence)
		if id == "a.b.x" {
			want = "llm.res.a.b.x.result"
		}
		subject, r := nextResult(t, all)
		require.Equal(t, want, subject, "id %.20q", id)
		require.Equal(t, bus.StatusError, r.Status, "id %.20q", id)
		require.Equal(t, bus.CodeInvalidRequest, r.Error.Code)
		require.Contains(t, r.Error.Message, "[A-Za-z0-9_=/-]")
	}
	require.Zero(t, e.mock.Calls())
}

// 300,000 cancels for ids that do not exist: before the fix each one stayed
// in the worker's memory (~240 bytes each, 70 MiB here; the 2M took
// a worker from 42 to 514 MB).
func TestCancelFloodDoesNotGrowTheWorker(t *testing.T) {
	e := setup(t, opts{mock: mock.Config{Tokens: 400, ChunkDelay: 5 * time.Millisecond}})
	ctx := ctxT(t, 120*time.Second)
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	const n = 300_000
	for i := range n {
		require.NoError(t, e.nc.Publish("llm.cancel."+uuid.NewString(), nil))
		if i%10_000 == 0 {
			require.NoError(t, e.nc.Flush())
		}
	}
	// A cancel published after the flood on the same connection reaches the
	// worker after it: once it has stopped this job, the flood was read.
	job, err := e.client.Publish(ctx, "demo", userReq("after-flood", "long"))
	require.NoError(t, err)
	ev, _, err := job.Next(ctx)
	require.NoError(t, err)
	require.NotNil(t, ev)
	require.NoError(t, e.nc.Publish("llm.cancel.after-flood", nil))
	_, res := collect(t, ctx, job)
	require.Equal(t, bus.CodeCancelled, res.Error.Code)
	grew := heap() - before
	t.Logf("heap grew by %.1f MiB after %d cancels", float64(grew)/(1<<20), n)
	require.Less(t, grew, int64(25<<20))
}
