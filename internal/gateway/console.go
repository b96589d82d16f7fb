package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/console"
)

// The console (internal/console) is served under /console/; this file is
// what it asks of the gateway: keys, batches and files.

// consoleBackend implements console.Backend on the gateway.
type consoleBackend struct{ g *Gateway }

var _ console.Backend = consoleBackend{}

func (b consoleBackend) KeysRequired(ctx context.Context) (bool, error) {
	r, err := b.g.keys.Required(ctx)
	return r || b.g.cfg.RequireKeys, err
}

func consoleIdentity(r KeyRecord) console.Identity {
	return console.Identity{Tenant: r.Tenant, Admin: r.Admin, KeyID: r.ID(), KeyName: r.Name}
}

func (b consoleBackend) Authenticate(ctx context.Context, key string) (console.Identity, string, bool, error) {
	if key == "" {
		return console.Identity{}, "", false, nil
	}
	h := HashKey(key)
	r, ok, err := b.g.keys.record(ctx, h)
	return consoleIdentity(r), h, ok, err
}

func (b consoleBackend) AuthenticateHash(ctx context.Context, hash string) (console.Identity, bool, error) {
	r, ok, err := b.g.keys.record(ctx, hash)
	return consoleIdentity(r), ok, err
}

// record returns the key record of a hash, from the model file or the
// bucket (a revoked key is not found).
func (k *KeyStore) record(ctx context.Context, hash string) (KeyRecord, bool, error) {
	if err := k.wait(ctx); err != nil {
		return KeyRecord{}, false, err
	}
	if r, ok := k.static[hash]; ok {
		return r, true, nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	r, ok := k.stored[hash]
	return r, ok, nil
}

func consoleKey(r KeyRecord, static bool) console.Key {
	return console.Key{ID: r.ID(), Tenant: r.Tenant, Name: r.Name, Hint: r.Hint, Admin: r.Admin, CreatedAt: r.CreatedAt, Static: static}
}

func (b consoleBackend) Keys(ctx context.Context) ([]console.Key, error) {
	var out []console.Key
	for _, r := range b.g.keys.static {
		out = append(out, consoleKey(r, true))
	}
	slices.SortFunc(out, func(a, b console.Key) int { return strings.Compare(a.ID, b.ID) })
	kv, err := b.g.store.kv(ctx, BucketKeys)
	if err != nil {
		return out, err
	}
	stored, err := ListKeys(ctx, kv)
	for _, r := range stored {
		out = append(out, consoleKey(r, false))
	}
	return out, err
}

func (b consoleBackend) CreateKey(ctx context.Context, tenant, name string, admin bool) (string, console.Key, error) {
	kv, err := b.g.store.kv(ctx, BucketKeys)
	if err != nil {
		return "", console.Key{}, err
	}
	key, r, err := CreateKey(ctx, kv, tenant, name, admin, b.g.now())
	return key, consoleKey(r, false), err
}

func (b consoleBackend) RevokeKey(ctx context.Context, id string) (console.Key, error) {
	kv, err := b.g.store.kv(ctx, BucketKeys)
	if err != nil {
		return console.Key{}, err
	}
	r, err := RevokeKey(ctx, kv, id)
	return consoleKey(r, false), err
}

func consoleBatch(rec *batchRecord) console.Batch {
	v := rec.Batch
	b := console.Batch{ID: v.ID, Tenant: rec.Tenant, Status: v.Status, Endpoint: v.Endpoint,
		Total: v.RequestCounts.Total, Completed: v.RequestCounts.Completed, Failed: v.RequestCounts.Failed,
		CreatedAt: time.Unix(v.CreatedAt, 0)}
	at := func(p *int64) time.Time {
		if p == nil {
			return time.Time{}
		}
		return time.Unix(*p, 0)
	}
	b.InProgressAt = at(v.InProgressAt)
	for _, end := range []*int64{v.CompletedAt, v.FailedAt, v.CancelledAt, v.ExpiredAt} {
		if end != nil {
			b.EndedAt = at(end)
		}
	}
	if v.OutputFileID != nil {
		b.OutputFileID = *v.OutputFileID
	}
	if v.ErrorFileID != nil {
		b.ErrorFileID = *v.ErrorFileID
	}
	return b
}

func (b consoleBackend) Batches(ctx context.Context, tenant *string) ([]console.Batch, error) {
	if _, err := b.g.js.KeyValue(ctx, BucketBatches); errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil // no batch was ever created
	}
	kv, err := b.g.store.kv(ctx, BucketBatches)
	if err != nil {
		return nil, err
	}
	filter := ">"
	if tenant != nil {
		filter = tenantToken(*tenant) + ".*"
	}
	keys, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []console.Batch
	for k := range keys.Keys() {
		if rec, _, err := readBatch(ctx, kv, k); err == nil && rec != nil {
			out = append(out, consoleBatch(rec))
		}
	}
	slices.SortFunc(out, func(a, b console.Batch) int { return strings.Compare(b.ID, a.ID) }) // UUIDv7: newest first
	return out, nil
}

func (b consoleBackend) CancelBatch(ctx context.Context, tenant, id string) (*console.Batch, error) {
	rec, err := b.g.markCancelling(ctx, tenant, id)
	if errors.Is(err, errNoBatch) {
		return nil, fmt.Errorf("no batch %s of tenant %q", id, tenant)
	}
	if err != nil {
		return nil, err
	}
	cb := consoleBatch(rec)
	return &cb, nil
}

func (b consoleBackend) OpenFile(ctx context.Context, tenant, id string) (io.ReadCloser, string, error) {
	info, err := b.g.fileInfo(ctx, tenant, id)
	if err != nil {
		return nil, "", err
	}
	if info == nil {
		return nil, "", fmt.Errorf("no file %s", id)
	}
	obs, err := b.g.store.files(ctx)
	if err != nil {
		return nil, "", err
	}
	obj, err := obs.Get(ctx, info.Name)
	if err != nil {
		return nil, "", err
	}
	return obj, info.Metadata["filename"], nil
}

// SessionSecret is the console's session signing key, shared by every
// gateway through BucketSecrets.
func (b consoleBackend) SessionSecret(ctx context.Context) ([]byte, error) {
	s, err := b.g.sharedSecret(ctx, "console.session", "")
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}
