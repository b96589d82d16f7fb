package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// API keys are never stored: only their SHA-256, as "sha256:<hex>" in the
// model file (api_keys:) and as the key of the record in BucketKeys, which
// `submit keys create|list|revoke` manages. A gateway watches the bucket, so
// a key created or revoked anywhere takes effect at once on every gateway.

// KeyRecord is what a key authenticates as.
type KeyRecord struct {
	// Hash is "sha256:<hex>" of the key.
	Hash string `json:"hash" yaml:"sha256"`
	// Tenant is the tenant whose namespace the key's jobs run in; "" the
	// anonymous tenant.
	Tenant string `json:"tenant,omitempty" yaml:"tenant"`
	// Admin keys may call the operator endpoints (/admin/...).
	Admin bool `json:"admin,omitempty" yaml:"admin"`
	// Name is a label for people ("ci", "alice's laptop").
	Name string `json:"name,omitempty" yaml:"name"`
	// Hint shows the key's first and last characters, for recognising it.
	Hint      string    `json:"hint,omitempty" yaml:"-"`
	CreatedAt time.Time `json:"created_at" yaml:"-"`
}

// ID is the short id a key is listed and revoked by: the first 12 hex
// digits of its hash.
func (k KeyRecord) ID() string {
	h := strings.TrimPrefix(k.Hash, "sha256:")
	return h[:min(12, len(h))]
}

// HashKey returns "sha256:<hex>" of a key, the form the model file lists.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ValidKeyHash reports whether h is "sha256:" and 64 hex digits.
func ValidKeyHash(h string) bool {
	hx, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(hx) != 64 {
		return false
	}
	_, err := hex.DecodeString(hx)
	return err == nil
}

func kvKeyOf(hash string) string { return "sha256." + strings.TrimPrefix(hash, "sha256:") }

// KeyStore maps API keys to identities: the model file's keys plus those of
// BucketKeys, watched. It is safe for concurrent use. Until the bucket's keys are loaded it answers
// nothing (a starting gateway never serves without authentication because
// it has not read the keys yet).
type KeyStore struct {
	static map[string]KeyRecord
	mu     sync.RWMutex
	stored map[string]KeyRecord
	ready  chan struct{}
}

// NewKeyStore returns a store with the model file's keys. Run must be
// running for Lookup and Required to answer.
func NewKeyStore(static []KeyRecord) (*KeyStore, error) {
	k := &KeyStore{static: map[string]KeyRecord{}, stored: map[string]KeyRecord{}, ready: make(chan struct{})}
	for _, r := range static {
		if !ValidKeyHash(r.Hash) {
			return nil, fmt.Errorf("gateway: api key %q: want sha256:<64 hex digits>", r.Name)
		}
		if r.Tenant != "" && !bus.ValidTenant(r.Tenant) {
			return nil, fmt.Errorf("gateway: api key %q: invalid tenant %q", r.Name, r.Tenant)
		}
		k.static[r.Hash] = r
	}
	return k, nil
}

func (k *KeyStore) wait(ctx context.Context) error {
	select {
	case <-k.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: API keys not loaded yet: %w", ctx.Err())
	}
}

// Lookup returns the identity of a presented key, and false when the key is
// unknown (or revoked).
func (k *KeyStore) Lookup(ctx context.Context, key string) (Identity, bool, error) {
	if err := k.wait(ctx); err != nil {
		return Identity{}, false, err
	}
	h := HashKey(key)
	r, ok := k.static[h]
	if !ok {
		k.mu.RLock()
		r, ok = k.stored[h]
		k.mu.RUnlock()
	}
	return Identity{Tenant: r.Tenant, Admin: r.Admin}, ok, nil
}

// Required reports whether requests must present a key: false only while
// no key exists at all (the zero-configuration default).
func (k *KeyStore) Required(ctx context.Context) (bool, error) {
	if err := k.wait(ctx); err != nil {
		return false, err
	}
	if len(k.static) > 0 {
		return true, nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.stored) > 0, nil
}

// Run watches BucketKeys until ctx ends.
func (k *KeyStore) Run(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("gateway: watch %s: %w", BucketKeys, err)
	}
	defer w.Stop() //nolint:errcheck // shutting down
	loaded := false
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil
		case e = <-w.Updates():
		}
		if e == nil { // the initial values are all in
			if !loaded {
				loaded = true
				close(k.ready)
			}
			continue
		}
		h := "sha256:" + strings.TrimPrefix(e.Key(), "sha256.")
		k.mu.Lock()
		if e.Operation() != jetstream.KeyValuePut {
			delete(k.stored, h)
		} else {
			var r KeyRecord
			if json.Unmarshal(e.Value(), &r) == nil && r.Hash == h {
				k.stored[h] = r
			}
		}
		k.mu.Unlock()
	}
}

// NewAPIKey returns a new random key ("sy-" and 40 characters).
func NewAPIKey() string {
	b := make([]byte, 25)
	_, _ = rand.Read(b)
	return "sy-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// KeysBucket opens (creating when missing) the API keys bucket.
func KeysBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return newStore(js, replicas).kv(ctx, BucketKeys)
}

// CreateKey stores a new key for tenant and returns it; the key itself is
// shown once and never stored.
func CreateKey(ctx context.Context, kv jetstream.KeyValue, tenant, name string, admin bool, now time.Time) (string, KeyRecord, error) {
	if tenant != "" && !bus.ValidTenant(tenant) {
		return "", KeyRecord{}, fmt.Errorf("invalid tenant name %q", tenant)
	}
	key := NewAPIKey()
	r := KeyRecord{Hash: HashKey(key), Tenant: tenant, Admin: admin, Name: name, CreatedAt: now.UTC(),
		Hint: key[:6] + "..." + key[len(key)-4:]}
	b, _ := json.Marshal(r)
	if _, err := kv.Create(ctx, kvKeyOf(r.Hash), b); err != nil {
		return "", KeyRecord{}, err
	}
	return key, r, nil
}

// ListKeys returns the stored keys, oldest first.
func ListKeys(ctx context.Context, kv jetstream.KeyValue) ([]KeyRecord, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []KeyRecord
	for name := range lister.Keys() {
		e, err := kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r KeyRecord
		if err := json.Unmarshal(e.Value(), &r); err == nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b KeyRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// RevokeKey deletes the stored key whose id (or whole hash, or the key
// itself) is given; it returns the revoked record.
func RevokeKey(ctx context.Context, kv jetstream.KeyValue, idOrKey string) (KeyRecord, error) {
	keys, err := ListKeys(ctx, kv)
	if err != nil {
		return KeyRecord{}, err
	}
	var match []KeyRecord
	for _, r := range keys {
		if r.ID() == idOrKey || r.Hash == idOrKey || r.Hash == HashKey(idOrKey) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		return KeyRecord{}, fmt.Errorf("no stored key %q (submit keys list shows the ids)", idOrKey)
	case 1:
	default:
		return KeyRecord{}, fmt.Errorf("%q matches %d keys; give the whole hash", idOrKey, len(match))
	}
	return match[0], kv.Purge(ctx, kvKeyOf(match[0].Hash))
}
