package tenant

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Open returns the budgets of limits on the existing bucket, to read what
// tenants spent (the console): it never creates or reconfigures the bucket,
// which the workers own. It returns nil, nil while no worker has created it.
func Open(ctx context.Context, js jetstream.JetStream, limits map[string]Limit) (*Budgets, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Budgets{kv: kv, limits: limits, now: time.Now, log: slog.Default()}, nil
}

// WindowStart is when tenant's current window began (zero without a
// budget).
func (b *Budgets) WindowStart(tenant string) time.Time {
	l, ok := b.limits[tenant]
	if !ok {
		return time.Time{}
	}
	w := l.Window
	if w <= 0 {
		w = 24 * time.Hour
	}
	return b.now().Truncate(w)
}
