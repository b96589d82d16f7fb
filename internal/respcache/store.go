package respcache

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/kv"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Config configures a Store. Every field has a default, stated on it.
type Config struct {
	// Subjects names the buckets (its prefix is unused: bucket names are
	// fixed; its Tenant is replaced per call). Default: bus.Subjects{}.
	Subjects bus.Subjects
	// Replicas and Storage are the buckets' (default 1, file).
	Replicas int
	Storage  jetstream.StorageType
	// MaxBytes caps each tenant's bucket (default 256 MiB). A full bucket
	// refuses new answers (they are then not cached) until entries expire.
	MaxBytes int64
}

// Store is a policy.CacheStore on JetStream KV. It is safe for concurrent
// use.
type Store struct {
	js  jetstream.JetStream
	cfg Config

	buckets *kv.Buckets

	mu    sync.Mutex
	locks map[string]uint64 // the revision of each lock this process holds, by bucket and key
}

var _ policy.CacheStore = (*Store)(nil)

// markerTTL is how long the delete markers of expired entries and released
// locks stay in a bucket: long enough for a watcher to see them.
const markerTTL = time.Minute

// New returns a store. Buckets are made on first use.
func New(js jetstream.JetStream, cfg Config) *Store {
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, 256<<20)
	buckets := kv.NewBuckets(js, func(tenant string) string { return cfg.Subjects.ForTenant(tenant).CacheBucket() },
		jetstream.KeyValueConfig{
			Description: "Switchyard response cache", History: 1, MaxBytes: cfg.MaxBytes,
			Storage: cfg.Storage, Replicas: cfg.Replicas, LimitMarkerTTL: markerTTL,
		}, kv.CreateFirst)
	return &Store{js: js, cfg: cfg, buckets: buckets, locks: map[string]uint64{}}
}

// Bucket returns tenant's bucket, making it when it is missing (created
// first: every worker may create the cache's buckets).
func (s *Store) Bucket(ctx context.Context, tenant string) (jetstream.KeyValue, error) {
	kv, err := s.buckets.Open(ctx, tenant, true)
	if err != nil {
		return nil, fmt.Errorf("respcache: %w", err)
	}
	return kv, nil
}

func entryKey(key string) string { return "e." + key }
func lockKey(key string) string  { return "l." + key }

// Get implements policy.CacheStore.
func (s *Store) Get(ctx context.Context, tenant, key string) (*policy.CachedAnswer, error) {
	kv, err := s.Bucket(ctx, tenant)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, entryKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a policy.CachedAnswer
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return nil, fmt.Errorf("respcache: entry %s: %w", key, err)
	}
	return &a, nil
}

// Put implements policy.CacheStore. The entry is written with ttl as its
// key's TTL (the server removes it then); an entry already there (the
// expired one it replaces) is deleted first, since a key's TTL is set only
// when the key is created.
func (s *Store) Put(ctx context.Context, tenant, key string, a *policy.CachedAnswer, ttl time.Duration) error {
	kv, err := s.Bucket(ctx, tenant)
	if err != nil {
		return err
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, entryKey(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	_, err = kv.Create(ctx, entryKey(key), data, jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil // another caller stored one meanwhile: it serves as well
	}
	return err
}

// Lock implements policy.CacheStore with a key created only when it does
// not exist, whose TTL lets a crashed holder's lock lapse.
func (s *Store) Lock(ctx context.Context, tenant, key string, ttl time.Duration) (bool, error) {
	kv, err := s.Bucket(ctx, tenant)
	if err != nil {
		return false, err
	}
	rev, err := kv.Create(ctx, lockKey(key), []byte("1"), jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	s.locks[kv.Bucket()+"/"+key] = rev
	s.mu.Unlock()
	return true, nil
}

// Unlock implements policy.CacheStore. It removes the lock only if it is
// still the one Lock took (one that lapsed and was taken by another caller
// stays).
func (s *Store) Unlock(ctx context.Context, tenant, key string) error {
	kv, err := s.Bucket(ctx, tenant)
	if err != nil {
		return err
	}
	id := kv.Bucket() + "/" + key
	s.mu.Lock()
	rev, ok := s.locks[id]
	delete(s.locks, id)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	err = kv.Purge(ctx, lockKey(key), jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !isWrongRevision(err) {
		return err
	}
	return nil
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Wait implements policy.CacheStore with a watcher of the entry and lock
// keys: the current values say whether the lock is held; the next change
// of either ends the wait.
func (s *Store) Wait(ctx context.Context, tenant, key string) error {
	kv, err := s.Bucket(ctx, tenant)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.Watch(wctx, "*."+key)
	if err != nil {
		return err
	}
	defer w.Stop() //nolint:errcheck // the watcher's end is not news
	initial, locked := true, false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return ctx.Err()
			case e == nil: // the end of the current values
				if !locked {
					return nil
				}
				initial = false
			case !initial:
				return nil
			case e.Key() == lockKey(key):
				locked = e.Operation() == jetstream.KeyValuePut
			}
		}
	}
}
