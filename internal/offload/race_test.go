package offload_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
)

// slowHost is a host whose first Cancelled call (the engine collecting the
// lines it read) first runs between: the engine was slow after it read the
// bucket, its lease lapsed and another worker took it.
type slowHost struct {
	*host
	once    sync.Once
	between func()
}

func (h *slowHost) Cancelled(l *offload.Line) bool {
	h.once.Do(h.between)
	return h.host.Cancelled(l)
}

// TestLeaseRaceBillsOnce: two engines that both believe they hold the
// bucket's lease (the first's lapsed between its read and its send, and
// the second took it) send the same lines once: one vendor batch, one
// answer per job.
func TestLeaseRaceBillsOnce(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			h2 := newHost()
			e2 := f.engine(h2, "w2")
			h1 := &slowHost{host: newHost()}
			h1.between = func() {
				f.clock.Add(31 * time.Second) // w1's lease lapses
				e2.Tick(t.Context())          // w2 takes it and sends the lines
			}
			e1 := f.engine(h1, "w1")
			ids := f.add(e1, "", 0, 20)
			f.clock.Add(time.Second)
			e1.Tick(t.Context())
			require.Len(t, f.vendor.Created(), 1, "the lines were sent once")

			tickBoth(t, e1, e2, func() bool { return h1.answered()+h2.answered() >= len(ids) })
			require.Len(t, f.vendor.Created(), 1)
			require.Equal(t, len(ids), f.vendor.BilledLines(), "no line billed twice")
			for _, id := range ids {
				require.Len(t, append(h1.answers[id], h2.answers[id]...), 1, id)
			}
			require.Empty(t, h1.live)
			require.Empty(t, h2.live)
		})
	}
}

// tickBoth ticks two engines in turn until done (bounded).
func tickBoth(t *testing.T, e1, e2 *offload.Engine, done func() bool) {
	t.Helper()
	for range 200 {
		e1.Tick(t.Context())
		e2.Tick(t.Context())
		if done() {
			return
		}
	}
}

// slowSubmit runs between before its first SubmitBatch goes through: the
// engine was slow while it sent the batch.
type slowSubmit struct {
	llm.Batcher
	once    sync.Once
	between func()
}

func (s *slowSubmit) SubmitBatch(ctx context.Context, ref string, reqs []llm.BatchRequest) (*llm.BatchInfo, error) {
	s.once.Do(s.between)
	return s.Batcher.SubmitBatch(ctx, ref, reqs)
}

// TestLeaseLapsesWhileSending: a worker whose lease lapsed while it was
// sending a batch (the vendor has not answered yet) is not doubled by the
// one that took the lease over: that one leaves the batch to the sender's
// attempt, then polls it.
func TestLeaseLapsesWhileSending(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, v, time.Second)
			h1, h2 := newHost(), newHost()
			e2 := f.engine(h2, "w2")
			slow := &slowSubmit{Batcher: f.batcher, between: func() {
				f.clock.Add(31 * time.Second)
				e2.Tick(t.Context())
			}}
			e1 := f.engineWith(h1, "w1", slow, bus.Subjects{})
			ids := f.add(e1, "", 0, 10)
			f.clock.Add(time.Second)
			e1.Tick(t.Context())
			require.Len(t, f.vendor.Created(), 1, "the batch was sent once")
			tickBoth(t, e1, e2, func() bool { return h1.answered()+h2.answered() >= len(ids) })
			require.Len(t, f.vendor.Created(), 1)
			require.Equal(t, len(ids), f.vendor.BilledLines())
			for _, id := range ids {
				require.Len(t, append(h1.answers[id], h2.answers[id]...), 1, id)
			}
		})
	}
}

// mistaken finds, for the first batch it is asked about, another batch
// (as Anthropic's FindBatch, by size and time, can).
type mistaken struct {
	llm.Batcher
	ref string // the other batch's
}

func (m *mistaken) FindBatch(ctx context.Context, _ string, since time.Time, n int) (*llm.BatchInfo, error) {
	return m.Batcher.FindBatch(ctx, m.ref, since, n)
}

// TestMistakenFindAnswersNoForeignLine: a batch FindBatch took for this
// one by mistake (another tenant's, of the same size) never answers this
// batch's jobs: its custom ids name its own batch; the jobs run live.
func TestMistakenFindAnswersNoForeignLine(t *testing.T) {
	t.Parallel()
	f := setup(t, vendors[0], time.Second)
	hAcme := newHost()
	acme := f.engineWith(hAcme, "w2", f.batcher, bus.Subjects{Tenant: "acme"})
	f.add(acme, "acme", 10, 3)
	f.clock.Add(time.Second)
	acme.Tick(t.Context())
	require.Len(t, f.vendor.Created(), 1)

	h := newHost()
	anon := f.engineWith(h, "w1", &mistaken{Batcher: f.batcher, ref: f.vendor.Created()[0].Ref}, bus.Subjects{})
	ids := f.add(anon, "", 0, 3)
	f.clock.Add(time.Second)
	f.run(anon, h, len(ids))
	for _, id := range ids {
		require.Empty(t, h.answers[id], "%s answered with another tenant's line", id)
		require.Len(t, h.live[id], 1, id)
	}
}
