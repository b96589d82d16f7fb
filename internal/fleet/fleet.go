package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/kv"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Config names the KV buckets.
type Config struct {
	// BreakerBucket holds one key per deployment whose value is the time its
	// breaker is open until (default "LLM_BREAKERS").
	BreakerBucket string
	// RateBucket holds rpm/tpm counters per deployment and minute (default
	// "LLM_RATES"); entries expire after 2 minutes.
	RateBucket string
	// Replicas of both buckets (default 1).
	Replicas int
	// OpTimeout bounds one rate reservation, so that a slow store does not
	// eat a request's deadline; past it the router decides from its local
	// counters (default 250ms).
	OpTimeout time.Duration
	// Now is the clock of the rate windows (default time.Now).
	Now func() time.Time
}

// State is a policy.SharedState on NATS KV. It is safe for concurrent use.
type State struct {
	breakers jetstream.KeyValue
	rates    jetstream.KeyValue
	mirror   *kv.Mirror // of breakers, into open
	nc       *nats.Conn
	now      func() time.Time
	opTime   time.Duration

	mu   sync.RWMutex
	open map[string]time.Time // by KV key
}

var _ policy.SharedState = (*State)(nil)

// New creates (or binds to) the buckets and starts watching breakers. Call
// Close to stop the watcher.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*State, error) {
	cfg.BreakerBucket = cmp.Or(cfg.BreakerBucket, "LLM_BREAKERS")
	cfg.RateBucket = cmp.Or(cfg.RateBucket, "LLM_RATES")
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	cfg.OpTimeout = cmp.Or(cfg.OpTimeout, 250*time.Millisecond)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cfg.BreakerBucket, History: 1, Replicas: cfg.Replicas, Storage: jetstream.MemoryStorage})
	if err != nil {
		return nil, fmt.Errorf("fleet: breaker bucket: %w", err)
	}
	r, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cfg.RateBucket, History: 1, TTL: 2 * time.Minute, Replicas: cfg.Replicas, Storage: jetstream.MemoryStorage})
	if err != nil {
		return nil, fmt.Errorf("fleet: rate bucket: %w", err)
	}
	s := &State{breakers: b, rates: r, nc: js.Conn(), now: cfg.Now, opTime: cfg.OpTimeout, open: map[string]time.Time{}}
	if s.mirror, err = kv.Watch(b, s.applyBreaker, nil); err != nil {
		return nil, fmt.Errorf("fleet: watch breakers: %w", err)
	}
	return s, nil
}

// Close stops the breaker watcher.
func (s *State) Close() error { return s.mirror.Stop() }

// applyBreaker mirrors one change of the breaker bucket.
func (s *State) applyBreaker(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var until time.Time
	if e.Operation() == jetstream.KeyValuePut && until.UnmarshalText(e.Value()) == nil && !until.IsZero() {
		s.open[e.Key()] = until
	} else {
		delete(s.open, e.Key())
	}
}

// key turns a deployment name into a valid KV key token.
func key(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}

// PublishBreaker implements policy.SharedState.
func (s *State) PublishBreaker(ctx context.Context, deployment string, openUntil time.Time) error {
	if err := s.connected(); err != nil {
		return err
	}
	v, err := openUntil.UTC().MarshalText()
	if err != nil {
		return err
	}
	_, err = s.breakers.Put(ctx, key(deployment), v)
	return err
}

// BreakerOpenUntil implements policy.SharedState from the watched map: it
// costs a map read.
func (s *State) BreakerOpenUntil(deployment string) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.open[key(deployment)]
}

// ErrDisconnected is returned while the NATS connection is down, so that the
// router decides from local state at once instead of waiting for a timeout.
var ErrDisconnected = errors.New("fleet: not connected to NATS")

func (s *State) connected() error {
	if s.nc != nil && !s.nc.IsConnected() {
		return ErrDisconnected
	}
	return nil
}

type counts struct {
	Requests int `json:"r"`
	Tokens   int `json:"t"`
}

// Reserve implements policy.SharedState with compare-and-swap on the
// deployment's counter for the current minute.
func (s *State) Reserve(ctx context.Context, deployment string, tokens, rpm, tpm int) (bool, error) {
	if err := s.connected(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTime)
	defer cancel()
	k := fmt.Sprintf("%s.%d", key(deployment), s.now().Unix()/60)
	return kv.UpdateJSON(ctx, s.rates, k, func(c *counts) bool {
		if rpm > 0 && c.Requests >= rpm || tpm > 0 && c.Tokens > 0 && c.Tokens+tokens > tpm {
			return false // a reservation that does not fit is not counted
		}
		c.Requests++
		c.Tokens += tokens
		return true
	})
}
