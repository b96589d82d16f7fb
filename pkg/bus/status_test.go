package bus_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

func TestStatusCountsStreamsGroupsAndDeadLetters(t *testing.T) {
	t.Parallel()
	f := startFleet(t, fleetOpts{})
	ctx := ctxT(t, 20*time.Second)
	for _, id := range []string{"s-1", "s-2", "s-3"} {
		_, err := f.client.Submit(ctx, "demo", userReq(id, "hi"))
		require.NoError(t, err)
	}
	// Undecodable: dead-lettered by the worker.
	require.NoError(t, f.nc.Publish("llm.req.demo", []byte{0xc1}))

	var st *bus.FleetStatus
	require.Eventually(t, func() bool {
		var err error
		st, err = f.client.Status(ctx)
		require.NoError(t, err)
		// The DLQ copy is made before the request is terminated.
		return st.DLQ == 1 && st.Streams[0].Name == bus.StreamRequests && st.Streams[0].Messages == 0
	}, 10*time.Second, 50*time.Millisecond)
	byName := map[string]bus.StreamStatus{}
	for _, s := range st.Streams {
		byName[s.Name] = s
	}
	require.EqualValues(t, 3, byName[bus.StreamResults].Messages)
	require.Positive(t, byName[bus.StreamResults].Bytes)
	require.EqualValues(t, 0, byName[bus.StreamRequests].Messages, "a work queue drops acked jobs")
	require.Equal(t, 3, byName[bus.StreamRequests].Consumers, "a consumer per class")
	require.Len(t, st.Groups, 1)
	g := st.Groups[0]
	require.Equal(t, "demo", g.Group)
	require.EqualValues(t, 0, g.Pending)
	require.Equal(t, 0, g.InFlight)
	require.EqualValues(t, 1, g.DLQ)
	require.Positive(t, g.Waiting, "the idle worker has a pull request waiting")
	require.Len(t, g.Classes, 3)
	for i, p := range bus.Priorities {
		require.Equal(t, p, g.Classes[i].Priority)
	}
	// The idle worker waits on every class (a pull request of each is
	// renewed when it expires, so look until all three are seen at once).
	require.Eventually(t, func() bool {
		st, err := f.client.Status(ctx)
		require.NoError(t, err)
		for _, c := range st.Groups[0].Classes {
			if c.Waiting == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the idle worker waits on every class")
	require.NotNil(t, g.LastDelivered)
}
