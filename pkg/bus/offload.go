package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The keys of a tenant's offload bucket (Subjects.OffloadBucket), written by
// the workers' vendor batch offload (internal/offload) and counted by
// Status:
//
//	l.<group>.<job>   a job waiting for a vendor batch, or in one
//	b.<group>.<ref>   a vendor batch in flight
//	lease             the worker that works the bucket

// OffloadLineKey is the key of a job waiting for, or in, a vendor batch.
func OffloadLineKey(group, job string) string { return "l." + group + "." + job }

// OffloadBatchKey is the key of a vendor batch in flight.
func OffloadBatchKey(group, ref string) string { return "b." + group + "." + ref }

// OffloadLeaseKey is the key of the bucket's lease.
const OffloadLeaseKey = "lease"

// ParseOffloadKey returns the kind ('l' or 'b'), group and name (job or
// ref) of an offload key.
func ParseOffloadKey(key string) (kind byte, group, name string, ok bool) {
	kinds, rest, ok := strings.Cut(key, ".")
	if !ok || (kinds != "l" && kinds != "b") {
		return 0, "", "", false
	}
	group, name, ok = strings.Cut(rest, ".")
	return kinds[0], group, name, ok
}

// offloadStatus counts, per group, the jobs at a vendor batch API (waiting
// for a batch or in one) and the batches in flight, from the keys of the
// client's tenant's offload bucket.
func (c *Client) offloadStatus(ctx context.Context) (jobs, batches map[string]int, err error) {
	kv, err := c.js.KeyValue(ctx, c.subj.OffloadBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bus: bucket %s: %w", c.subj.OffloadBucket(), err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: bucket %s: %w", c.subj.OffloadBucket(), err)
	}
	defer func() { _ = lister.Stop() }()
	jobs, batches = map[string]int{}, map[string]int{}
	for k := range lister.Keys() {
		switch kind, g, _, ok := ParseOffloadKey(k); {
		case !ok:
		case kind == 'l':
			jobs[g]++
		default:
			batches[g]++
		}
	}
	return jobs, batches, nil
}
