package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// TestQueuePendingCountsEveryClass: a group's switchyard_queue_pending is
// its jobs waiting in every priority class, not the default class alone (a
// batch backlog is what an autoscaler must see).
func TestQueuePendingCountsEveryClass(t *testing.T) {
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, bus.Provision(ctx, js, bus.StreamsConfig{}))
	var subj bus.Subjects
	for _, p := range bus.Priorities {
		_, err := bus.EnsureConsumerFor(ctx, js, subj, "g", p, bus.ConsumerConfig{})
		require.NoError(t, err)
	}
	for i, p := range []bus.Priority{bus.PriorityBatch, bus.PriorityBatch, bus.PriorityDefault, bus.PriorityInteractive} {
		_, err := js.Publish(ctx, subj.RequestFor("g", p), []byte{byte(i)})
		require.NoError(t, err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&queueCollector{js: js, groups: []string{"g"}})
	// The server counts a consumer's pending messages on a goroutine of its
	// own after the publish was acknowledged (signalConsumersLoop), a
	// scheduling hop later, later still on a loaded machine: scrape until
	// the counts caught up; the bound only stops a server that never does.
	var pending float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		pending = 0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "switchyard_queue_pending" {
					pending += m.GetGauge().GetValue()
				}
			}
		}
		if pending >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, 4.0, pending, "1 interactive + 1 default + 2 batch")
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
