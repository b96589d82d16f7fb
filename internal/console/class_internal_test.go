package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOverviewShowsQueueDepthPerClass: a group's queue is shown per
// priority class, highest first: a batch backlog is on the batch row, not
// summed into the default one. The default row is always there and holds
// the dead letters; an idle class has no row; a tenant sees only its own
// queues.
func TestOverviewShowsQueueDepthPerClass(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_000_000, 0)
	mk := func(at time.Time, batch uint64) *sample {
		return &sample{at: at, done: map[groupKey]float64{}, errs: map[groupKey]float64{}, dlq: map[string]uint64{"g": 2},
			queues: map[groupKey][]TenantDepth{
				{"g", "interactive"}: {{Tenant: "", Pending: 0}},
				{"g", "default"}:     {{Tenant: "", Pending: 1}, {Tenant: "acme", Pending: 4, InFlight: 1}},
				{"g", "batch"}:       {{Tenant: "", Pending: batch, InFlight: 2}},
			}}
	}
	s := &sampler{window: time.Minute, interval: time.Second,
		samples: []*sample{mk(at, 50), mk(at.Add(time.Second), 40)}}

	o := s.overview(&Identity{Admin: true})
	require.True(t, o.HasClass)
	type row struct {
		class             string
		pending, inFlight int
		depth             []float64
		dlq               uint64
	}
	var got []row
	for _, r := range o.Groups {
		got = append(got, row{r.Class, int(r.Pending), r.InFlight, r.Depth, r.DLQ})
	}
	require.Equal(t, []row{
		{"default", 5, 1, []float64{6, 6}, 2},
		{"batch", 40, 2, []float64{52, 42}, 0},
	}, got)

	// acme has jobs in the default class only.
	o = s.overview(&Identity{Tenant: "acme"})
	require.False(t, o.HasClass)
	require.Len(t, o.Groups, 1)
	require.Equal(t, uint64(4), o.Groups[0].Pending)
	require.Equal(t, []TenantDepth{{Tenant: "acme", Pending: 4, InFlight: 1}}, o.Groups[0].ByTenant)
	require.Zero(t, o.Groups[0].DLQ, "dead letters are an admin's")
}
