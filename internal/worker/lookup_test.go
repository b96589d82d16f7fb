package worker_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestRedeliveryLookupKeepsTheDeadline: a redelivered job first looks for
// a result stored by an earlier delivery. That lookup used to wait up to
// 5 s whatever the job's deadline: in the partition_nats_node scenario the
// results stream was leaderless for ~3 s after the heal, and jobs with a
// 3 s timeout were answered seconds late. Here the lookup blocks (the
// stream serves no direct gets and a subscriber takes the requests without
// answering them): the job must still be answered by its deadline, not
// when a 5 s lookup gives up.
func TestRedeliveryLookupKeepsTheDeadline(t *testing.T) {
	t.Parallel()
	e := setup(t, opts{noStart: true})
	ctx := ctxT(t, 60*time.Second)
	require.NoError(t, bus.Provision(ctx, e.js, bus.StreamsConfig{}))
	subj := bus.Subjects{}
	cons, err := bus.EnsureConsumerFor(ctx, e.js, subj, "demo", bus.PriorityDefault, bus.ConsumerConfig{AckWait: 30 * time.Second})
	require.NoError(t, err)

	const timeout = 2500 * time.Millisecond
	req := userReq("lookup-1", "hi")
	req.TimeoutMS = timeout.Milliseconds()
	published := time.Now()
	job, err := e.client.Publish(ctx, "demo", req)
	require.NoError(t, err)
	defer job.Close()
	// The first delivery is held here, as by a worker whose ack is lost.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	first := <-batch.Messages()
	require.NotNil(t, first, "first delivery")

	e.startWorker(worker.Config{Consumer: bus.ConsumerConfig{AckWait: 30 * time.Second}})
	// The worker's start provisioned the streams; now the lookup blocks.
	s, err := e.js.Stream(ctx, bus.StreamResults)
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	_, err = e.js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	var lookups atomic.Int64
	sub, err := e.nc.Subscribe("$JS.API.DIRECT.GET."+bus.StreamResults+".>", func(*nats.Msg) { lookups.Add(1) })
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, e.nc.Flush())

	require.NoError(t, first.Nak()) // delivered again, to the worker
	var res *bus.Result
	for res == nil {
		_, res, err = job.Next(ctx)
		require.NoError(t, err)
	}
	late := time.Since(published) - timeout
	require.Positive(t, lookups.Load(), "the redelivery looked for a stored result")
	require.Equal(t, bus.StatusError, res.Status)
	require.Equal(t, bus.CodeDeadlineExceeded, res.Error.Code)
	require.Less(t, late, 1500*time.Millisecond, "answered %s after the deadline", late)
}
