package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/pkg/bus"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func cancelSetup(t *testing.T, memo int, tenants ...string) (*cancelSet, jetstream.JetStream, *clock) {
	t.Helper()
	nc := natstest.Connect(t, natstest.Server(t))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := bus.StreamsConfig{Tenants: tenants, CancelTTL: time.Hour}
	require.NoError(t, bus.Provision(ctx, js, cfg))
	ns := []bus.Subjects{{}}
	for _, tn := range tenants {
		ns = append(ns, bus.Subjects{Tenant: tn})
	}
	clk := &clock{t: time.Now()}
	cs, err := startCancelSet(ctx, js, ns, memo, clk.now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(cs.stop)
	return cs, js, clk
}

func TestCancelSetIsBoundedPerTenant(t *testing.T) {
	t.Parallel()
	cs, _, clk := cancelSetup(t, 100, "acme", "globex")
	cs.add("acme", "keep-me")
	for i := range 10_000 {
		cs.add("globex", fmt.Sprintf("flood-%d", i))
		require.LessOrEqual(t, cs.size("globex"), 100)
	}
	require.Equal(t, 100, cs.size("globex"))
	require.True(t, cs.has("acme", "keep-me"), "one tenant's flood pushed out another's marker")
	require.False(t, cs.has("globex", "keep-me"), "a cancel reaches only its tenant")
	require.True(t, cs.has("globex", "flood-9999"))
	// A tenant the fleet does not serve is not remembered at all.
	cs.add("initech", "x")
	require.Zero(t, cs.size("initech"))
	require.False(t, cs.has("initech", "x"))
	// The same id again and again takes one entry, and the order behind it
	// is compacted.
	for range 10_000 {
		cs.add("acme", "again")
	}
	require.Equal(t, 2, cs.size("acme"))
	m := cs.marks["acme"]
	require.Less(t, len(m.order)-m.head, 200)
	// Markers older than the TTL are forgotten.
	clk.add(2 * time.Hour)
	require.False(t, cs.has("acme", "keep-me"))
	cs.add("acme", "new")
	require.Equal(t, 1, cs.size("acme"))
}

// Markers pushed out of the memo by the cap are looked up in the bucket,
// so a cancel stored in KV is never missed.
func TestCancelSetLooksUpWhatItDropped(t *testing.T) {
	t.Parallel()
	cs, js, _ := cancelSetup(t, 10, "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "LLM_CANCEL_acme")
	require.NoError(t, err)
	for i := range 50 {
		_, err := kv.Put(ctx, fmt.Sprintf("j-%d", i), []byte("x"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return cs.has("acme", "j-49") }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 10, cs.size("acme"))
	require.True(t, cs.has("acme", "j-0"), "a dropped marker is found in the bucket")
	require.False(t, cs.has("acme", "never-cancelled"))
	require.False(t, cs.has("", "j-0"), "the anonymous tenant's bucket is another")
}
