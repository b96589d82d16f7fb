// Package tenant keeps per-tenant budgets fleet-wide in NATS KV.
package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/kv"
	"github.com/switchyard/switchyard/pkg/bus"
)

// Bucket is the KV bucket of spending counters.
const Bucket = "LLM_BUDGETS"

// Limit is one tenant's budget per window. Zero fields are unlimited.
type Limit struct {
	Tokens  int64
	CostUSD float64
	Window  time.Duration
}

// Spent is a tenant's spending within one window.
type Spent struct {
	Tokens  int64   `json:"tokens"`
	CostUSD float64 `json:"cost_usd"`
}

// Budgets checks and charges tenants' budgets. Counters live in KV under
// <tenant>.<window start, unix seconds> and are updated with compare-and-set,
// so several workers charging at once stay consistent. Safe for concurrent
// use.
//
// A budget stops jobs once it is spent: jobs already running when it runs
// out finish and are charged, so a window can overshoot by what was in
// flight. When the KV cannot be reached the check lets jobs through (and
// logs): an outage of the counters must not stop the fleet.
type Budgets struct {
	kv     jetstream.KeyValue
	limits map[string]Limit
	now    func() time.Time
	log    *slog.Logger
}

// New creates (if needed) the bucket and returns the budgets of limits.
func New(ctx context.Context, js jetstream.JetStream, limits map[string]Limit, replicas int, log *slog.Logger) (*Budgets, error) {
	longest := 24 * time.Hour
	for _, l := range limits {
		longest = max(longest, l.Window)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Switchyard tenant spending per window",
		History:     1,
		TTL:         2 * longest, // old windows expire on their own
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("tenant: budget bucket: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Budgets{kv: kv, limits: limits, now: time.Now, log: log}, nil
}

func (b *Budgets) key(tenant string, l Limit) string {
	w := l.Window
	if w <= 0 {
		w = 24 * time.Hour
	}
	start := b.now().Truncate(w)
	return tenant + "." + strconv.FormatInt(start.Unix(), 10)
}

// Spent returns what tenant spent in the current window.
func (b *Budgets) Spent(ctx context.Context, tenant string) (Spent, error) {
	l, ok := b.limits[tenant]
	if !ok {
		return Spent{}, nil
	}
	s, _, err := b.get(ctx, b.key(tenant, l))
	return s, err
}

func (b *Budgets) get(ctx context.Context, key string) (Spent, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Spent{}, 0, nil
	}
	if err != nil {
		return Spent{}, 0, err
	}
	var s Spent
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return Spent{}, 0, fmt.Errorf("tenant: counter %s: %w", key, err)
	}
	return s, e.Revision(), nil
}

// Allow returns a *bus.Error with code budget_exceeded when tenant's budget
// for the current window is spent, else nil.
func (b *Budgets) Allow(ctx context.Context, tenant string) error {
	l, ok := b.limits[tenant]
	if !ok {
		return nil
	}
	s, _, err := b.get(ctx, b.key(tenant, l))
	if err != nil {
		b.log.Warn("budget check failed; letting the job through", slog.String("tenant", tenant), slog.Any("error", err))
		return nil
	}
	switch {
	case l.Tokens > 0 && s.Tokens >= l.Tokens:
		return &bus.Error{Code: bus.CodeBudgetExceeded, Message: fmt.Sprintf("tenant %s spent %d of %d tokens in this %s window", tenant, s.Tokens, l.Tokens, l.Window)}
	case l.CostUSD > 0 && s.CostUSD >= l.CostUSD:
		return &bus.Error{Code: bus.CodeBudgetExceeded, Message: fmt.Sprintf("tenant %s spent $%.4f of $%.4f in this %s window", tenant, s.CostUSD, l.CostUSD, l.Window)}
	}
	return nil
}

// Charge adds a finished job's usage to tenant's counter.
func (b *Budgets) Charge(ctx context.Context, tenant string, tokens int, costUSD float64) error {
	l, ok := b.limits[tenant]
	if !ok || (tokens == 0 && costUSD == 0) {
		return nil
	}
	_, err := kv.UpdateJSON(ctx, b.kv, b.key(tenant, l), func(s *Spent) bool {
		s.Tokens += int64(tokens)
		s.CostUSD += costUSD
		return true
	})
	return err
}
