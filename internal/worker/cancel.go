package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// cancelSet mirrors the cancel bucket locally through a KV watcher, so that
// checking whether a queued job was cancelled costs no round trip.
type cancelSet struct {
	mu   sync.RWMutex
	ids  map[string]struct{}
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
	cs := &cancelSet{ids: map[string]struct{}{}}
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
				cs.add(e.Key())
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

func (c *cancelSet) add(id string) {
	c.mu.Lock()
	c.ids[id] = struct{}{}
	c.mu.Unlock()
}

func (c *cancelSet) has(id string) bool {
	c.mu.RLock()
	_, ok := c.ids[id]
	c.mu.RUnlock()
	return ok
}
