// Package kv holds the ways the worker uses NATS KV buckets beside reading
// a key: a compare-and-set update of a JSON value that many workers write
// at once (rate counters, tenant budgets), a local mirror of a bucket kept
// by a watcher (breakers seen by the fleet, cancel markers), and a bucket
// per tenant opened once (Buckets: the response cache, the offload).
//
// It is wiring for internal packages; it must not import pkg/policy or the
// providers.
package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go/jetstream"
)

// maxConflicts bounds how often UpdateJSON reads again after another writer
// changed the key first.
const maxConflicts = 50

// ErrContention is returned by UpdateJSON when other writers changed the key
// maxConflicts times in a row.
var ErrContention = errors.New("kv: too much contention")

// errConflict is one lost compare-and-set: another writer got there first.
var errConflict = errors.New("kv: conflict")

// conflicts retries a lost compare-and-set after a jittered backoff. Without
// one, writers that lose together read and write again together, and under
// load one of N writers can lose every round until it gives up (32 writers
// of 10 updates each lost a writer's updates in every run).
var conflicts = retrypolicy.NewBuilder[bool]().
	HandleErrors(errConflict).
	WithMaxRetries(maxConflicts-1).
	WithBackoff(time.Millisecond, 50*time.Millisecond).
	WithJitterFactor(0.5).
	ReturnLastFailure().
	Build()

// UpdateJSON applies change to the JSON value of key (the zero T when the
// key does not exist yet) and writes the result with compare-and-set: when
// another writer got there first it waits a little and reads and applies
// change again. change returns false to leave the value as it is;
// UpdateJSON then returns false.
func UpdateJSON[T any](ctx context.Context, b jetstream.KeyValue, key string, change func(*T) bool) (bool, error) {
	ok, err := failsafe.With(conflicts).WithContext(ctx).Get(func() (bool, error) {
		return updateJSON(ctx, b, key, change)
	})
	if errors.Is(err, errConflict) {
		return false, fmt.Errorf("%w on %s", ErrContention, key)
	}
	return ok, err
}

// updateJSON is one read, change and compare-and-set of UpdateJSON.
func updateJSON[T any](ctx context.Context, b jetstream.KeyValue, key string, change func(*T) bool) (bool, error) {
	var v T
	var rev uint64
	e, err := b.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false, err
	default:
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return false, fmt.Errorf("kv: %s: %w", key, err)
		}
		rev = e.Revision()
	}
	if !change(&v) {
		return false, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("kv: %s: %w", key, err)
	}
	if rev == 0 {
		_, err = b.Create(ctx, key, data)
	} else {
		_, err = b.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return false, errConflict
	}
	return err == nil, err
}

// Mirror keeps a bucket's changes flowing into apply, from one goroutine
// that it owns: Stop ends it and waits for it.
type Mirror struct {
	watcher jetstream.KeyWatcher
	done    chan struct{}
	stopped atomic.Bool
}

// Watch starts a watcher of every key of b and calls apply, from the
// mirror's goroutine, with every current value and then every change (a
// Delete or Purge operation for removed keys). onEnd, when not nil, is
// called if the watcher ends without Stop (the connection closed).
func Watch(b jetstream.KeyValue, apply func(jetstream.KeyValueEntry), onEnd func(), opts ...jetstream.WatchOpt) (*Mirror, error) {
	w, err := b.WatchAll(context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	m := &Mirror{watcher: w, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for e := range w.Updates() {
			if e != nil { // nil marks the end of the initial values
				apply(e)
			}
		}
		if onEnd != nil && !m.stopped.Load() {
			onEnd()
		}
	}()
	return m, nil
}

// Stop ends the watcher and waits for the mirror's goroutine.
func (m *Mirror) Stop() error {
	m.stopped.Store(true)
	err := m.watcher.Stop()
	<-m.done
	return err
}
