package offload

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/kv"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Config configures an Engine. Every field has a default, stated on it.
type Config struct {
	// Subjects names the buckets (only its tenant matters, replaced per
	// namespace).
	Subjects bus.Subjects
	// Replicas and Storage are the buckets' (default 1, file).
	Replicas int
	Storage  jetstream.StorageType
	// MaxBytes caps each tenant's bucket (default 1 GiB): a full bucket
	// refuses new lines, whose jobs are handed back until it has room.
	MaxBytes int64
	// Owner names this engine in leases. Default: a random id.
	Owner string
	// Tick is how often the engine looks at the buckets it may work
	// (default 5s).
	Tick time.Duration
	// Lease is how long a bucket's lease lasts without renewal (default
	// 30s): how long the lines of a worker that died wait for another.
	Lease time.Duration
	// MaxLines caps a batch below its vendor's limit (default 10,000), so
	// that its record (the jobs' ids) fits in one NATS message.
	MaxLines int
	// LiveConcurrency bounds the lines run live at once (Host.Live) by one
	// engine (default 16).
	LiveConcurrency int
	// Logger default slog.Default(); Now default time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

func (c Config) withDefaults() Config {
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.MaxBytes = cmp.Or(c.MaxBytes, 1<<30)
	if c.Owner == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.Owner = hex.EncodeToString(b)
	}
	c.Tick = cmp.Or(c.Tick, 5*time.Second)
	c.Lease = cmp.Or(c.Lease, 30*time.Second)
	c.MaxLines = cmp.Or(c.MaxLines, 10000)
	c.LiveConcurrency = cmp.Or(c.LiveConcurrency, 16)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Targets says where the batches of a namespace's group go: tenant is the
// namespace whose bucket holds the lines ("" anonymous), whose keys (its
// own, or the worker's) the batches are sent with. False: the group does
// not offload (any more).
type Targets func(tenant, group string) (policy.BatchTarget, bool)

// Host is the worker: it turns lines back into requests and answers them.
// Its methods are called from the engine's goroutine.
type Host interface {
	// Request returns the request of a line as the worker validated it
	// (its model is set by the engine). An error sends the line back to
	// the live path.
	Request(l *Line) (*llm.Request, error)
	// Answer publishes the line's result: the vendor's answer a.
	Answer(ctx context.Context, l *Line, a *Answer) error
	// Cancelled reports whether the line's job was cancelled.
	Cancelled(l *Line) bool
	// Live runs the line as a live call and publishes its result (the
	// vendor failed it or did not run it, or its batch could not be
	// made). An error leaves the line for a later tick.
	Live(ctx context.Context, l *Line, why string) error
}

// Answer is how a line ended at the vendor, for Host.Answer.
type Answer struct {
	llm.BatchAnswer
	// Cancelled: the job was cancelled; nothing else is set but BatchID
	// when its batch had been sent (the vendor's answer is dropped).
	Cancelled bool
	BatchID   string // the vendor's id of the batch
	CostUSD   float64
	Target    policy.BatchTarget
}

// Engine runs the offload of a worker's namespaces. It is safe for
// concurrent use; Run works the buckets.
type Engine struct {
	js         jetstream.JetStream
	cfg        Config
	namespaces []bus.Subjects
	targets    Targets
	host       Host
	log        *slog.Logger

	buckets *kv.Buckets

	addMu sync.Mutex // serializes Add
	mu    sync.Mutex
	lines map[string]*Line // read lines by bucket and key
}

// New returns an engine for namespaces. It does not touch NATS until used.
func New(js jetstream.JetStream, namespaces []bus.Subjects, targets Targets, host Host, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	buckets := kv.NewBuckets(js, func(tenant string) string { return cfg.Subjects.ForTenant(tenant).OffloadBucket() },
		jetstream.KeyValueConfig{
			Description: "Switchyard jobs waiting for, and batches at, a vendor's batch API",
			History:     1, MaxBytes: cfg.MaxBytes, Storage: cfg.Storage, Replicas: cfg.Replicas,
		}, kv.OpenFirst)
	return &Engine{
		js: js, cfg: cfg, namespaces: namespaces, targets: targets, host: host, log: cfg.Logger,
		buckets: buckets, lines: map[string]*Line{},
	}
}

// Target is where tenant's group's batches go (see Targets).
func (e *Engine) Target(tenant, group string) (policy.BatchTarget, bool) {
	return e.targets(tenant, group)
}

// ErrLineTooLarge is returned by Add for a line larger than one NATS
// message: its job runs live.
var ErrLineTooLarge = errors.New("offload: the job's message is too large to wait for a vendor batch")

// ErrBucketFull is returned by Add when the tenant's bucket has no room
// for another line: its job runs live. Lines may fill three quarters of
// the bucket; the rest is for what working them writes (their claims, the
// batches' records, the lease).
var ErrBucketFull = errors.New("offload: the tenant's vendor batch bucket is full")

// jsStoreFailed is JetStream's error code for a message its stream could
// not store (its limits: "maximum bytes exceeded").
const jsStoreFailed jetstream.ErrorCode = 10077

// isFull reports whether err is a bucket's refusal of a write for want of
// room.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsStoreFailed
}

// Add records l in its tenant's bucket, where it waits for a batch (its
// Added, when zero, is now). A line already there (a redelivered job) is
// left as it is.
func (e *Engine) Add(ctx context.Context, l *Line) error {
	if l.Added.IsZero() {
		l.Added = e.cfg.Now()
	}
	kv, err := e.bucket(ctx, l.Tenant, true)
	if err != nil {
		return err
	}
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	// One Add at a time, so that this engine's jobs do not all find room
	// at once and fill the bucket past what it keeps for the work.
	e.addMu.Lock()
	defer e.addMu.Unlock()
	if err := roomFor(ctx, kv, len(data)); err != nil {
		return err
	}
	_, err = kv.Create(ctx, lineKey(l.Group, l.Job), data)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return nil
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrLineTooLarge
	case isFull(err):
		return ErrBucketFull
	}
	return err
}

// roomFor returns ErrBucketFull when n more bytes of lines would fill more
// than three quarters of kv.
func roomFor(ctx context.Context, kv jetstream.KeyValue, n int) error {
	status, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	bs, ok := status.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	limit := bs.StreamInfo().Config.MaxBytes
	if limit > 0 && int64(bs.Bytes())+int64(n) > limit/4*3 {
		return ErrBucketFull
	}
	return nil
}

// bucket returns tenant's bucket; make creates it when missing, else a
// missing bucket is nil, nil. It opens first: a worker that may only read
// the bucket works it without asking to create it.
func (e *Engine) bucket(ctx context.Context, tenant string, make bool) (jetstream.KeyValue, error) {
	kv, err := e.buckets.Open(ctx, tenant, make)
	if err != nil {
		return nil, fmt.Errorf("offload: %w", err)
	}
	return kv, nil
}

// Run works the buckets every Tick until ctx ends, then gives up the
// leases it holds so that another worker takes over at once.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		e.Tick(ctx)
		select {
		case <-ctx.Done():
			e.release()
			return
		case <-t.C:
		}
	}
}

// Tick works, once, every bucket whose lease this engine holds or takes.
func (e *Engine) Tick(ctx context.Context) {
	for _, ns := range e.namespaces {
		if ctx.Err() != nil {
			return
		}
		kv, err := e.bucket(ctx, ns.Tenant, false)
		if err != nil {
			e.log.Warn("offload bucket", slog.String("tenant", ns.Tenant), slog.Any("error", err))
			continue
		}
		if kv == nil || !e.hold(ctx, kv) {
			continue
		}
		if err := e.work(ctx, ns.Tenant, kv); err != nil && ctx.Err() == nil {
			e.log.Warn("offload: working the bucket failed; trying again at the next tick", slog.String("bucket", kv.Bucket()), slog.Any("error", err))
		}
	}
}

// hold takes or renews kv's lease: true when this engine holds it now.
func (e *Engine) hold(ctx context.Context, kv jetstream.KeyValue) bool {
	now := e.cfg.Now()
	data, _ := json.Marshal(lease{Owner: e.cfg.Owner, Until: now.Add(e.cfg.Lease)})
	entry, err := kv.Get(ctx, leaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = kv.Create(ctx, leaseKey, data)
	case err != nil:
	default:
		var cur lease
		if json.Unmarshal(entry.Value(), &cur) == nil && cur.Owner != e.cfg.Owner && cur.Until.After(now) {
			return false
		}
		_, err = kv.Update(ctx, leaseKey, data, entry.Revision())
	}
	return err == nil
}

// release gives up the leases this engine holds.
func (e *Engine) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, kv := range e.buckets.All() {
		entry, err := kv.Get(ctx, leaseKey)
		if err != nil {
			continue
		}
		var cur lease
		if json.Unmarshal(entry.Value(), &cur) == nil && cur.Owner == e.cfg.Owner {
			_ = kv.Delete(ctx, leaseKey, jetstream.LastRevision(entry.Revision()))
		}
	}
}
