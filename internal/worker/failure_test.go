package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// fortyThousandStrings is issue #13's schema whose answer (~600 KB, in both
// text and json) makes a result larger than the server's max payload.
const fortyThousandStrings = `{"type":"object","properties":{"items":{"type":"array","minItems":40000,"items":{"type":"string","minLength":12}}},"required":["items"]}`

func schemaRequest(t *testing.T, id, schema string) *bus.Request {
	t.Helper()
	var s any
	require.NoError(t, json.Unmarshal([]byte(schema), &s))
	no := false
	return &bus.Request{ID: id, Stream: &no, Messages: []bus.Message{{Role: "user", Content: bus.Text("many things")}},
		ResponseFormat: &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "big", Schema: s}}}
}

// TestLargeResultReachesTheClientOnce: a result larger than the server's
// max payload used to fail every publish (maximum payload exceeded), was
// handed back and run five times, and the client got "internal: delivered 5
// times". It is stored in the Object Store and reaches the client once,
// after one provider call, through Submit, StoredResult and Watch alike.
func TestLargeResultReachesTheClientOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	for i, enc := range []bus.Encoding{bus.JSON, bus.Msgpack} {
		t.Run(enc.String(), func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			c, err := bus.NewClient(e.nc, bus.WithEncoding(enc))
			require.NoError(t, err)
			id := fmt.Sprintf("big-%d", i)
			res, err := c.Submit(ctx, "demo", schemaRequest(t, id, fortyThousandStrings))
			require.NoError(t, err)
			require.Equal(t, bus.StatusOK, res.Status)
			require.Greater(t, len(res.Text), 500_000)
			items := res.JSON.(map[string]any)["items"].([]any)
			require.Len(t, items, 40000)

			stored := storedResult(t, ctx, c, id)
			require.Equal(t, res.Text, stored.Text, "the stored result resolves to the whole result too")
			w, err := c.Watch(ctx, id, 0)
			require.NoError(t, err)
			defer w.Close()
			_, watched, err := w.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, res.Text, watched.Text)
		})
	}
	require.EqualValues(t, 2, e.mock.Calls(), "one provider call per job")
	requireQueueEmpty(t, e)
}

// TestResultOverTheLimitIsOneTooLarge: a result that cannot be stored even
// in the Object Store (over MaxResultBytes) is answered once with too_large,
// never run again.
func TestResultOverTheLimitIsOneTooLarge(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{cfg: worker.Config{MaxResultBytes: 1 << 20}})
	ctx := ctxT(t, 60*time.Second)
	res, err := e.client.Submit(ctx, "demo", schemaRequest(t, "too-big", fortyThousandStrings))
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeTooLarge})
	require.Contains(t, res.Error.Message, "more than the worker's limit of 1048576")
	require.False(t, res.Error.Retryable)
	require.EqualValues(t, 1, e.mock.Calls())
	requireQueueEmpty(t, e)
}

// TestEscapedMetadataRequestGetsAnErrorResult: a 1,000,073-byte JSON request
// whose metadata is 1 MB of '<' (escaped to \u003c in the JSON result, six
// times larger) used to get no result at all and stay in the work queue.
func TestEscapedMetadataRequestGetsAnErrorResult(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	ctx := ctxT(t, 60*time.Second)
	meta := strings.Repeat("<", 1_000_026)
	body := fmt.Sprintf(`{"id":"lt-1","messages":[],"metadata":{"m":%q}}`, meta)
	require.Equal(t, 1_000_073, len(body))
	res := publishRaw(t, ctx, e, "lt-1", []byte(body))
	require.Equal(t, bus.CodeInvalidRequest, res.Error.Code, res.Error.Message)
	require.True(t, res.Metadata["m"] == meta, "the whole result, from the Object Store (metadata of %d bytes)", len(res.Metadata["m"]))
	requireQueueEmpty(t, e)
}

// publishRaw publishes data as a JSON job, as any client would, and returns
// the result, read (and resolved) like the Go client reads it.
func publishRaw(t *testing.T, ctx context.Context, e *env, id string, data []byte) *bus.Result {
	t.Helper()
	c, err := bus.NewClient(e.nc, bus.WithEncoding(bus.JSON))
	require.NoError(t, err)
	w, err := c.Watch(ctx, id, 0) // subscribed before the job is published
	require.NoError(t, err)
	defer w.Close()
	m := nats.NewMsg(bus.Subjects{}.Request("demo"))
	m.Header.Set(bus.HeaderMsgID, id)
	m.Data = data
	_, err = e.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	for {
		_, res, err := w.Next(ctx)
		require.NoError(t, err)
		if res != nil {
			return res
		}
	}
}

func storedResult(t *testing.T, ctx context.Context, c *bus.Client, id string) *bus.Result {
	t.Helper()
	var r *bus.Result
	require.Eventually(t, func() bool {
		var err error
		r, err = c.StoredResult(ctx, c.Subjects().Reply(id))
		require.NoError(t, err)
		return r != nil
	}, 10*time.Second, 10*time.Millisecond, "result of %s stored", id)
	return r
}

// requireQueueEmpty waits until the request stream holds no job: every job
// was answered and acked, none orphaned.
func requireQueueEmpty(t *testing.T, e *env) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	require.Eventually(t, func() bool {
		s, err := e.js.Stream(ctx, bus.StreamRequests)
		return err == nil && s.CachedInfo().State.Msgs == 0
	}, 20*time.Second, 20*time.Millisecond, "the work queue is empty")
}

// panicky panics in Stream for prompts that say so, and in Next for those
// that say so mid-stream; it answers the others.
type panicky struct{ ok *mock.Provider }

func (p panicky) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	switch req.Messages[len(req.Messages)-1].Text() {
	case "panic in Stream":
		panic("provider bug in Stream")
	case "panic in Next":
		s, err := p.ok.Stream(ctx, req)
		return panicStream{s}, err
	}
	return p.ok.Stream(ctx, req)
}

type panicStream struct{ llm.Stream }

func (panicStream) Next() bool { panic(fmt.Errorf("provider bug in Next")) }

// TestPanicFailsTheJobAndTheWorkerKeepsServing: a panic in a job used to end
// the process, and every running job of every group with it.
func TestPanicFailsTheJobAndTheWorkerKeepsServing(t *testing.T) {
	t.Parallel()
	var logs syncLog
	e := setup(t, opts{provider: panicky{mock.New(mock.Config{Tokens: 3})}, noStart: true})
	e.startWorker(worker.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := ctxT(t, 30*time.Second)
	for i, prompt := range []string{"panic in Stream", "panic in Next"} {
		res, err := e.client.Submit(ctx, "demo", userReq(fmt.Sprintf("panic-%d", i), prompt))
		require.ErrorIs(t, err, &bus.Error{Code: bus.CodeInternal}, prompt)
		require.Contains(t, res.Error.Message, "panic: provider bug in", prompt)
		require.False(t, res.Error.Retryable, "it would panic again")
	}
	res, err := e.client.Submit(ctx, "demo", userReq("after-panics", "hello"))
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status, "the worker still serves")
	require.Contains(t, logs.String(), `"msg":"job panicked; answered internal"`)
	require.Contains(t, logs.String(), "runtime/debug.Stack", "the log line carries the stack")
	requireQueueEmpty(t, e)
}

// TestHostileSchemasAreAnswered sends issue #13's crashing schemas to a
// worker: each gets a result (a value, or invalid_request at intake), and
// the worker goes on serving.
func TestHostileSchemasAreAnswered(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	ctx := ctxT(t, 60*time.Second)
	for i, schema := range []string{
		`{"type":"object","properties":{"n":{"type":"integer","minimum":-9e18,"maximum":9e18}},"required":["n"]}`,
		`{"type":"array","minItems":4611686018427387904}`,
		`{"$defs":{"a":{"type":"array","minItems":1,"items":{"$ref":"#/$defs/a"}}},"$ref":"#/$defs/a"}`,
		`{"type":"object","properties":{"a":{"$ref":"#"},"b":{"$ref":"#"},"c":{"$ref":"#"},"d":{"$ref":"#"},"e":{"$ref":"#"},"f":{"$ref":"#"},"g":{"$ref":"#"},"h":{"$ref":"#"},"i":{"$ref":"#"},"j":{"$ref":"#"}}}`,
		`{"type":"string","minLength":1000000}`,
		`{"$ref":"#"}`,
	} {
		res, err := e.client.Submit(ctx, "demo", schemaRequest(t, fmt.Sprintf("hostile-%d", i), schema))
		require.NotNil(t, res, "schema %s: %v", schema, err)
		if res.Status != bus.StatusOK {
			require.Contains(t, []bus.ErrorCode{bus.CodeInvalidRequest, bus.CodeValidationFailed}, res.Error.Code, "schema %s: %s", schema, res.Error.Message)
		}
	}
	res, err := e.client.Submit(ctx, "demo", userReq("after-hostile", "hello"))
	require.NoError(t, err)
	require.Equal(t, bus.StatusOK, res.Status)
}

// syncLog is a log sink safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFullStoreLosesNoJob fills a real server's JetStream store (a store
// limit, and a stream that takes all of it) after six jobs were accepted.
// Their results and then their dead-letter copies cannot be written. On the
// old code they ended orphaned in the work queue after their last delivery
// (a Nak there is never redelivered): no result, no dead letter. Now the
// worker reports itself unready, hands them back, and once space is freed
// every job ends with a result or a dead letter, the queue is empty and the
// worker is ready again, by itself.
func TestFullStoreLosesNoJob(t *testing.T) {
	t.Parallel()
	var logs syncLog
	e := setup(t, opts{noStart: true, server: func(o *server.Options) { o.JetStreamMaxStore = 4 << 20 }})
	ctx := ctxT(t, 120*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	const n = 6
	var ids []string
	for i := range n {
		_, err := e.client.Publish(ctx, "demo", userReq(fmt.Sprintf("full-%d", i), "hi"))
		require.NoError(t, err)
		ids = append(ids, fmt.Sprintf("full-%d", i))
	}
	// Two undecodable jobs, whose dead-letter copy is the first thing to
	// write (the others have a result to store first, see
	// TestLiveResultIsTheStoredOne).
	for i := range 2 {
		m := nats.NewMsg(bus.Subjects{}.Request("demo"))
		m.Header.Set(bus.HeaderMsgID, fmt.Sprintf("bad-%d", i))
		m.Data = []byte{0x82, 0xa2, 'i', 'd'}
		_, err := e.js.PublishMsg(ctx, m)
		require.NoError(t, err)
		ids = append(ids, fmt.Sprintf("bad-%d", i))
	}
	// Fill the store.
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}})
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for {
		if _, err := e.js.Publish(ctx, "filler", chunk); err != nil {
			require.ErrorContains(t, err, "insufficient resources")
			break
		}
	}

	e.startWorker(worker.Config{
		Consumer:   bus.ConsumerConfig{MaxDeliver: 3, AckWait: 5 * time.Second},
		StoreRetry: 200 * time.Millisecond, HandBackDelay: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	// Unready while writes fail; the jobs go past their last delivery (a
	// Nak there used to be the end of them).
	require.Eventually(t, func() bool { return e.worker.StoreHealth() != nil }, 30*time.Second, 10*time.Millisecond)
	require.ErrorContains(t, e.worker.StoreHealth(), "insufficient resources")
	require.Eventually(t, func() bool { return handedBackPast(t, logs.String(), ids, 3) }, 60*time.Second, 10*time.Millisecond,
		"every job was handed back on its last delivery")
	require.GreaterOrEqual(t, strings.Count(logs.String(), "dead-letter copy could not be stored"), 2)

	require.NoError(t, e.js.DeleteStream(ctx, "FILLER")) // space is freed
	requireQueueEmpty(t, e)
	dlq := map[string]bool{}
	d, err := e.js.Stream(ctx, bus.StreamDLQ)
	require.NoError(t, err)
	for seq := d.CachedInfo().State.FirstSeq; seq > 0 && seq <= d.CachedInfo().State.LastSeq; seq++ {
		m, err := d.GetMsg(ctx, seq)
		require.NoError(t, err)
		dlq[m.Header.Get("Llm-Dlq-Job")] = true
	}
	for _, id := range ids {
		r, err := e.client.StoredResult(ctx, e.client.Subjects().Reply(id))
		require.NoError(t, err)
		require.True(t, r != nil || dlq[id], "job %s has neither a result nor a dead letter", id)
	}
	require.True(t, dlq["bad-0"] && dlq["bad-1"], "the undecodable jobs are dead letters: %v", dlq)
	require.Eventually(t, func() bool { return e.worker.StoreHealth() == nil }, 10*time.Second, 10*time.Millisecond, "ready again by itself")
}

// handedBackPast reports whether the worker's JSON log says that each of
// ids was handed back, its answer not stored, on a delivery >= delivery.
func handedBackPast(t *testing.T, logs string, ids []string, delivery int) bool {
	t.Helper()
	past := map[string]bool{}
	for line := range strings.Lines(logs) {
		var l struct {
			Msg      string `json:"msg"`
			Job      string `json:"job"`
			Delivery int    `json:"delivery"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasSuffix(l.Msg, "could not be stored; job handed back for a later delivery") && l.Delivery >= delivery {
			past[l.Job] = true
		}
	}
	for _, id := range ids {
		if !past[id] {
			return false
		}
	}
	return true
}

// TestRedeliveredJobWithAStoredResultIsNotRunAgain: a job whose result was
// stored but whose ack was lost is acked on its next delivery, not run again.
func TestRedeliveredJobWithAStoredResultIsNotRunAgain(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	ctx := ctxT(t, 30*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	cfg := bus.ConsumerConfig{AckWait: time.Second}
	cons, err := bus.EnsureConsumer(ctx, e.js, bus.Subjects{}, "demo", cfg)
	require.NoError(t, err)
	job, err := e.client.Publish(ctx, "demo", userReq("lost-ack", "hi"))
	require.NoError(t, err)
	// A worker took it, stored its result and died before its ack.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for range batch.Messages() {
	}
	res := &bus.Result{ID: "lost-ack", Status: bus.StatusOK, Text: "answered before"}
	m := nats.NewMsg(bus.ResultSubject(job.Reply))
	m.Header.Set(bus.HeaderMsgID, "lost-ack")
	m.Data, err = bus.Msgpack.Marshal(res)
	require.NoError(t, err)
	_, err = e.js.PublishMsg(ctx, m)
	require.NoError(t, err)

	e.startWorker(worker.Config{Consumer: cfg})
	requireQueueEmpty(t, e)
	require.Zero(t, e.mock.Calls(), "not run again")
}
