package bench

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// setup starts a JetStream server and returns a connection and its context.
func setup(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

func TestBaselineRoundTrip(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	ctx := t.Context()
	require.NoError(t, ProvisionBaseline(ctx, js))

	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- ServeBaseline(sctx, nc, 16, 20) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-served) })

	fn, err := BaselineJob(nc, 512)
	require.NoError(t, err)
	r, err := Run(ctx, "baseline", LoadConfig{Jobs: 60, Concurrency: 8, JobTimeout: 10 * time.Second}, fn)
	require.NoError(t, err)
	require.Equal(t, 60, r.OK, "errors: %v", r.Errors)
	require.EqualValues(t, 60, r.FirstChunk.Count())

	// Every job stored exactly one result and left the work queue. The
	// client sees a result when it is published, which can be before the
	// results stream has stored it (the stream ingests on its own queue),
	// so the count is read until it settles: 60, and not more.
	res, err := js.Stream(ctx, BaselineResults)
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, err := res.Info(ctx)
		if assert.NoError(c, err) {
			assert.GreaterOrEqual(c, info.State.Msgs, uint64(60), "results stored")
		}
	}, 5*time.Second, 10*time.Millisecond)
	req, err := js.Stream(ctx, BaselineRequests)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := req.Info(ctx)
		return err == nil && info.State.Msgs == 0
	}, 5*time.Second, 10*time.Millisecond)
	info, err := res.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 60, info.State.Msgs, "one result per job")
}

func TestBaselineChunksAndResult(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	ctx := t.Context()
	require.NoError(t, ProvisionBaseline(ctx, js))
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- ServeBaseline(sctx, nc, 4, 7) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-served) })

	sub, err := nc.SubscribeSync(baselineRes + "job-1.>")
	require.NoError(t, err)
	m := nats.NewMsg(baselineReq)
	m.Header.Set(jetstream.MsgIDHeader, "job-1")
	m.Data = []byte(Prompt(512))
	_, err = js.PublishMsg(ctx, m)
	require.NoError(t, err)
	var chunks int
	for {
		msg, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err)
		if strings.HasSuffix(msg.Subject, ".result") {
			require.Contains(t, string(msg.Data), `"status":"ok"`)
			require.Equal(t, "job-1", msg.Header.Get(jetstream.MsgIDHeader))
			break
		}
		chunks++
		require.Contains(t, string(msg.Data), `"type":"chunk"`)
	}
	require.Equal(t, 7, chunks)
}

func TestSSEServerSpeaksOpenAI(t *testing.T) {
	t.Parallel()
	s, err := StartSSEServer(5)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	resp, err := http.Post(s.URL+"/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	body := string(b)
	require.Equal(t, 5, strings.Count(body, `"delta":{"content":`))
	require.Contains(t, body, `"finish_reason":"stop"`)
	require.Contains(t, body, `"usage":{"prompt_tokens":128,"completion_tokens":5`)
	require.True(t, strings.HasSuffix(body, "data: [DONE]\n\n"))

	fn := DirectJob(s.URL, "gpt-4o-mini", Prompt(512))
	r, err := Run(t.Context(), "direct", LoadConfig{Jobs: 10, Concurrency: 2}, fn)
	require.NoError(t, err)
	require.Equal(t, 10, r.OK, "errors: %v", r.Errors)
	require.EqualValues(t, 10, r.FirstChunk.Count())
	require.EqualValues(t, 11, s.Requests.Load())
}

func TestDirectJobReportsTransportErrors(t *testing.T) {
	t.Parallel()
	s, err := StartSSEServer(5)
	require.NoError(t, err)
	url := s.URL
	require.NoError(t, s.Close())
	o := DirectJob(url, "gpt-4o-mini", "hi")(t.Context(), 0)
	require.Equal(t, CodeTransport, o.Code)
}

// fakeWorker answers jobs of group "g" on Switchyard's wire contract: three
// chunks and an ok result, or an error result when the prompt says "fail".
// It reports problems with t.Errorf (never FailNow: it runs on the
// consumer's goroutine) and stops before the test ends.
func fakeWorker(t *testing.T, nc *nats.Conn, js jetstream.JetStream) {
	t.Helper()
	subj := bus.Subjects{}
	require.NoError(t, bus.Provision(t.Context(), js, bus.StreamsConfig{Subjects: subj}))
	cons, err := bus.EnsureConsumer(t.Context(), js, subj, "g", bus.ConsumerConfig{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu       sync.Mutex // held for a whole callback
		stopping bool
	)
	answer := func(m jetstream.Msg) error {
		enc := bus.Detect(m.Headers(), m.Data())
		var req bus.Request
		if err := enc.Unmarshal(m.Data(), &req); err != nil {
			return err
		}
		id := m.Headers().Get(bus.HeaderMsgID)
		reply := subj.Reply(id)
		res := bus.Result{ID: id, Status: bus.StatusOK, Timings: bus.Timings{QueuedMS: 3}}
		if strings.Contains(req.Messages[0].Content.Text, "fail") {
			res = bus.Result{ID: id, Status: bus.StatusError, Error: &bus.Error{Code: bus.CodeRateLimited, Message: "slow down"}}
		} else if req.Streaming() {
			for k := range 3 {
				b, err := enc.Marshal(&bus.Event{ID: id, Type: bus.EventChunk, Seq: uint64(k + 1), Delta: "w "})
				if err != nil {
					return err
				}
				if err := nc.Publish(bus.EventsSubject(reply), b); err != nil {
					return err
				}
			}
		}
		b, err := enc.Marshal(&res)
		if err != nil {
			return err
		}
		rm := nats.NewMsg(bus.ResultSubject(reply))
		rm.Header.Set(bus.HeaderContentType, enc.ContentType())
		rm.Data = b
		if _, err := js.PublishMsg(ctx, rm); err != nil {
			return err
		}
		return m.Ack()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if stopping {
			return
		}
		if err := answer(m); err != nil {
			t.Errorf("fake worker: %v", err)
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		mu.Lock()
		stopping = true
		mu.Unlock()
		cc.Stop()
		cancel()
	})
}

func TestSwitchyardJob(t *testing.T) {
	t.Parallel()
	nc, js := setup(t)
	fakeWorker(t, nc, js)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)

	tests := []struct {
		name       string
		prompt     string
		stream     bool
		wantOK     int
		wantChunks int64
		wantErrors map[string]int
	}{
		{name: "streamed", prompt: "hello", stream: true, wantOK: 5, wantChunks: 5, wantErrors: map[string]int{}},
		{name: "result only", prompt: "hello", stream: false, wantOK: 5, wantChunks: 0, wantErrors: map[string]int{}},
		{name: "error result", prompt: "please fail", stream: true, wantOK: 0, wantErrors: map[string]int{"rate_limited": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chunks sync.Map
			onChunk := func(i int, _ time.Time) {
				v, _ := chunks.LoadOrStore(i, new(int))
				*v.(*int)++
			}
			r, err := Run(t.Context(), tt.name, LoadConfig{Jobs: 5, Concurrency: 2, JobTimeout: 10 * time.Second}, SwitchyardJob(c, "g", tt.prompt, tt.stream, onChunk))
			require.NoError(t, err)
			require.Equal(t, tt.wantOK, r.OK)
			require.Equal(t, tt.wantErrors, r.Errors)
			require.Equal(t, tt.wantChunks, r.FirstChunk.Count())
			if tt.wantOK > 0 {
				require.EqualValues(t, tt.wantOK, r.Queued.Count())
				require.InDelta(t, 3*time.Millisecond, r.Queued.Quantile(.5), float64(10*time.Microsecond))
			}
			if tt.stream && tt.wantOK > 0 {
				for i := range 5 {
					v, ok := chunks.Load(i)
					require.True(t, ok, "job %d saw no chunk", i)
					require.Equal(t, 3, *v.(*int))
				}
			}
		})
	}
}

func TestSwitchyardJobInvalidGroup(t *testing.T) {
	t.Parallel()
	nc, _ := setup(t)
	c, err := bus.NewClient(nc)
	require.NoError(t, err)
	o := SwitchyardJob(c, "Not A Group", "hi", true, nil)(t.Context(), 0)
	require.Equal(t, string(bus.CodeInvalidRequest), o.Code)
}
