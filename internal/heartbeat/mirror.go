package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard/switchyard/internal/kv"
)

// Mirror follows the bucket with one watcher for as long as it runs, so a
// reader that looks every few seconds (the console) does not create a
// consumer each time. A record expires in the bucket without a delete
// marker, so the mirror itself forgets a record older than TTL.
type Mirror struct {
	js  jetstream.JetStream
	now func() time.Time

	mu      sync.Mutex
	workers map[string]Worker
	m       *kv.Mirror
}

// NewMirror returns a mirror of the bucket; Workers opens its watcher on
// first use (the bucket may not exist until a worker beats).
func NewMirror(js jetstream.JetStream, now func() time.Time) *Mirror {
	if now == nil {
		now = time.Now
	}
	return &Mirror{js: js, now: now, workers: map[string]Worker{}}
}

// Workers returns the workers alive now, by id.
func (m *Mirror) Workers(ctx context.Context) ([]Worker, error) {
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Worker, 0, len(m.workers))
	for id, w := range m.workers {
		if now.Sub(w.At) > TTL {
			delete(m.workers, id)
			continue
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *Mirror) start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m != nil {
		return nil
	}
	b, err := m.js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil // no worker has beaten yet: look again next time
	}
	if err != nil {
		return err
	}
	m.m, err = kv.Watch(b, m.apply, m.ended)
	return err
}

func (m *Mirror) apply(e jetstream.KeyValueEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(m.workers, e.Key())
		return
	}
	if w, ok := parse(e.Value()); ok {
		m.workers[e.Key()] = w
	}
}

// ended lets the next Workers start a new watcher (the connection closed).
func (m *Mirror) ended() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m = nil
}

// Stop ends the watcher.
func (m *Mirror) Stop() error {
	m.mu.Lock()
	w := m.m
	m.m = nil
	m.mu.Unlock()
	if w == nil {
		return nil
	}
	return w.Stop()
}

// parse decodes a record and its metrics.
func parse(b []byte) (Worker, bool) {
	var r Record
	if json.Unmarshal(b, &r) != nil {
		return Worker{}, false
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.Metrics))
	if err != nil {
		fams = nil // a record from a newer format: its identity still counts
	}
	return Worker{Record: r, Families: fams}, true
}
