package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// jumpClock is a worker clock that can leap forward: what a frozen process
// (docker pause, SIGSTOP, a stalled VM) sees when it is thawed. The wall
// clock has moved on, the timers that should have fired meanwhile have not
// run yet, and the chunks the provider sent are already in the socket.
type jumpClock struct{ skew atomic.Int64 }

func (c *jumpClock) now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }

// thawProvider streams the mock's answer and leaps the clock by jump once
// after chunks have been read.
type thawProvider struct {
	llm.Provider
	clk    *jumpClock
	after  int
	jump   time.Duration
	chunks atomic.Int64
}

func (p *thawProvider) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	s, err := p.Provider.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return &thawStream{Stream: s, p: p}, nil
}

type thawStream struct {
	llm.Stream
	p *thawProvider
}

func (s *thawStream) Next() bool {
	if s.p.chunks.Add(1) == int64(s.p.after) {
		s.p.clk.skew.Store(int64(s.p.jump))
	}
	return s.Stream.Next()
}

// Seed 101 of the chaos schedule: a worker paused mid-stream finished the
// answer when it was thawed, seconds after the job's deadline, and answered
// ok. The contract (docs/wire.md, deadline_exceeded: "passed (queued or
// running)") says a job is never answered ok after its deadline: the reply
// path checks the clock, whatever the context's timer has done yet.
func TestNoOKAnswerAfterTheDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		stream bool
		schema bool
	}{{"streamed", true, false}, {"not streamed", false, false}, {"structured", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := &jumpClock{}
			// The deadline is far off in real time (the context's timer never
			// fires in this test); the clock leaps past it after 3 chunks.
			text := ""
			if tc.schema {
				text = `{"answer":"forty-two"}`
			}
			p := &thawProvider{Provider: mock.New(mock.Config{Tokens: 12, Text: text}), clk: clk, after: 3, jump: time.Minute}
			e := setup(t, opts{provider: p, cfg: worker.Config{Now: clk.now}})
			ctx := ctxT(t, 20*time.Second)
			req := userReq("thawed-"+strings.ReplaceAll(tc.name, " ", "-"), "a long answer")
			req.Stream = &tc.stream
			if tc.schema {
				req.ResponseFormat = &bus.ResponseFormat{Type: "json_schema", JSONSchema: &bus.JSONSchema{Name: "a", Schema: map[string]any{"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}, "required": []string{"answer"}}}}
			}
			req.Deadline = time.Now().Add(30 * time.Second).Format(time.RFC3339Nano)
			job, err := e.client.Publish(ctx, "demo", req)
			require.NoError(t, err)
			evs, res := collect(t, ctx, job)
			require.Equal(t, bus.StatusError, res.Status, "answered %s %q after its deadline", res.Status, res.Text)
			require.Equal(t, bus.CodeDeadlineExceeded, res.Error.Code)
			require.Empty(t, res.Text, "the late answer is not delivered as if it were one")
			// The read path stops at the first chunk read after the deadline:
			// the rest of the answer is not streamed on.
			var chunks int
			for _, ev := range evs {
				if ev.Type == bus.EventChunk {
					chunks++
				}
			}
			require.Less(t, chunks, 12, "every chunk was streamed after the deadline")
		})
	}
}
