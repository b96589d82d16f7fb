package offload

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// Batches returns the vendor batches in flight in subj's tenant's bucket,
// oldest first (none when it has no bucket). It only reads: a user allowed
// to read the bucket (the console's) may call it.
func Batches(ctx context.Context, js jetstream.JetStream, subj bus.Subjects) ([]Batch, error) {
	kv, err := js.KeyValue(ctx, subj.OffloadBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offload: bucket %s: %w", subj.OffloadBucket(), err)
	}
	keys, err := listKeys(ctx, kv, batchPrefix+">")
	if err != nil {
		return nil, err
	}
	var out []Batch
	for _, k := range keys {
		b, err := getBatch(ctx, kv, k)
		if err != nil {
			return nil, err
		}
		if b != nil {
			b.Tenant = subj.Tenant
			out = append(out, *b.Batch)
		}
	}
	slices.SortFunc(out, func(a, b Batch) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// listKeys returns kv's keys that match filters.
func listKeys(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]string, error) {
	lister, err := kv.ListKeysFiltered(ctx, filters...)
	if err != nil {
		return nil, err
	}
	defer lister.Stop() //nolint:errcheck // it only stops the listing
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}
