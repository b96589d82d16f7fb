package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

type env struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	client *bus.Client
	mock   *mock.Provider
	router *policy.Router
	worker *worker.Worker // the last one started
}

type opts struct {
	mock     mock.Config
	provider llm.Provider // instead of the mock, when set
	cfg      worker.Config
	server   func(*server.Options)
	noStart  bool
}

func setup(t *testing.T, o opts) *env {
	t.Helper()
	var configure []func(*server.Options)
	if o.server != nil {
		configure = append(configure, o.server)
	}
	srv := natstest.Server(t, configure...)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	m := mock.New(o.mock)
	var p llm.Provider = m
	if o.provider != nil {
		p = o.provider
	}
	r, err := policy.NewRouter([]policy.Group{{Name: "demo", Deployments: []policy.Deployment{{Name: "mock-a", Model: "mock-1", Provider: p}}}})
	require.NoError(t, err)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	e := &env{t: t, srv: srv, nc: nc, js: js, client: c, mock: m, router: r}
	if !o.noStart {
		e.startWorker(o.cfg)
	}
	return e
}

// startWorker runs a worker on its own connection; the returned stop
// function ends its Run and waits for it.
func (e *env) startWorker(cfg worker.Config) (stop func(), nc *nats.Conn) {
	e.t.Helper()
	nc = natstest.Connect(e.t, e.srv)
	if cfg.Groups == nil {
		cfg.Groups = []string{"demo"}
	}
	cfg.Logger = cmpLogger(cfg.Logger)
	cfg.UnknownSweep = cmpDur(cfg.UnknownSweep, 100*time.Millisecond)
	cfg.UnknownGrace = cmpDur(cfg.UnknownGrace, 10*time.Millisecond)
	cfg.FetchWait = cmpDur(cfg.FetchWait, 300*time.Millisecond)
	w, err := worker.New(nc, e.router, cfg)
	require.NoError(e.t, err)
	e.worker = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !nc.IsClosed() { // a killed worker's Run fails, as it should
					require.NoError(e.t, err)
				}
			case <-time.After(20 * time.Second):
				e.t.Error("worker did not stop in 20s")
			}
		})
	}
	e.t.Cleanup(stop)
	select {
	case <-w.Ready():
	case err := <-done:
		e.t.Fatalf("worker ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("worker not ready in 10s")
	}
	return stop, nc
}

func cmpLogger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func userReq(id, prompt string) *bus.Request {
	return &bus.Request{ID: id, Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt)}}}
}

// collect reads a job's events and result.
func collect(t *testing.T, ctx context.Context, job *bus.Job) ([]bus.Event, *bus.Result) {
	t.Helper()
	var evs []bus.Event
	for {
		ev, res, err := job.Next(ctx)
		require.NoError(t, err)
		if res != nil {
			return evs, res
		}
		evs = append(evs, *ev)
	}
}

func text(evs []bus.Event) string {
	var s string
	for _, e := range evs {
		if e.Type == bus.EventRestart {
			s = ""
		}
		s += e.Delta
	}
	return s
}

func TestJobEndToEndMsgpackAndJSON(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 12}})
	for _, enc := range []bus.Encoding{bus.Msgpack, bus.JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			c, err := bus.NewClient(e.nc, bus.WithEncoding(enc))
			require.NoError(t, err)
			ctx := ctxT(t, 10*time.Second)
			// The raw result message must be in the requester's encoding.
			raw, err := e.nc.SubscribeSync(bus.ResultSubject(bus.Subjects{}.Reply("e2e-" + enc.String())))
			require.NoError(t, err)
			job, err := c.Publish(ctx, "demo", userReq("e2e-"+enc.String(), "hello "+enc.String()))
			require.NoError(t, err)
			evs, res := collect(t, ctx, job)
			require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
			require.Equal(t, job.ID, res.ID)
			require.Equal(t, "mock-a", res.Deployment)
			require.NotEmpty(t, res.Text)
			require.Equal(t, res.Text, text(evs))
			require.Equal(t, bus.EventStart, evs[0].Type)
			for i, ev := range evs {
				require.Equal(t, uint64(i+1), ev.Seq)
				require.Equal(t, 1, ev.Attempt)
			}
			require.Equal(t, 12, res.Usage.CompletionTokens)
			require.Equal(t, "stop", res.FinishReason)
			m, err := raw.NextMsg(5 * time.Second)
			require.NoError(t, err)
			require.Equal(t, enc.ContentType(), m.Header.Get(bus.HeaderContentType))
			require.Equal(t, enc, bus.Detect(nil, m.Data), "sniffing must agree with the header")
			// The result is stored. Subscribers may see it a moment before
			// the stream has stored it: wait for it.
			var stored *bus.Result
			require.Eventually(t, func() bool {
				stored, err = c.StoredResult(ctx, job.Reply)
				return err != nil || stored != nil
			}, 5*time.Second, 5*time.Millisecond)
			require.NoError(t, err)
			require.Equal(t, res.Text, stored.Text)
		})
	}
}

func TestRawJSONJobFromAnyClient(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Text: "one two three"}})
	ctx := ctxT(t, 10*time.Second)
	// What the nats CLI would send: JSON, no headers, reply named in the body.
	sub, err := e.nc.SubscribeSync("app.replies.x1.>")
	require.NoError(t, err)
	_, err = e.js.Publish(ctx, "llm.req.demo", []byte(`{"id":"x1","reply":"app.replies.x1","stream":false,"unknown_field":[1,2],"messages":[{"role":"user","content":"hi"}],"metadata":{"k":"v"}}`))
	require.NoError(t, err)
	m, err := sub.NextMsgWithContext(ctx)
	require.NoError(t, err)
	require.Equal(t, "app.replies.x1.result", m.Subject, "stream:false sends no events")
	require.Equal(t, byte('{'), m.Data[0])
	var res bus.Result
	require.NoError(t, json.Unmarshal(m.Data, &res))
	require.Equal(t, bus.StatusOK, res.Status)
	require.Equal(t, "one two three", res.Text)
	require.Equal(t, map[string]string{"k": "v"}, res.Metadata)
}

func TestDuplicateJobRunsOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 3}})
	ctx := ctxT(t, 10*time.Second)
	res, err := e.client.Submit(ctx, "demo", userReq("dup-1", "hi"))
	require.NoError(t, err)
	res2, err := e.client.Submit(ctx, "demo", userReq("dup-1", "hi"))
	require.NoError(t, err)
	require.Equal(t, res.Text, res2.Text, "the second submit reads the stored result")
	time.Sleep(300 * time.Millisecond) // a wrongly re-run job would call the mock again by now
	require.EqualValues(t, 1, e.mock.Calls())
}

func TestLongJobIsNotRedelivered(t *testing.T) {
	t.Parallel()
	// AckWait 600ms, job 2s: only InProgress keeps it from redelivery.
	e := setup(t, opts{mock: mock.Config{Tokens: 10, ChunkDelay: 200 * time.Millisecond}, cfg: worker.Config{Consumer: bus.ConsumerConfig{AckWait: 600 * time.Millisecond}}})
	ctx := ctxT(t, 15*time.Second)
	job, err := e.client.Publish(ctx, "demo", userReq("long-1", "take your time"))
	require.NoError(t, err)
	evs, res := collect(t, ctx, job)
	require.Equal(t, bus.StatusOK, res.Status)
	for _, ev := range evs {
		require.Equal(t, 1, ev.Attempt)
		require.NotEqual(t, bus.EventRestart, ev.Type)
	}
	require.EqualValues(t, 1, e.mock.Calls())
	ci, err := e.js.Consumer(ctx, bus.StreamRequests, bus.ConsumerName("demo"))
	require.NoError(t, err)
	require.Zero(t, ci.CachedInfo().NumRedelivered)
}

func TestKilledWorkerJobFinishedByAnother(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{
		mock:    mock.Config{Tokens: 8, ChunkDelay: 100 * time.Millisecond},
		noStart: true,
	})
	cfg := worker.Config{Consumer: bus.ConsumerConfig{AckWait: time.Second}, ShutdownGrace: 10 * time.Second}
	stopA, ncA := e.startWorker(cfg)
	ctx := ctxT(t, 20*time.Second)
	job, err := e.client.Publish(ctx, "demo", userReq("kill-1", "stream please"))
	require.NoError(t, err)
	// Wait for the first chunk from worker A, then kill its connection.
	var evs []bus.Event
	for {
		ev, res, err := job.Next(ctx)
		require.NoError(t, err)
		require.Nil(t, res)
		evs = append(evs, *ev)
		if ev.Type == bus.EventChunk {
			break
		}
	}
	ncA.Close() // like kill -9: no ack, no nak, no result
	go stopA()
	e.startWorker(cfg)
	rest, res := collect(t, ctx, job)
	evs = append(evs, rest...)
	require.Equal(t, bus.StatusOK, res.Status, "%+v", res.Error)
	var restart *bus.Event
	for i := range rest {
		if rest[i].Type == bus.EventRestart {
			restart = &rest[i]
			break
		}
	}
	require.NotNil(t, restart, "the redelivery starts with restart")
	require.Equal(t, 2, restart.Attempt)
	require.Equal(t, res.Text, text(evs))
	// Exactly one result is stored.
	s, err := e.js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.ResultSubject(job.Reply)))
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Subjects[bus.ResultSubject(job.Reply)])
}

func TestBadInputGetsTypedErrorAndIsNotRedelivered(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 3}})
	cases := []struct {
		name    string
		subject string
		body    string
		code    bus.ErrorCode
		dlq     bool
	}{
		{"malformed json", "llm.req.demo", `{"messages": [`, bus.CodeInvalidRequest, true},
		{"wrong field type", "llm.req.demo", `{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, bus.CodeInvalidRequest, true},
		{"no messages", "llm.req.demo", `{"messages":[]}`, bus.CodeInvalidRequest, false},
		{"bad role", "llm.req.demo", `{"messages":[{"role":"wizard","content":"x"}]}`, bus.CodeInvalidRequest, false},
		{"bad deadline", "llm.req.demo", `{"messages":[{"role":"user","content":"x"}],"deadline":"tomorrow"}`, bus.CodeInvalidRequest, false},
		{"deadline years away", "llm.req.demo", `{"messages":[{"role":"user","content":"x"}],"deadline":"2999-01-01T00:00:00Z"}`, bus.CodeInvalidRequest, false},
		{"timeout_ms past time.Duration", "llm.req.demo", `{"messages":[{"role":"user","content":"x"}],"timeout_ms":10000000000000}`, bus.CodeInvalidRequest, false},
		{"timeout_ms wrapping into the past", "llm.req.demo", `{"messages":[{"role":"user","content":"x"}],"timeout_ms":18446744073709}`, bus.CodeInvalidRequest, false},
		{"unknown group", "llm.req.nosuchgroup", `{"messages":[{"role":"user","content":"x"}]}`, bus.CodeUnknownGroup, false},
		{"invalid group subject", "llm.req.Bad.Group", `{"messages":[{"role":"user","content":"x"}]}`, bus.CodeUnknownGroup, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t, 10*time.Second)
			id := "bad-" + string(rune('a'+i))
			sub, err := e.nc.SubscribeSync(bus.ResultSubject(bus.Subjects{}.Reply(id)))
			require.NoError(t, err)
			m := nats.NewMsg(tc.subject)
			m.Header.Set(bus.HeaderMsgID, id)
			m.Data = []byte(tc.body)
			_, err = e.js.PublishMsg(ctx, m)
			require.NoError(t, err)
			rm, err := sub.NextMsgWithContext(ctx)
			require.NoError(t, err)
			var res bus.Result
			require.NoError(t, json.Unmarshal(rm.Data, &res))
			require.Equal(t, bus.StatusError, res.Status)
			require.Equal(t, tc.code, res.Error.Code, res.Error.Message)
			require.False(t, res.Error.Retryable)
			require.Equal(t, id, res.ID)
		})
	}
	require.Zero(t, e.mock.Calls(), "bad input never reaches a provider")
	ctx := ctxT(t, 10*time.Second)
	// Nothing is left to redeliver.
	require.Eventually(t, func() bool {
		s, err := e.js.Stream(ctx, bus.StreamRequests)
		require.NoError(t, err)
		return s.CachedInfo().State.Msgs == 0
	}, 5*time.Second, 20*time.Millisecond)
	c, err := e.js.Consumer(ctx, bus.StreamRequests, bus.ConsumerName("demo"))
	require.NoError(t, err)
	require.Zero(t, c.CachedInfo().NumAckPending)
	require.Zero(t, c.CachedInfo().NumRedelivered)
	// The undecodable ones are in the DLQ.
	d, err := e.js.Stream(ctx, bus.StreamDLQ)
	require.NoError(t, err)
	require.EqualValues(t, 2, d.CachedInfo().State.Msgs)
}

func TestUndecodableWithoutReplyGoesToDLQ(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{})
	ctx := ctxT(t, 10*time.Second)
	// Truncated msgpack, no headers at all: nobody to answer.
	_, err := e.js.Publish(ctx, "llm.req.demo", []byte{0x82, 0xa2, 'i', 'd'})
	require.NoError(t, err)
	d, err := e.js.Stream(ctx, bus.StreamDLQ)
	require.NoError(t, err)
	var m *jetstream.RawStreamMsg
	require.Eventually(t, func() bool {
		m, err = d.GetLastMsgForSubject(ctx, "llm.dlq.demo")
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, string(bus.CodeInvalidRequest), m.Header.Get("Llm-Dlq-Code"))
	require.Contains(t, m.Header.Get("Llm-Dlq-Reason"), "msgpack")
	require.Equal(t, []byte{0x82, 0xa2, 'i', 'd'}, m.Data)
	require.Zero(t, e.mock.Calls())
}

func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 200, ChunkDelay: 20 * time.Millisecond}})
	ctx := ctxT(t, 10*time.Second)
	job, err := e.client.Publish(ctx, "demo", userReq("cancel-1", "a long answer"))
	require.NoError(t, err)
	chunks := 0
	var res *bus.Result
	for res == nil {
		ev, r, err := job.Next(ctx)
		require.NoError(t, err)
		res = r
		if ev != nil && ev.Type == bus.EventChunk {
			chunks++
			if chunks == 3 {
				require.NoError(t, e.client.Cancel(ctx, "cancel-1"))
			}
		}
	}
	require.Equal(t, bus.StatusError, res.Status)
	require.Equal(t, bus.CodeCancelled, res.Error.Code)
	require.Less(t, chunks, 10, "the job stops within a chunk or so of the cancel")
}

func TestCancelQueuedJob(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	require.NoError(t, e.client.Cancel(ctx, "queued-1"))
	job, err := e.client.Publish(ctx, "demo", userReq("queued-1", "never runs"))
	require.NoError(t, err)
	e.startWorker(worker.Config{})
	_, res := collect(t, ctx, job)
	// The marker was stored before the worker started: Ready means the
	// worker knows it (its cancel watch has loaded the bucket), so the job
	// is never run.
	require.NotNil(t, res.Error, "the job ran: %+v", res)
	require.Equal(t, bus.CodeCancelled, res.Error.Code)
	require.Zero(t, e.mock.Calls())
}

func TestExpiredDeadlineNeverCallsProvider(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	req := userReq("late-1", "too late")
	req.TimeoutMS = 50
	job, err := e.client.Publish(ctx, "demo", req)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	e.startWorker(worker.Config{})
	_, res := collect(t, ctx, job)
	require.Equal(t, bus.CodeDeadlineExceeded, res.Error.Code)
	require.Zero(t, e.mock.Calls())
}

func TestDeadlineDuringRun(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 100, ChunkDelay: 20 * time.Millisecond}})
	ctx := ctxT(t, 10*time.Second)
	req := userReq("late-2", "slow")
	req.Deadline = time.Now().Add(300 * time.Millisecond).Format(time.RFC3339Nano)
	res, err := e.client.Submit(ctx, "demo", req)
	require.Error(t, err)
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeDeadlineExceeded})
	require.Equal(t, bus.CodeDeadlineExceeded, res.Error.Code)
}

func TestShutdownWithJobsInFlightLosesNone(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{mock: mock.Config{Tokens: 20, ChunkDelay: 50 * time.Millisecond}, noStart: true})
	// Worker A's grace is too short for its jobs: they are handed back.
	stopA, _ := e.startWorker(worker.Config{ShutdownGrace: 200 * time.Millisecond})
	ctx := ctxT(t, 30*time.Second)
	const n = 10
	jobs := make([]*bus.Job, n)
	for i := range jobs {
		var err error
		jobs[i], err = e.client.Publish(ctx, "demo", userReq("sd-"+string(rune('a'+i)), "work"))
		require.NoError(t, err)
	}
	// Let A start them all, then stop it.
	for _, j := range jobs {
		ev, _, err := j.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, bus.EventStart, ev.Type)
	}
	stopA()
	e.startWorker(worker.Config{})
	for _, j := range jobs {
		_, res := collect(t, ctx, j)
		require.Equal(t, bus.StatusOK, res.Status, "%s: %+v", j.ID, res.Error)
	}
	s, err := e.js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("llm.res.*.result"))
	require.NoError(t, err)
	require.Len(t, info.State.Subjects, n, "a result per job: %v", info.State.Subjects)
	for subj, count := range info.State.Subjects {
		require.EqualValues(t, 1, count, "one result for %s", subj)
	}
}

func TestLastDeliveryGoesToDLQWithErrorResult(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	// MaxDeliver 1: the first delivery is already the last.
	job, err := e.client.Publish(ctx, "demo", userReq("poison-1", "x"))
	require.NoError(t, err)
	e.startWorker(worker.Config{Consumer: bus.ConsumerConfig{MaxDeliver: 1}})
	_, res := collect(t, ctx, job)
	require.Equal(t, bus.CodeInternal, res.Error.Code)
	d, err := e.js.Stream(ctx, bus.StreamDLQ)
	require.NoError(t, err)
	require.EqualValues(t, 1, d.CachedInfo().State.Msgs)
	require.Zero(t, e.mock.Calls())
	_ = errors.New
}
