package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names.
const (
	StreamRequests = "LLM_REQUESTS"
	StreamResults  = "LLM_RESULTS"
	StreamDLQ      = "LLM_DLQ"
	BucketCancel   = "LLM_CANCEL"
)

// StreamsConfig sizes the streams. The zero value is usable: every field has
// a default, stated on the field.
type StreamsConfig struct {
	Subjects Subjects
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
	// that ran twice (a late ack) still stores one result. Default 1 hour.
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
}

// WithDefaults returns the config with every zero field set to its default.
func (c StreamsConfig) WithDefaults() StreamsConfig {
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.RequestDuplicates = cmp.Or(c.RequestDuplicates, 10*time.Minute)
	c.ResultsMaxAge = cmp.Or(c.ResultsMaxAge, 24*time.Hour)
	c.ResultDuplicates = cmp.Or(c.ResultDuplicates, time.Hour)
	c.DLQMaxAge = cmp.Or(c.DLQMaxAge, 7*24*time.Hour)
	c.EventsMaxAge = cmp.Or(c.EventsMaxAge, time.Hour)
	c.CancelTTL = cmp.Or(c.CancelTTL, 24*time.Hour)
	return c
}

// StreamConfigs returns the configurations of the three streams.
func (c StreamsConfig) StreamConfigs() []jetstream.StreamConfig {
	c = c.WithDefaults()
	results := []string{c.Subjects.Results()}
	if c.DurableEvents {
		results = append(results, c.Subjects.StoredEvents())
	}
	return []jetstream.StreamConfig{
		{
			Name:        StreamRequests,
			Description: "Switchyard chat requests, one subject per model group",
			Subjects:    []string{c.Subjects.Requests()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			Duplicates:  c.RequestDuplicates,
			Discard:     jetstream.DiscardOld,
		},
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
	}
}

// Provision creates the streams and the cancel bucket when they are missing.
// It is idempotent and safe to run from every worker at start: a stream that
// exists is left as the operator configured it, except that a results stream
// missing the stored-events subject gains it when DurableEvents is on.
func Provision(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.WithDefaults()
	for _, sc := range cfg.StreamConfigs() {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketCancel,
		Description: "Switchyard cancel markers for jobs still queued",
		TTL:         cfg.CancelTTL,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		return fmt.Errorf("bus: create bucket %s: %w", BucketCancel, err)
	}
	// The large-request bucket, replicated like the streams (a client that
	// finds none creates an R1 one).
	_, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketObjects,
		Description: "Switchyard request bodies larger than one NATS message",
		TTL:         ObjectsTTL,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil && !errors.Is(err, jetstream.ErrBucketExists) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("bus: create bucket %s: %w", BucketObjects, err)
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
	// MaxDeliver bounds deliveries; the last one is answered with an error
	// result and copied to the DLQ. Default 5.
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

// ConsumerName is the durable consumer name of a group.
func ConsumerName(group string) string { return "worker-" + group }

// EnsureConsumer creates or updates the durable pull consumer of group.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, subj Subjects, group string, cfg ConsumerConfig) (jetstream.Consumer, error) {
	if !ValidGroup(group) {
		return nil, fmt.Errorf("bus: invalid group name %q", group)
	}
	cfg = cfg.WithDefaults()
	c, err := js.CreateOrUpdateConsumer(ctx, StreamRequests, jetstream.ConsumerConfig{
		Durable:       ConsumerName(group),
		Description:   "Switchyard workers of group " + group,
		FilterSubject: subj.Request(group),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		MaxWaiting:    cfg.MaxWaiting,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: consumer for group %s: %w", group, err)
	}
	return c, nil
}
