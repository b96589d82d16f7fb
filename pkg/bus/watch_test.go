package bus_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm/mock"
)

// watchAll reads a watcher to its result, stopping after max events when
// max > 0 (the result is then nil).
func watchAll(t *testing.T, ctx context.Context, w *bus.Watcher, max int) ([]bus.Event, *bus.Result) {
	t.Helper()
	var evs []bus.Event
	for {
		if max > 0 && len(evs) == max {
			require.NoError(t, w.Close())
			return evs, nil
		}
		ev, res, err := w.Next(ctx)
		require.NoError(t, err)
		if res != nil {
			_, _, err := w.Next(ctx)
			require.ErrorIs(t, err, io.EOF)
			return evs, res
		}
		evs = append(evs, *ev)
	}
}

func deltas(evs []bus.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Delta)
	}
	return b.String()
}

// waitStored waits until the results stream holds job id's result: the
// requester may see it a moment before the stream has stored it (and, the
// stream storing in order, the job's events before it).
func waitStored(t *testing.T, ctx context.Context, c *bus.Client, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		res, err := c.StoredResult(ctx, c.Subjects().Reply(id))
		return err == nil && res != nil
	}, 5*time.Second, 5*time.Millisecond)
}

func TestWatchAfterTheJobReplaysItWhole(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{durable: true, mock: mock.Config{Tokens: 15}})
	ctx := ctxT(t, 20*time.Second)
	var live []bus.Event
	res, err := f.client.Submit(ctx, "demo", userReq("watch-after", "tell me"), bus.OnEvent(func(e *bus.Event) { live = append(live, *e) }))
	require.NoError(t, err)
	require.NotEmpty(t, live)
	waitStored(t, ctx, f.client, "watch-after")

	// Events are published with core NATS and stored by the stream on its
	// own time: the client can see the result before the stream stored
	// every event. Watch once they are.
	js, err := jetstream.New(f.nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, bus.StreamResults)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.Subjects{}.Reply("watch-after")+".>"))
		if err != nil {
			return false
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return n == uint64(len(live)+1)
	}, 10*time.Second, 10*time.Millisecond, "every event and the result are stored")
	w, err := f.client.Watch(ctx, "watch-after", 0)
	require.NoError(t, err)
	require.True(t, w.Durable)
	require.Equal(t, uint64(len(live)+1), w.Stored, "Watch counts what is stored")
	evs, got := watchAll(t, ctx, w, 0)
	require.Equal(t, live, evs, "the replay is the live stream, event for event")
	require.Equal(t, res.Text, deltas(evs))
	require.Equal(t, res.Text, got.Text)

	// From a seq: the rest of the stream only.
	w, err = f.client.Watch(ctx, "watch-after", 6)
	require.NoError(t, err)
	tail, got := watchAll(t, ctx, w, 0)
	require.Equal(t, live[5:], tail)
	require.Equal(t, res.ID, got.ID)

	// Stored events expire on their own, long before the result.
	s, err := js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	require.True(t, s.CachedInfo().Config.AllowMsgTTL)
	m, err := s.GetLastMsgForSubject(ctx, bus.EventsSubject(bus.Subjects{}.Reply("watch-after")))
	require.NoError(t, err)
	require.Equal(t, "1h0m0s", m.Header.Get(jetstream.MsgTTLHeader))
	m, err = s.GetLastMsgForSubject(ctx, bus.ResultSubject(bus.Subjects{}.Reply("watch-after")))
	require.NoError(t, err)
	require.Empty(t, m.Header.Get(jetstream.MsgTTLHeader), "results live for the stream's MaxAge")
}

func TestWatchMidJobGetsEveryChunkOnce(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{durable: true, mock: mock.Config{Tokens: 40, ChunkDelay: 15 * time.Millisecond}})
	ctx := ctxT(t, 20*time.Second)
	job, err := f.client.Publish(ctx, "demo", userReq("watch-mid", "tell me a long story"))
	require.NoError(t, err)
	// Wait until the job is streaming.
	for n := 0; n < 5; {
		ev, _, err := job.Next(ctx)
		require.NoError(t, err)
		if ev.Type == bus.EventChunk {
			n++
		}
	}
	require.NoError(t, job.Close())

	// A watcher that drops off after 10 events and reconnects from the next
	// seq, while the job goes on.
	w, err := f.client.Watch(ctx, "watch-mid", 0)
	require.NoError(t, err)
	first, _ := watchAll(t, ctx, w, 10)
	w, err = f.client.Watch(ctx, "watch-mid", first[len(first)-1].Seq+1)
	require.NoError(t, err)
	rest, res := watchAll(t, ctx, w, 0)
	require.NotNil(t, res)
	require.Equal(t, bus.StatusOK, res.Status)
	all := append(first, rest...)
	for i, ev := range all {
		require.Equal(t, uint64(i+1), ev.Seq, "every event once, in order")
		require.Equal(t, 1, ev.Attempt)
	}
	require.Equal(t, res.Text, deltas(all))
	require.Equal(t, 40, strings.Count(deltas(all), " ")+1)
}

func TestWatchWithoutDurableEventsReturnsTheResult(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{mock: mock.Config{Text: "one two"}})
	ctx := ctxT(t, 20*time.Second)
	_, err := f.client.Submit(ctx, "demo", userReq("watch-plain", "hi"))
	require.NoError(t, err)
	waitStored(t, ctx, f.client, "watch-plain")
	w, err := f.client.Watch(ctx, "watch-plain", 0)
	require.NoError(t, err)
	require.False(t, w.Durable)
	evs, res := watchAll(t, ctx, w, 0)
	require.Empty(t, evs)
	require.Equal(t, "one two", res.Text)
	_, err = f.client.Watch(ctx, "bad id!", 0)
	require.ErrorIs(t, err, &bus.Error{Code: bus.CodeInvalidRequest})
}

func TestWatchSaysWhenNothingIsStored(t *testing.T) {
	t.Parallel()
	for _, durable := range []bool{true, false} {
		f := startFleet(t, fleetOpts{durable: durable, mock: mock.Config{Tokens: 2}})
		ctx := ctxT(t, 20*time.Second)
		w, err := f.client.Watch(ctx, "no-such-job", 0)
		require.NoError(t, err)
		require.Zero(t, w.Stored, "durable=%v", durable)
		require.NoError(t, w.Close())
		_, err = f.client.Submit(ctx, "demo", userReq("known-job", "hi"))
		require.NoError(t, err)
		waitStored(t, ctx, f.client, "known-job")
		w, err = f.client.Watch(ctx, "known-job", 0)
		require.NoError(t, err)
		require.NotZero(t, w.Stored, "durable=%v", durable)
		require.NoError(t, w.Close())
	}
}

// TestCancelWithoutADeadline: Cancel flushes its message, and nats.go's
// FlushWithContext refuses a context without a deadline: 'submit cancel'
// (whose context has none) failed with "context requires a deadline".
func TestCancelWithoutADeadline(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{mock: mock.Config{Tokens: 2}})
	require.NoError(t, f.client.Cancel(context.Background(), "no-deadline-job"))
}
