package policy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/cachepolicy"

	"github.com/switchyard/switchyard/pkg/llm"
)

// CacheOptions turn a group's response cache on (the model file's
// `cache: {ttl: 1h}`). Only deterministic requests are cached (see
// Cacheable) unless AnyTemperature is set.
type CacheOptions struct {
	// TTL is how long an answer is served from the cache. Required (at
	// least 1s, the store's granularity).
	TTL time.Duration `yaml:"ttl"`
	// AnyTemperature caches requests that sample (temperature above 0, or
	// unset without a seed) too: they then get the first answer again
	// instead of a new draw. Default false.
	AnyTemperature bool `yaml:"any_temperature"`
}

func (o *CacheOptions) validate() error {
	if o == nil {
		return nil
	}
	if o.TTL < time.Second {
		return optionError("cache.ttl", "%s is below 1s (set a ttl, e.g. 1h)", o.TTL)
	}
	return nil
}

// CachedAnswer is what the cache keeps of an answer: enough to answer the
// same request again, with the same events, without a provider call.
type CachedAnswer struct {
	Text         string           `json:"text,omitempty"`
	FinishReason llm.FinishReason `json:"finish_reason,omitempty"`
	Group        string           `json:"group,omitempty"`
	Deployment   string           `json:"deployment,omitempty"`
	Model        string           `json:"model,omitempty"`
	Provider     string           `json:"provider,omitempty"`
	// Chunks are the text deltas of the answering attempt, in order, as
	// they were streamed: a hit streams them again.
	Chunks []string `json:"chunks,omitempty"`
	// Usage and CostUSD are what the answer cost when it was made
	// (informational: a hit costs nothing).
	Usage   llm.Usage `json:"usage"`
	CostUSD float64   `json:"cost_usd,omitempty"`
	// Stored and Expires are when the answer was stored and until when it
	// is served.
	Stored  time.Time `json:"stored"`
	Expires time.Time `json:"expires"`
}

// CacheStore keeps cached answers per tenant, e.g. internal/respcache on a
// NATS KV bucket per tenant. Keys are hex digests (CacheKey). Every method
// may fail; the cache then lets the call run as if it had no entry.
// Implementations are safe for concurrent use.
type CacheStore interface {
	// Get returns key's answer in tenant's cache, or nil when there is
	// none (whether it is still fresh is the caller's decision).
	Get(ctx context.Context, tenant, key string) (*CachedAnswer, error)
	// Put stores a, replacing what key held; the store may drop it after
	// ttl.
	Put(ctx context.Context, tenant, key string, a *CachedAnswer, ttl time.Duration) error
	// Lock takes the right to compute key's answer for ttl, fleet-wide,
	// and reports false when another caller holds it. Unlock gives it back.
	Lock(ctx context.Context, tenant, key string, ttl time.Duration) (bool, error)
	Unlock(ctx context.Context, tenant, key string) error
	// Wait returns when key's lock is not held, or as soon as key's answer
	// or lock changes, or when ctx ends.
	Wait(ctx context.Context, tenant, key string) error
}

// CacheConfig configures Cache.
type CacheConfig struct {
	// Store keeps the answers. Required.
	Store CacheStore
	// Options returns the requested group's cache options, nil when the
	// group does not cache: e.g. (*Router).CacheOptions.
	Options func(group string) *CacheOptions
	// LockTTL bounds how long one caller computing an answer makes the
	// others wait for it (a crashed one's lock lapses then). Default 2m.
	LockTTL time.Duration
	// MaxEntryBytes is the largest answer stored (the store's value limit):
	// a larger one is answered but not cached. Default 900 KiB, inside
	// NATS's default 1 MiB message.
	MaxEntryBytes int
	// Now is the clock that decides expiry. Default time.Now.
	Now func() time.Time
	// OnHit, OnMiss and OnError, when set, are told about each cacheable
	// call (metrics).
	OnHit   func(group string)
	OnMiss  func(group string)
	OnError func(group string, err error)
}

// Cacheable reports whether req may be answered from a cache with opts:
// it has no tools (a tool call acts in the caller's world: the caller
// must see it made, not replayed) and is deterministic, that is its
// temperature is 0 or it names a seed, unless opts.AnyTemperature.
func Cacheable(req *llm.Request, opts *CacheOptions) bool {
	if opts == nil || req == nil || len(req.Tools) > 0 {
		return false
	}
	if opts.AnyTemperature {
		return true
	}
	return (req.Temperature != nil && *req.Temperature == 0) || req.Seed != nil
}

// CacheKey is the digest an answer to req in group is kept under: of what
// changes the answer (messages, response format, sampling parameters,
// tool choice) and of the tenant and group, so that two tenants never
// share an entry even in one store.
func CacheKey(tenant, group string, req *llm.Request) string {
	k := struct {
		V              int                 `json:"v"`
		Tenant         string              `json:"tenant"`
		Group          string              `json:"group"`
		Messages       []llm.Message       `json:"messages"`
		Temperature    *float64            `json:"temperature"`
		TopP           *float64            `json:"top_p"`
		MaxTokens      int                 `json:"max_tokens"`
		Stop           []string            `json:"stop"`
		Seed           *int64              `json:"seed"`
		ResponseFormat *llm.ResponseFormat `json:"response_format"`
		ToolChoice     *llm.ToolChoice     `json:"tool_choice"`
	}{1, tenant, group, req.Messages, req.Temperature, req.TopP, req.MaxTokens, req.Stop, req.Seed, req.ResponseFormat, req.ToolChoice}
	b, err := json.Marshal(k)
	if err != nil {
		// Every field is plain data; a failure here is a bug, and a key
		// made of the error would be shared by unrelated requests.
		panic("policy: cache key: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Cache returns the middleware that answers a repeated cacheable request
// (see Cacheable) of a group with cache options from cfg.Store, with no
// provider call: the answer's events again (start, then its chunks), its
// text, Cached set, no usage and no cost. A miss runs the call and stores
// its successful answer. Calls with Call.NoCache pass through.
//
// An expired or missing entry is computed once for the fleet: the first
// caller takes the key's lock in the store and the others wait for its
// answer (at most LockTTL), so N concurrent requests make one provider
// call. It is built on failsafe-go's cachepolicy.
func Cache(cfg CacheConfig) Middleware {
	cfg.LockTTL = cmp.Or(cfg.LockTTL, 2*time.Minute)
	cfg.MaxEntryBytes = cmp.Or(cfg.MaxEntryBytes, 900<<10)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return func(next Executor) Executor {
		return ExecutorFunc(func(ctx context.Context, c *Call, emit func(Event)) (*Outcome, error) {
			var opts *CacheOptions
			if cfg.Options != nil && cfg.Store != nil && !c.NoCache {
				opts = cfg.Options(c.Group)
			}
			if !Cacheable(c.Request, opts) {
				return next.Execute(ctx, c, emit)
			}
			cc := &callCache{cfg: &cfg, ctx: ctx, call: c, ttl: opts.TTL}
			defer cc.release()
			cp := cachepolicy.NewBuilder[*Outcome](cc).
				WithKey(CacheKey(c.Tenant, c.Group, c.Request)).
				CacheIf(func(o *Outcome, err error) bool {
					return err == nil && o != nil && len(o.ToolCalls) == 0 && !o.Cached
				}).Build()
			out, err := failsafe.With(cp).Get(func() (*Outcome, error) {
				return next.Execute(ctx, c, cc.record(emit))
			})
			if cc.hit != nil {
				if cfg.OnHit != nil {
					cfg.OnHit(c.Group)
				}
				return cc.replay(emit), nil
			}
			if cfg.OnMiss != nil {
				cfg.OnMiss(c.Group)
			}
			return out, err
		})
	}
}

// callCache is one call's view of the store, as failsafe-go's
// cachepolicy.Cache: Get finds a fresh answer (waiting for another caller
// computing it), Set stores the call's own.
type callCache struct {
	cfg    *CacheConfig
	ctx    context.Context
	call   *Call
	ttl    time.Duration
	locked string        // the key whose lock this call holds
	hit    *CachedAnswer // what Get found
	chunks []string      // the answer's deltas, recorded by the middleware
	start  time.Time
}

var _ cachepolicy.Cache[*Outcome] = (*callCache)(nil)

// storeCtx bounds one store operation: a slow store must not hold a call,
// and the entry of a call whose caller went away is still stored.
func (cc *callCache) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(cc.ctx), 5*time.Second)
}

func (cc *callCache) fail(err error) {
	if err != nil && cc.cfg.OnError != nil {
		cc.cfg.OnError(cc.call.Group, err)
	}
}

// Get implements cachepolicy.Cache. It returns true with a fresh answer;
// false once this call holds key's lock (it computes the answer), or when
// the store fails or waiting took too long (it computes it anyway).
func (cc *callCache) Get(key string) (*Outcome, bool) {
	cc.start = cc.cfg.Now()
	wctx, cancel := context.WithTimeout(cc.ctx, cc.cfg.LockTTL)
	defer cancel()
	for wctx.Err() == nil {
		sctx, scancel := cc.storeCtx()
		a, err := cc.cfg.Store.Get(sctx, cc.call.Tenant, key)
		scancel()
		if err != nil {
			cc.fail(err)
			return nil, false
		}
		if a != nil && cc.cfg.Now().Before(a.Expires) {
			cc.hit = a
			return &Outcome{Cached: true}, true
		}
		sctx, scancel = cc.storeCtx()
		ok, err := cc.cfg.Store.Lock(sctx, cc.call.Tenant, key, cc.cfg.LockTTL)
		scancel()
		if err != nil {
			cc.fail(err)
			return nil, false
		}
		if ok {
			cc.locked = key
			// The caller that held the lock may have stored its answer
			// between the read above and the lock: read again, holding it.
			sctx, scancel = cc.storeCtx()
			a, err := cc.cfg.Store.Get(sctx, cc.call.Tenant, key)
			scancel()
			if err == nil && a != nil && cc.cfg.Now().Before(a.Expires) {
				cc.release()
				cc.hit = a
				return &Outcome{Cached: true}, true
			}
			return nil, false
		}
		if err := cc.cfg.Store.Wait(wctx, cc.call.Tenant, key); err != nil && wctx.Err() == nil {
			cc.fail(err)
			return nil, false
		}
	}
	return nil, false
}

// Set implements cachepolicy.Cache: it stores the call's answer (when it is
// small enough) and gives the lock back.
func (cc *callCache) Set(key string, o *Outcome) {
	now := cc.cfg.Now()
	a := &CachedAnswer{
		Text: o.Text, FinishReason: o.FinishReason, Group: o.Group, Deployment: o.Deployment, Model: o.Model,
		Provider: o.Provider, Chunks: cc.chunks, Usage: o.Usage, CostUSD: o.CostUSD, Stored: now, Expires: now.Add(cc.ttl),
	}
	if n := len(a.Text) * 2; n > cc.cfg.MaxEntryBytes {
		cc.fail(fmt.Errorf("%w: an answer of %d bytes", errTooLargeToCache, len(a.Text)))
		return
	}
	ctx, cancel := cc.storeCtx()
	defer cancel()
	cc.fail(cc.cfg.Store.Put(ctx, cc.call.Tenant, key, a, cc.ttl))
	cc.release()
}

var errTooLargeToCache = errors.New("policy: not cached")

// release gives back the lock this call holds, if any (its call failed,
// or its answer is stored).
func (cc *callCache) release() {
	if cc.locked == "" {
		return
	}
	ctx, cancel := cc.storeCtx()
	defer cancel()
	cc.fail(cc.cfg.Store.Unlock(ctx, cc.call.Tenant, cc.locked))
	cc.locked = ""
}

// replay emits the cached answer's events and returns its outcome.
func (cc *callCache) replay(emit func(Event)) *Outcome {
	a := cc.hit
	out := &Outcome{
		Text: a.Text, FinishReason: a.FinishReason, Group: cmp.Or(a.Group, cc.call.Group), Deployment: a.Deployment,
		Model: a.Model, Provider: a.Provider, Cached: true,
	}
	if emit == nil {
		return out
	}
	emit(Event{Type: EventStart, Group: out.Group, Deployment: a.Deployment})
	for i, d := range a.Chunks {
		if i == 0 {
			out.TTFT = cc.cfg.Now().Sub(cc.start)
		}
		emit(Event{Type: EventChunk, Group: out.Group, Deployment: a.Deployment, Delta: d})
	}
	return out
}

// record keeps the chunk deltas of the call's last attempt, for Set.
func (cc *callCache) record(emit func(Event)) func(Event) {
	return func(e Event) {
		switch e.Type {
		case EventStart, EventRestart:
			cc.chunks = cc.chunks[:0]
		case EventChunk:
			cc.chunks = append(cc.chunks, e.Delta)
		}
		if emit != nil {
			emit(e)
		}
	}
}
