package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Buckets of the gateway's state. Everything a gateway must not lose when
// it restarts is kept here, never in its memory.
const (
	// BucketJobs holds async jobs (their model and webhook, and the
	// webhook's delivery state), keyed <tenant>.<job id>.
	BucketJobs = "LLM_GATEWAY_JOBS"
	// BucketBatches holds Batch API batches, keyed <tenant>.<batch id>.
	BucketBatches = "LLM_GATEWAY_BATCHES"
	// BucketSecrets holds each tenant's webhook signing secret.
	BucketSecrets = "LLM_GATEWAY_SECRETS"
	// BucketFiles is the Object Store bucket of uploaded and produced
	// files, named <tenant>/<file id>.
	BucketFiles = "LLM_GATEWAY_FILES"
	// BucketKeys holds API keys, hashed (see Keys).
	BucketKeys = "LLM_API_KEYS"
)

// jobsTTL is how long an async job is known (the results stream's default
// max age).
const jobsTTL = 24 * time.Hour

// tenantToken is a tenant's token in keys and object names: tenant names
// start with [a-z0-9], so "_" (the anonymous tenant's) is never one.
func tenantToken(tenant string) string {
	if tenant == "" {
		return "_"
	}
	return tenant
}

// storeKey is the key of one tenant's item.
func storeKey(tenant, id string) string { return tenantToken(tenant) + "." + id }

// store opens the gateway's buckets on first use, so that a gateway that
// never serves jobs or batches creates none.
type store struct {
	js       jetstream.JetStream
	replicas int

	mu      sync.Mutex
	kvs     map[string]jetstream.KeyValue
	objects jetstream.ObjectStore
}

func newStore(js jetstream.JetStream, replicas int) *store {
	return &store{js: js, replicas: replicas, kvs: map[string]jetstream.KeyValue{}}
}

func (s *store) kv(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kv, ok := s.kvs[bucket]; ok {
		return kv, nil
	}
	cfg := jetstream.KeyValueConfig{Bucket: bucket, Replicas: s.replicas, Storage: jetstream.FileStorage}
	switch bucket {
	case BucketJobs:
		cfg.Description, cfg.TTL = "Switchyard gateway: async jobs and their webhook deliveries", jobsTTL
	case BucketBatches:
		cfg.Description, cfg.History = "Switchyard gateway: Batch API batches", 1
	case BucketSecrets:
		cfg.Description = "Switchyard gateway: webhook signing secrets per tenant"
	case BucketKeys:
		cfg.Description = "Switchyard gateway: API keys (SHA-256 hashes) and their tenants"
	}
	kv, err := s.js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: bucket %s: %w", bucket, err)
	}
	s.kvs[bucket] = kv
	return kv, nil
}

func (s *store) files(ctx context.Context) (jetstream.ObjectStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objects != nil {
		return s.objects, nil
	}
	obs, err := s.js.ObjectStore(ctx, BucketFiles)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: BucketFiles, Description: "Switchyard gateway: Batch API files", Replicas: s.replicas, Storage: jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = s.js.ObjectStore(ctx, BucketFiles)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: object store %s: %w", BucketFiles, err)
	}
	s.objects = obs
	return obs, nil
}
