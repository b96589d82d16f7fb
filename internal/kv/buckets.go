package kv

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Order is how Buckets.Open reaches a bucket.
type Order int

const (
	// CreateFirst creates the bucket and opens it when it exists: one
	// request for a new bucket; its user needs STREAM.CREATE (the
	// response cache, which every worker writes).
	CreateFirst Order = iota
	// OpenFirst opens the bucket and creates it only when it is missing:
	// a user with STREAM.INFO but not STREAM.CREATE can use a bucket
	// another made (the offload bucket, which the engine may only read
	// until a job of the tenant is offloaded).
	OpenFirst
)

// Buckets opens a bucket per tenant, once, and keeps it. It is safe for
// concurrent use.
type Buckets struct {
	js    jetstream.JetStream
	name  func(tenant string) string
	cfg   jetstream.KeyValueConfig
	order Order

	mu  sync.Mutex
	kvs map[string]jetstream.KeyValue // by tenant
}

// NewBuckets returns the buckets named name(tenant), made with cfg (its
// Bucket set to the name), reached in order.
func NewBuckets(js jetstream.JetStream, name func(tenant string) string, cfg jetstream.KeyValueConfig, order Order) *Buckets {
	return &Buckets{js: js, name: name, cfg: cfg, order: order, kvs: map[string]jetstream.KeyValue{}}
}

// Open returns tenant's bucket. A missing bucket is made when create is
// set, else Open returns nil, nil (and looks again at the next call).
func (b *Buckets) Open(ctx context.Context, tenant string, create bool) (jetstream.KeyValue, error) {
	b.mu.Lock()
	kv, ok := b.kvs[tenant]
	b.mu.Unlock()
	if ok {
		return kv, nil
	}
	name := b.name(tenant)
	var err error
	if b.order == CreateFirst && create {
		kv, err = b.create(ctx, name)
	} else {
		kv, err = b.js.KeyValue(ctx, name)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			if !create {
				return nil, nil
			}
			kv, err = b.create(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	b.mu.Lock()
	b.kvs[tenant] = kv
	b.mu.Unlock()
	return kv, nil
}

// create makes bucket name, or opens it when another made it first.
func (b *Buckets) create(ctx context.Context, name string) (jetstream.KeyValue, error) {
	cfg := b.cfg
	cfg.Bucket = name
	kv, err := b.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return b.js.KeyValue(ctx, name)
	}
	return kv, err
}

// All returns the buckets opened so far.
func (b *Buckets) All() []jetstream.KeyValue {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]jetstream.KeyValue, 0, len(b.kvs))
	for _, kv := range b.kvs {
		out = append(out, kv)
	}
	return out
}
