package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// cancelSet mirrors the cancel bucket locally through a KV watcher, so that
// checking whether a queued job was cancelled costs no round trip.
type cancelSet struct {
	mu   sync.RWMutex
	ids  map[string]time.Time // id -> when the marker was seen
	ttl  time.Duration        // markers older than this are forgotten
	stop func()
}

func startCancelSet(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*cancelSet, error) {
	kv, err := js.KeyValue(ctx, bus.BucketCancel)
	if err != nil {
		return nil, fmt.Errorf("worker: cancel bucket: %w", err)
	}
	wctx, stop := context.WithCancel(context.Background())
	watcher, err := kv.WatchAll(wctx, jetstream.IgnoreDeletes())
	if err != nil {
		stop()
		return nil, fmt.Errorf("worker: watch cancel bucket: %w", err)
	}
	ttl := 24 * time.Hour
	if st, err := kv.Status(ctx); err == nil && st.TTL() > 0 {
		ttl = st.TTL()
	}
	cs := &cancelSet{ids: map[string]time.Time{}, ttl: ttl}
	done := make(chan struct{})
	cs.stop = func() { stop(); _ = watcher.Stop(); <-done }
	go func() {
		defer close(done)
		for e := range watcher.Updates() {
			if e == nil {
				continue // end of the initial values
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				cs.addAt(e.Key(), e.Created())
			case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
				cs.mu.Lock()
				delete(cs.ids, e.Key())
				cs.mu.Unlock()
			}
		}
		if err := wctx.Err(); err == nil || !errors.Is(err, context.Canceled) {
			log.Warn("cancel watcher ended")
		}
	}()
	return cs, nil
}

func (c *cancelSet) add(id string) { c.addAt(id, time.Now()) }

// addAt records a marker. The bucket's TTL removes old markers without a
// delete marker, so the mirror forgets them itself: every 4096 additions it
// drops those older than the TTL.
func (c *cancelSet) addAt(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(at) > c.ttl {
		return
	}
	c.ids[id] = at
	if len(c.ids)%4096 == 0 {
		for k, t := range c.ids {
			if time.Since(t) > c.ttl {
				delete(c.ids, k)
			}
		}
	}
}

func (c *cancelSet) has(id string) bool {
	c.mu.RLock()
	_, ok := c.ids[id]
	c.mu.RUnlock()
	return ok
}
