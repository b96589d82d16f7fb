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
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetGauge().GetValue()
		}
	}
	require.Equal(t, 4.0, got["switchyard_queue_pending"], "1 interactive + 1 default + 2 batch")
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
