package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names of the anonymous tenant; a named tenant T's
// request stream and buckets carry the suffix _T (see Subjects). The results
// and dead-letter streams are shared.
const (
	StreamRequests = "LLM_REQUESTS"
	StreamResults  = "LLM_RESULTS"
	StreamDLQ      = "LLM_DLQ"
	BucketCancel   = "LLM_CANCEL"
	// BucketCache is the response cache's KV bucket (one per tenant, see
	// Subjects.CacheBucket), made by the first worker that caches.
	BucketCache = "LLM_CACHE"
	// BucketOffload holds the jobs waiting for, and the batches in flight
	// at, a vendor's batch API (one per tenant, see Subjects.OffloadBucket),
	// made by the first worker that offloads.
	BucketOffload = "LLM_OFFLOAD"
)

// StreamsConfig sizes the streams. The zero value is usable: every field has
// a default, stated on the field.
type StreamsConfig struct {
	// Subjects names the subjects; only its prefix is used (every tenant
	// is provisioned).
	Subjects Subjects
	// Tenants are the named tenants to provision a request stream, an
	// object bucket and a cancel bucket for, besides the anonymous tenant's.
	// A tenant token with no stream is refused by the server (no
	// responders), so a name not listed here cannot queue a job.
	Tenants []string
	// Replicas of every stream and bucket. Default 1; use 3 on a cluster.
	Replicas int
	// Storage of the streams. Default file storage.
	Storage jetstream.StorageType
	// RequestDuplicates is the requests stream's dedupe window: a job
	// re-published with the same Nats-Msg-Id within it is a no-op.
	// Default 10 minutes.
	RequestDuplicates time.Duration
	// ResultsMaxAge is how long results are kept. Default 24 hours.
	ResultsMaxAge time.Duration
	// ResultDuplicates is the results stream's dedupe window, so that a job
	// that ran twice (a late ack) still stores one result. Default 1 hour,
	// at most ResultsMaxAge.
	ResultDuplicates time.Duration
	// DurableEvents also stores events in the results stream (so a client can
	// replay a stream), kept for EventsMaxAge. Default off.
	DurableEvents bool
	// EventsMaxAge is how long stored events are kept (a per-message TTL,
	// so they go long before the results). Default 1 hour.
	EventsMaxAge time.Duration
	// DLQMaxAge is how long dead letters are kept. Default 7 days.
	DLQMaxAge time.Duration
	// CancelTTL is how long a cancel marker is kept. Default 24 hours.
	CancelTTL time.Duration
	// CancelMaxBytes caps each tenant's cancel bucket (roughly 100 bytes a
	// marker): a tenant that floods it can no longer add markers until its
	// old ones expire, and no other tenant is affected. Default 8 MiB.
	CancelMaxBytes int64
}

// WithDefaults returns the config with every zero field set to its default.
func (c StreamsConfig) WithDefaults() StreamsConfig {
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.RequestDuplicates = cmp.Or(c.RequestDuplicates, 10*time.Minute)
	c.ResultsMaxAge = cmp.Or(c.ResultsMaxAge, 24*time.Hour)
	// JetStream refuses a dedupe window longer than the max age; a result
	// that expired cannot be deduplicated anyway.
	c.ResultDuplicates = min(cmp.Or(c.ResultDuplicates, time.Hour), c.ResultsMaxAge)
	c.DLQMaxAge = cmp.Or(c.DLQMaxAge, 7*24*time.Hour)
	c.EventsMaxAge = cmp.Or(c.EventsMaxAge, time.Hour)
	c.CancelTTL = cmp.Or(c.CancelTTL, 24*time.Hour)
	c.CancelMaxBytes = cmp.Or(c.CancelMaxBytes, 8<<20)
	return c
}

// namespaces returns the subjects of the anonymous tenant, then of every
// configured tenant.
func (c StreamsConfig) namespaces() []Subjects {
	out := []Subjects{c.Subjects.ForTenant("")}
	for _, t := range c.Tenants {
		out = append(out, c.Subjects.ForTenant(t))
	}
	return out
}

func (c StreamsConfig) validate() error {
	for _, t := range c.Tenants {
		if !ValidTenant(t) {
			return fmt.Errorf("bus: invalid tenant name %q ([a-z0-9][a-z0-9_-]{0,31})", t)
		}
	}
	return nil
}

// StreamConfigs returns the configurations of the streams: one request
// stream per tenant (the anonymous tenant's first), the results stream and
// the dead-letter stream.
func (c StreamsConfig) StreamConfigs() []jetstream.StreamConfig {
	c = c.WithDefaults()
	anon := c.Subjects.ForTenant("")
	results := []string{anon.Results(), anon.TenantResults()}
	if c.DurableEvents {
		results = append(results, anon.StoredEvents(), anon.TenantStoredEvents())
	}
	var out []jetstream.StreamConfig
	for _, ns := range c.namespaces() {
		desc := "Switchyard chat requests, one subject per model group"
		if ns.Tenant != "" {
			desc += ", of tenant " + ns.Tenant
		}
		out = append(out, jetstream.StreamConfig{
			Name:        ns.RequestStream(),
			Description: desc,
			Subjects:    []string{ns.Requests()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			Duplicates:  c.RequestDuplicates,
			Discard:     jetstream.DiscardOld,
		})
	}
	return append(out, []jetstream.StreamConfig{
		{
			Name:        StreamResults,
			Description: "Switchyard results (and, when durable, events)",
			Subjects:    results,
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.ResultsMaxAge,
			Duplicates:  c.ResultDuplicates,
			// Stored events carry a Nats-TTL header (EventsMaxAge).
			AllowMsgTTL: c.DurableEvents,
			// Direct get by subject ($JS.API.DIRECT.GET.LLM_RESULTS.<subject>)
			// is how a tenant reads its stored results: the subject is in the
			// API subject, so permissions can confine it to the tenant's.
			AllowDirect: true,
		},
		{
			Name:        StreamDLQ,
			Description: "Switchyard dead letters: undecodable and exhausted jobs",
			Subjects:    []string{c.Subjects.DLQs()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.DLQMaxAge,
		},
	}...)
}

// Provision creates the streams and every tenant's cancel and object
// buckets when they are missing. It is idempotent and safe to run from every
// worker at start: a stream that exists is left as the operator configured
// it, except that it gains subjects it lacks (the results stream's stored
// events, tenants' results) and direct get on the results stream.
func Provision(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	for _, sc := range cfg.StreamConfigs() {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	for _, ns := range cfg.namespaces() {
		kc := jetstream.KeyValueConfig{
			Bucket:      ns.CancelBucket(),
			Description: "Switchyard cancel markers for jobs still queued",
			TTL:         cfg.CancelTTL,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
		}
		if ns.Tenant != "" {
			// The anonymous bucket predates the cap; existing deployments
			// keep it as it is (the worker bounds its own memory anyway).
			kc.MaxBytes = cfg.CancelMaxBytes
		}
		_, err := js.CreateKeyValue(ctx, kc)
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("bus: create bucket %s: %w", kc.Bucket, err)
		}
		// The large-request bucket, replicated like the streams (an
		// anonymous client that finds none creates an R1 one).
		_, err = js.CreateObjectStore(ctx, objectStoreConfig(ns, cfg.Storage, cfg.Replicas))
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("bus: create bucket %s: %w", ns.ObjectBucket(), err)
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, sc)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("bus: create stream %s: %w", sc.Name, err)
	}
	s, err := js.Stream(ctx, sc.Name)
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", sc.Name, err)
	}
	have := s.CachedInfo().Config
	missing := false
	for _, want := range sc.Subjects {
		found := false
		for _, h := range have.Subjects {
			if h == want {
				found = true
			}
		}
		missing = missing || !found
	}
	if sc.AllowMsgTTL && !have.AllowMsgTTL {
		have.AllowMsgTTL, missing = true, true
	}
	if sc.AllowDirect && !have.AllowDirect {
		have.AllowDirect, missing = true, true
	}
	if !missing {
		return nil
	}
	have.Subjects = append(have.Subjects, sc.Subjects...) // dedupe drops the ones it had
	have.Subjects = dedupe(have.Subjects)
	if _, err := js.UpdateStream(ctx, have); err != nil {
		return fmt.Errorf("bus: add subjects to stream %s: %w", sc.Name, err)
	}
	return nil
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ConsumerConfig sizes the durable pull consumer of one group. Every field
// has a default, stated on the field.
type ConsumerConfig struct {
	// AckWait is how long a delivered job may go without an ack or an
	// in-progress signal before it is redelivered. Default 30s.
	AckWait time.Duration
	// MaxDeliver is how many deliveries a job gets: the worker answers the
	// last one with an error result and copies it to the DLQ instead of
	// running it. The consumer itself redelivers without limit (MaxDeliver
	// -1 on the server), so that a job whose result or dead-letter copy
	// cannot be written yet (JetStream storage full) stays deliverable and
	// is finished once it can. Default 5.
	MaxDeliver int
	// MaxAckPending bounds jobs in flight for the whole fleet. Default 20000.
	MaxAckPending int
	// MaxWaiting bounds concurrent pull requests. Default 4096.
	MaxWaiting int
}

// WithDefaults returns the config with every zero field set to its default.
func (c ConsumerConfig) WithDefaults() ConsumerConfig {
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 5)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, 20000)
	c.MaxWaiting = cmp.Or(c.MaxWaiting, 4096)
	return c
}

// ConsumerName is the durable consumer name of a group's default class
// (its bare v1 subject).
func ConsumerName(group string) string { return "worker-" + group }

// ConsumerNameFor is the durable consumer name of a group's class p:
// ConsumerName(group) for the default class, "worker-<group>@<class>" for
// the others ("@" is in no group name, so no two names collide).
func ConsumerNameFor(group string, p Priority) string {
	if t := p.token(); t != "" {
		return ConsumerName(group) + "@" + t
	}
	return ConsumerName(group)
}

// ParseConsumerName reads a name ConsumerNameFor made: the group and the
// class; false for any other consumer.
func ParseConsumerName(name string) (group string, p Priority, ok bool) {
	rest, ok := strings.CutPrefix(name, ConsumerName(""))
	if !ok {
		return "", "", false
	}
	group, class, classed := strings.Cut(rest, "@")
	p = PriorityDefault
	if classed {
		p = Priority(class)
		if p.token() == "" || !ValidPriority(p) {
			return "", "", false
		}
	}
	if !ValidGroup(group) {
		return "", "", false
	}
	return group, p, true
}

// EnsureConsumer creates or updates the durable pull consumer of group's
// default class on the request stream of subj's tenant.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, subj Subjects, group string, cfg ConsumerConfig) (jetstream.Consumer, error) {
	return EnsureConsumerFor(ctx, js, subj, group, PriorityDefault, cfg)
}

// EnsureConsumerFor creates or updates the durable pull consumer of
// group's class p on the request stream of subj's tenant. Its filter is
// the class's subject only, so the consumers of a group's classes never
// overlap (a work-queue stream requires it).
func EnsureConsumerFor(ctx context.Context, js jetstream.JetStream, subj Subjects, group string, p Priority, cfg ConsumerConfig) (jetstream.Consumer, error) {
	if !ValidGroup(group) {
		return nil, fmt.Errorf("bus: invalid group name %q", group)
	}
	if !ValidPriority(p) {
		return nil, fmt.Errorf("bus: invalid priority %q", p)
	}
	cfg = cfg.WithDefaults()
	desc := "Switchyard workers of group " + group
	if p != PriorityDefault {
		desc += ", class " + string(p)
	}
	if subj.Tenant != "" {
		desc += ", tenant " + subj.Tenant
	}
	c, err := js.CreateOrUpdateConsumer(ctx, subj.RequestStream(), jetstream.ConsumerConfig{
		Durable:       ConsumerNameFor(group, p),
		Description:   desc,
		FilterSubject: subj.RequestFor(group, p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1, // the worker ends a job at cfg.MaxDeliver, see ConsumerConfig
		MaxAckPending: cfg.MaxAckPending,
		MaxWaiting:    cfg.MaxWaiting,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: consumer for group %s (%s) on %s: %w", group, p, subj.RequestStream(), err)
	}
	return c, nil
}
