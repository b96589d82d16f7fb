package bus

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
)

func queueSetup(t *testing.T) (*nats.Conn, *Client) {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, Provision(t.Context(), js, StreamsConfig{}))
	c, err := NewClient(nc)
	require.NoError(t, err)
	return nc, c
}

// Regression: Publish used SubscribeSync, which allocates a 64k-pointer
// channel (512 KiB) per job; thousands of jobs in flight cost gigabytes and
// most of a producer's CPU in GC.
func TestPublishAllocatesLittlePerJob(t *testing.T) {
	_, c := queueSetup(t)
	ctx := t.Context()
	const n = 50
	jobs := make([]*Job, 0, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		j, err := c.Publish(ctx, "g", &Request{Messages: []Message{{Role: "user", Content: Text("hi")}}})
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	runtime.ReadMemStats(&after)
	perJob := (after.TotalAlloc - before.TotalAlloc) / n
	require.Less(t, perJob, uint64(64<<10), "bytes allocated per published job")
	for _, j := range jobs {
		require.NoError(t, j.Close())
	}
}

func TestJobReadsEventsInOrderThenResultThenErrors(t *testing.T) {
	t.Parallel()
	nc, c := queueSetup(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	j, err := c.Publish(ctx, "g", &Request{Messages: []Message{{Role: "user", Content: Text("hi")}}})
	require.NoError(t, err)
	for k := range 100 {
		b, err := Msgpack.Marshal(&Event{ID: j.ID, Type: EventChunk, Seq: uint64(k + 1)})
		require.NoError(t, err)
		require.NoError(t, nc.Publish(EventsSubject(j.Reply), b))
	}
	b, err := Msgpack.Marshal(&Result{ID: j.ID, Status: StatusOK, Text: "done"})
	require.NoError(t, err)
	require.NoError(t, nc.Publish(ResultSubject(j.Reply), b))
	for k := range 100 {
		ev, res, err := j.Next(ctx)
		require.NoError(t, err)
		require.Nil(t, res)
		require.EqualValues(t, k+1, ev.Seq)
	}
	ev, res, err := j.Next(ctx)
	require.NoError(t, err)
	require.Nil(t, ev)
	require.Equal(t, "done", res.Text)
	_, _, err = j.Next(ctx)
	require.ErrorIs(t, err, nats.ErrBadSubscription)
	require.NoError(t, j.Close(), "Close after the result is a no-op")
}

func TestJobNextHonoursContextAndConnectionClose(t *testing.T) {
	t.Parallel()
	nc, c := queueSetup(t)
	j, err := c.Publish(t.Context(), "g", &Request{Messages: []Message{{Role: "user", Content: Text("hi")}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, _, err = j.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	nc.Close()
	_, _, err = j.Next(t.Context())
	require.ErrorIs(t, err, nats.ErrBadSubscription)
	require.NoError(t, j.Close())
}
