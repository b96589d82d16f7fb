package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cost section runs end to end on a small scale: every repeat is a
// cache hit with no provider call, every line is answered and priced, and
// the report says so. (Its figures are printed by submit bench --cost, not
// asserted here.)
func TestCostSection(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Cost(t.Context(), CostConfig{Hits: 20, Lines: 40, TTFT: 20 * time.Millisecond, Concurrency: 8}, &out)
	require.NoError(t, err)
	require.Equal(t, 20, rep.HitsCached)
	require.Zero(t, rep.HitProviderCalls)
	require.Equal(t, 40, rep.LinesOK)
	require.Positive(t, rep.Interactive)
	require.Less(t, rep.VendorBatch, rep.Interactive)
	require.Positive(t, rep.VendorBatch)
	require.Equal(t, 40, rep.OffloadedOK, "every line answered by a vendor batch")
	require.Equal(t, 1, rep.OffloadBatches)
	require.InDelta(t, rep.VendorBatch, rep.Offloaded, 1e-9, "the offloaded run costs the batch price of the live run's usage")
	require.Contains(t, out.String(), "hit:  time to first chunk p50")
	require.Contains(t, out.String(), "batch of 40 lines on gpt-4o-mini")
}
