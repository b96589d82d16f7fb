package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// health is whether the worker's JetStream writes succeed: the last one
// decides, so it recovers by itself with the next write that works (a job
// handed back for storage is delivered again, and tries). A failure of a
// write that started before the last success ended does not count: it
// tells of the store before that success (a try that timed out after 10s
// while the server restarted), and once the work queue is empty no write
// might come to clear it.
type health struct {
	mu    sync.Mutex
	err   error
	since time.Time
	okAt  time.Time // when the last successful write ended
}

func (h *health) record(err error, started time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.err, h.okAt = nil, time.Now()
	case errors.Is(err, context.Canceled), permanent(err):
		// Shutting down, or the job's own fault: says nothing of the store.
	case started.Before(h.okAt):
		// Older news than the last success.
	case h.err == nil:
		h.err, h.since = err, time.Now()
	default:
		h.err = err
	}
}

// StoreHealth returns nil while the worker's JetStream writes (results,
// dead letters, acks) succeed, and an error naming the last failure and
// since when they have been failing otherwise. /readyz reports it.
func (w *Worker) StoreHealth() error {
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	if w.health.err == nil {
		return nil
	}
	return fmt.Errorf("JetStream writes failing since %s: %w", w.health.since.UTC().Format(time.RFC3339), w.health.err)
}
