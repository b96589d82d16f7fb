package bus

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
)

// TestShortResultsMaxAge: results kept for less than the default dedupe
// window (1h) still provision; the window shrinks to the results' age,
// since a result that has expired cannot be deduplicated anyway. JetStream
// refuses a duplicates window larger than the max age, and a worker with
// SWITCHYARD_RESULTS_MAX_AGE=10m retried "waiting for JetStream" forever.
func TestShortResultsMaxAge(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	cfg := StreamsConfig{ResultsMaxAge: 10 * time.Minute, DurableEvents: true, EventsMaxAge: 5 * time.Minute}
	require.NoError(t, Provision(t.Context(), js, cfg))
	s, err := js.Stream(t.Context(), StreamResults)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, info.Config.MaxAge)
	require.Equal(t, 10*time.Minute, info.Config.Duplicates)
}

// TestClassConsumersSplitAGroup: each class of a group has its own durable
// consumer on the work-queue stream, taking the jobs of its subject only,
// and Status counts each class's queue. JetStream refuses overlapping
// filters on a work queue, so creating all three must work, on the
// anonymous and a tenant's stream.
func TestClassConsumersSplitAGroup(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, Provision(t.Context(), js, StreamsConfig{Tenants: []string{"acme"}}))
	for _, tenant := range []string{"", "acme"} {
		subj := Subjects{Tenant: tenant}
		cons := map[Priority]jetstream.Consumer{}
		for _, p := range Priorities {
			c, err := EnsureConsumerFor(t.Context(), js, subj, "demo", p, ConsumerConfig{})
			require.NoError(t, err, "%s %s", tenant, p)
			cons[p] = c
		}
		c, err := NewClient(nc, WithTenant(tenant), WithEncoding(JSON))
		require.NoError(t, err)
		for i, p := range []Priority{PriorityBatch, PriorityBatch, "", PriorityInteractive} {
			_, err := js.Publish(t.Context(), subj.RequestFor("demo", p), fmt.Appendf(nil, `{"id":"j%d","messages":[]}`, i))
			require.NoError(t, err)
		}
		// The server counts a consumer's pending messages when its stream
		// signals it of a new one, on a goroutine of its own after the
		// publish was acknowledged (signalConsumersLoop): the counts catch
		// up a scheduling hop later, later still on a loaded machine. So
		// wait for them; the bound only stops a server that never does.
		for p, want := range map[Priority]uint64{PriorityInteractive: 1, PriorityDefault: 1, PriorityBatch: 2} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				info, err := cons[p].Info(t.Context())
				require.NoError(t, err)
				if info.NumPending == want {
					break
				}
				require.True(t, time.Now().Before(deadline), "%q %s: %d pending after 10s, want %d", tenant, p, info.NumPending, want)
				time.Sleep(5 * time.Millisecond)
			}
		}

		// Status has the queue depth of each class and their sum.
		st, err := c.Status(t.Context())
		require.NoError(t, err)
		require.Len(t, st.Groups, 1)
		g := st.Groups[0]
		require.Equal(t, "demo", g.Group)
		require.EqualValues(t, 4, g.Pending)
		require.Len(t, g.Classes, 3)
		for i, want := range []struct {
			p       Priority
			pending uint64
		}{{PriorityInteractive, 1}, {PriorityDefault, 1}, {PriorityBatch, 2}} {
			require.Equal(t, want.p, g.Classes[i].Priority)
			require.Equal(t, want.pending, g.Classes[i].Pending)
			require.Equal(t, ConsumerNameFor("demo", want.p), g.Classes[i].Consumer)
		}
		gs, err := c.GroupStatus(t.Context(), "demo")
		require.NoError(t, err)
		require.Equal(t, g.Classes, gs.Classes)
		require.EqualValues(t, 4, gs.Pending)
	}
}
