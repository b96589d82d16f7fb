package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// cancelSet mirrors every tenant's cancel bucket locally through KV
// watchers, so that checking whether a queued job was cancelled costs no
// round trip. It is bounded: each tenant's memo holds at most cap markers
// (the oldest go first) and markers older than the bucket's TTL are
// forgotten, so a flood of cancels grows a worker by at most
// cap × (tenants + 1) markers, and one tenant's flood pushes out only its
// own markers. A tenant whose memo lost markers to the cap is looked up in
// its bucket (one direct get per job) until those markers would have
// expired anyway, so no marker is missed.
type cancelSet struct {
	cap  int
	ttl  time.Duration
	now  func() time.Time
	log  *slog.Logger
	stop func()

	mu    sync.Mutex
	marks map[string]*marks // by tenant ("" anonymous); only configured ones
}

// marks is one tenant's memo: ids by the time their marker was made, and
// the ids in the order they came, to drop the oldest.
type marks struct {
	kv      jetstream.KeyValue
	ids     map[string]time.Time
	order   []mark
	head    int
	evicted time.Time // the newest marker dropped for the cap
}

type mark struct {
	id string
	at time.Time
}

// startCancelSet watches the cancel bucket of every namespace.
func startCancelSet(ctx context.Context, js jetstream.JetStream, namespaces []bus.Subjects, memo int, now func() time.Time, log *slog.Logger) (*cancelSet, error) {
	cs := &cancelSet{cap: memo, now: now, log: log, marks: map[string]*marks{}}
	wctx, stopWatch := context.WithCancel(context.Background())
	var watchers []jetstream.KeyWatcher
	var wg sync.WaitGroup
	cs.stop = func() {
		stopWatch()
		for _, w := range watchers {
			_ = w.Stop()
		}
		wg.Wait()
	}
	// Open every bucket first: the TTL must be known before any watcher
	// reports a marker.
	kvs := make([]jetstream.KeyValue, len(namespaces))
	for i, ns := range namespaces {
		kv, err := js.KeyValue(ctx, ns.CancelBucket())
		if err != nil {
			cs.stop()
			return nil, fmt.Errorf("worker: cancel bucket %s: %w", ns.CancelBucket(), err)
		}
		if st, err := kv.Status(ctx); err == nil {
			cs.ttl = max(cs.ttl, st.TTL())
		}
		kvs[i] = kv
		cs.marks[ns.Tenant] = &marks{kv: kv, ids: map[string]time.Time{}}
	}
	if cs.ttl == 0 {
		cs.ttl = 24 * time.Hour // buckets without a TTL: what Provision sets
	}
	// A job may be picked as soon as this returns: the markers already in
	// the buckets (cancels of jobs still queued) must be known by then, so
	// wait for every watcher's end of initial values.
	loaded := make([]chan struct{}, len(namespaces))
	for i, ns := range namespaces {
		watcher, err := kvs[i].WatchAll(wctx, jetstream.IgnoreDeletes())
		if err != nil {
			cs.stop()
			return nil, fmt.Errorf("worker: watch cancel bucket %s: %w", ns.CancelBucket(), err)
		}
		watchers = append(watchers, watcher)
		done := make(chan struct{})
		loaded[i] = done
		wg.Go(func() { cs.follow(wctx, watcher, ns, done) })
	}
	if err := awaitLoaded(ctx, namespaces, loaded); err != nil {
		cs.stop()
		return nil, err
	}
	return cs, nil
}

// follow mirrors one tenant's cancel bucket until its watcher stops,
// closing loaded at the end of the initial values.
func (cs *cancelSet) follow(ctx context.Context, watcher jetstream.KeyWatcher, ns bus.Subjects, loaded chan struct{}) {
	for e := range watcher.Updates() {
		if e == nil {
			if loaded != nil {
				close(loaded) // end of the initial values
				loaded = nil
			}
			continue
		}
		switch e.Operation() {
		case jetstream.KeyValuePut:
			cs.addAt(ns.Tenant, e.Key(), e.Created())
		case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
			cs.forget(ns.Tenant, e.Key())
		}
	}
	if err := ctx.Err(); err == nil || !errors.Is(err, context.Canceled) {
		cs.log.Warn("cancel watcher ended", slog.String("bucket", ns.CancelBucket()))
	}
}

// awaitLoaded waits for every bucket's initial values, for at most 30s, so
// that a watcher that ended early fails the start (which Run retries)
// rather than hang it.
func awaitLoaded(ctx context.Context, namespaces []bus.Subjects, loaded []chan struct{}) error {
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	for i, done := range loaded {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("worker: initial values of cancel bucket %s: %w", namespaces[i].CancelBucket(), ctx.Err())
		case <-wait.C:
			return fmt.Errorf("worker: initial values of cancel bucket %s did not come in 30s", namespaces[i].CancelBucket())
		}
	}
	return nil
}

// add records a cancel seen on a cancel subject.
func (c *cancelSet) add(tenant, id string) { c.addAt(tenant, id, c.now()) }

func (c *cancelSet) addAt(tenant, id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.marks[tenant]
	if m == nil || c.now().Sub(at) > c.ttl {
		return // not a tenant of this fleet, or expired
	}
	m.ids[id] = at
	m.order = append(m.order, mark{id, at})
	// Forget what expired, then what is over the cap, oldest first.
	for m.head < len(m.order) {
		old := m.order[m.head]
		expired := c.now().Sub(old.at) > c.ttl
		if !expired && len(m.ids) <= c.cap {
			break
		}
		m.head++
		if t, ok := m.ids[old.id]; ok && t.Equal(old.at) {
			delete(m.ids, old.id)
			if !expired {
				m.evicted = old.at
			}
		}
	}
	// The order keeps entries of ids added again or forgotten: compact it
	// when they are as many as the live ones.
	if live := len(m.order) - m.head; live > 2*len(m.ids)+64 {
		m.order = m.order[:0:0]
		for id, t := range m.ids {
			m.order = append(m.order, mark{id, t})
		}
		slices.SortFunc(m.order, func(a, b mark) int { return a.at.Compare(b.at) })
		m.head = 0
	} else if m.head > len(m.order)/2 {
		m.order = append(m.order[:0], m.order[m.head:]...)
		m.head = 0
	}
}

func (c *cancelSet) forget(tenant, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.marks[tenant]; m != nil {
		delete(m.ids, id)
	}
}

// has reports whether the tenant's job id was cancelled.
func (c *cancelSet) has(tenant, id string) bool {
	c.mu.Lock()
	m := c.marks[tenant]
	if m == nil {
		c.mu.Unlock()
		return false
	}
	at, ok := m.ids[id]
	incomplete := !m.evicted.IsZero() && c.now().Sub(m.evicted) <= c.ttl
	kv := m.kv
	c.mu.Unlock()
	if ok {
		return c.now().Sub(at) <= c.ttl
	}
	if !incomplete {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := kv.Get(ctx, id)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			c.log.Warn("cancel marker lookup failed; running the job", slog.String("tenant", tenant), slog.String("job", id), slog.Any("error", err))
		}
		return false
	}
	return c.now().Sub(e.Created()) <= c.ttl
}

// size returns the number of markers held for tenant.
func (c *cancelSet) size(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.marks[tenant]; m != nil {
		return len(m.ids)
	}
	return 0
}
