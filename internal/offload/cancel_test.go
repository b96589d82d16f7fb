package offload_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCancelAfterSend: a job cancelled once its batch was sent is answered
// cancelled once, and the vendor's answer of its line is dropped; the
// other jobs of the batch get theirs.
func TestCancelAfterSend(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			h := newHost()
			e, ids, _ := f.sent(h, 3)
			h.cancel("job-1")
			e.Tick(t.Context())
			require.Len(t, h.answers["job-1"], 1)
			require.True(t, h.answers["job-1"][0].Cancelled)
			require.NotEmpty(t, h.answers["job-1"][0].BatchID, "it was sent")
			f.vendor.Release()
			f.run(e, h, len(ids))
			for _, id := range ids {
				require.Len(t, h.answers[id], 1, id)
			}
			require.True(t, h.answers["job-1"][0].Cancelled, "the vendor's answer was dropped")
			require.False(t, h.answers["job-0"][0].Cancelled)
			require.Equal(t, "answer to q2", h.answers["job-2"][0].Text)
			require.Len(t, f.vendor.Created(), 1)
			require.Empty(t, h.live)
		})
	}
}

// TestCancelWholeBatchAfterSend: when every job of a sent batch is
// cancelled, the batch is cancelled at its vendor (llm.Batcher's
// CancelBatch): no line billed, every job answered cancelled once.
func TestCancelWholeBatchAfterSend(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			h := newHost()
			e, ids, batch := f.sent(h, 3)
			h.cancel(ids...)
			e.Tick(t.Context())
			for _, id := range ids {
				require.Len(t, h.answers[id], 1, id)
				require.True(t, h.answers[id][0].Cancelled, id)
			}
			f.vendor.Release()
			require.Len(t, f.vendor.Created(), 1)
			require.True(t, f.vendor.Cancelled(batch.ID), "cancelled at the vendor: %s", f.vendor.Created()[0].Status)
			polls := f.vendor.Polls()
			for range 5 {
				e.Tick(t.Context())
			}
			require.Equal(t, polls, f.vendor.Polls(), "the batch is no longer polled")
			require.Zero(t, f.vendor.BilledLines())
			for _, id := range ids {
				require.Len(t, h.answers[id], 1, id)
			}
			require.Empty(t, h.live)
		})
	}
}
