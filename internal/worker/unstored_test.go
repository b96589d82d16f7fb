package worker_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestLiveResultIsTheStoredOne: a result publish whose PubAck fails has
// still reached the client live (a JetStream publish is a core publish
// too). The job used to run again on its next delivery, so the client saw
// one result live and read another one (other timings, another answer from
// a real model) back from the results stream. The redelivery now publishes
// the very message the first delivery sent: the live and the stored result
// are the same bytes, after one provider call.
func TestLiveResultIsTheStoredOne(t *testing.T) {
	t.Parallel()
	var logs syncLog
	e := setup(t, opts{noStart: true, server: func(o *server.Options) { o.JetStreamMaxStore = 4 << 20 }})
	ctx := ctxT(t, 120*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	job, err := e.client.Publish(ctx, "demo", userReq("live-1", "hi"))
	require.NoError(t, err)
	defer job.Close()
	// Fill the store: the result cannot be stored, but is delivered live.
	_, err = e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILLER", Subjects: []string{"filler"}})
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for {
		if _, err := e.js.Publish(ctx, "filler", chunk); err != nil {
			require.ErrorContains(t, err, "insufficient resources")
			break
		}
	}
	e.startWorker(worker.Config{
		Consumer:   bus.ConsumerConfig{MaxDeliver: 1000, AckWait: 5 * time.Second},
		StoreRetry: 100 * time.Millisecond, HandBackDelay: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	var live *bus.Result
	for live == nil {
		_, live, err = job.Next(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, bus.StatusOK, live.Status)
	// Two deliveries failed to store it.
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "result could not be stored") >= 2
	}, 60*time.Second, 10*time.Millisecond)

	require.NoError(t, e.js.DeleteStream(ctx, "FILLER")) // space is freed
	requireQueueEmpty(t, e)
	stored := storedResult(t, ctx, e.client, "live-1")
	require.Equal(t, live, stored, "the client reads back the result it saw live")
	require.EqualValues(t, 1, e.mock.Calls(), "the job ran once")
	require.Contains(t, logs.String(), "publishing it again, not running the job")
}
