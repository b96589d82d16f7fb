package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/offload"
)

// TestOverviewShowsVendorBatches: the overview lists the vendor batches in
// flight, an admin every tenant's, a tenant's user only its own.
func TestOverviewShowsVendorBatches(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_000_000, 0)
	sm := &sample{at: at, done: map[groupKey]float64{}, errs: map[groupKey]float64{}, dlq: map[string]uint64{},
		queues: map[groupKey][]TenantDepth{},
		batches: []offload.Batch{
			{Tenant: "", Group: "g", Deployment: "openai-batch", Jobs: []string{"a", "b", "c"}, State: "submitted", VendorID: "batch_1", Status: "in_progress", Done: 1, Created: at},
			{Tenant: "acme", Group: "g", Deployment: "claude-batch", Jobs: []string{"d"}, State: "submitting", Created: at},
		}}
	s := &sampler{window: time.Minute, interval: time.Second, samples: []*sample{sm}}

	o := s.overview(&Identity{Admin: true})
	require.Equal(t, []VendorBatchRow{
		{Tenant: "", Group: "g", Deployment: "openai-batch", VendorID: "batch_1", Status: "in_progress", Lines: 3, Done: 1, Created: at},
		{Tenant: "acme", Group: "g", Deployment: "claude-batch", Status: "submitting", Lines: 1, Created: at},
	}, o.VendorBatches)

	o = s.overview(&Identity{Tenant: "acme"})
	require.Len(t, o.VendorBatches, 1)
	require.Equal(t, "claude-batch", o.VendorBatches[0].Deployment)

	o = s.overview(&Identity{Tenant: "other"})
	require.Empty(t, o.VendorBatches)
}
