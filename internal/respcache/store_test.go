package respcache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/natstest"
	"github.com/switchyard/switchyard/internal/respcache"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// provider is an executor standing for a router: it counts its calls and
// answers each with two chunks; gate, when set, holds every call until it
// is closed.
type provider struct {
	calls atomic.Int64
	gate  chan struct{}
}

func (p *provider) Execute(ctx context.Context, c *policy.Call, emit func(policy.Event)) (*policy.Outcome, error) {
	n := p.calls.Add(1)
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	text := fmt.Sprintf("answer %d to %s", n, c.Request.Messages[0].Content)
	if emit != nil {
		emit(policy.Event{Type: policy.EventStart, Group: c.Group, Deployment: "d"})
		emit(policy.Event{Type: policy.EventChunk, Group: c.Group, Deployment: "d", Delta: text[:6]})
		emit(policy.Event{Type: policy.EventChunk, Group: c.Group, Deployment: "d", Delta: text[6:]})
	}
	return &policy.Outcome{Text: text, Group: c.Group, Deployment: "d", Model: "m", CostUSD: 0.01,
		Usage: llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}, Attempts: []policy.Attempt{{Deployment: "d"}}}, nil
}

// waitCounter counts the callers of Wait: those that found another
// caller computing their answer.
type waitCounter struct {
	policy.CacheStore
	waits atomic.Int64
}

func (w *waitCounter) Wait(ctx context.Context, tenant, key string) error {
	w.waits.Add(1)
	return w.CacheStore.Wait(ctx, tenant, key)
}

func opts(ttl time.Duration) func(string) *policy.CacheOptions {
	return func(group string) *policy.CacheOptions {
		if group == "nocache" {
			return nil
		}
		return &policy.CacheOptions{TTL: ttl}
	}
}

func zero() *float64 { f := 0.0; return &f }

func call(tenant, group, prompt string) *policy.Call {
	return &policy.Call{Tenant: tenant, Group: group, Request: &llm.Request{
		Temperature: zero(), Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}},
	}}
}

func newStore(t *testing.T, srv *server.Server) *respcache.Store {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	return respcache.New(js, respcache.Config{})
}

func run(t *testing.T, e policy.Executor, c *policy.Call) (*policy.Outcome, []policy.Event) {
	t.Helper()
	var evs []policy.Event
	out, err := e.Execute(t.Context(), c, func(ev policy.Event) { evs = append(evs, ev) })
	require.NoError(t, err)
	return out, evs
}

func TestHitHasNoProviderCallAndTheSameEvents(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	p := &provider{}
	e := policy.Chain(p, policy.Cache(policy.CacheConfig{Store: newStore(t, srv), Options: opts(time.Hour)}))

	first, evs1 := run(t, e, call("", "g", "hello"))
	require.False(t, first.Cached)
	second, evs2 := run(t, e, call("", "g", "hello"))
	require.EqualValues(t, 1, p.calls.Load(), "the second call is answered from the cache")
	require.True(t, second.Cached)
	require.Equal(t, first.Text, second.Text)
	require.Equal(t, evs1, evs2)
	require.Zero(t, second.CostUSD)
	require.Zero(t, second.Usage)
	require.Empty(t, second.Attempts)
}

func TestTenantsNeverShareAnEntry(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	p := &provider{}
	store := newStore(t, srv)
	e := policy.Chain(p, policy.Cache(policy.CacheConfig{Store: store, Options: opts(time.Hour)}))

	a, _ := run(t, e, call("acme", "g", "same question"))
	b, _ := run(t, e, call("beta", "g", "same question"))
	anon, _ := run(t, e, call("", "g", "same question"))
	require.EqualValues(t, 3, p.calls.Load(), "each tenant pays for its own answer")
	require.False(t, b.Cached)
	require.False(t, anon.Cached)
	require.NotEqual(t, a.Text, b.Text)
	again, _ := run(t, e, call("beta", "g", "same question"))
	require.True(t, again.Cached)
	require.Equal(t, b.Text, again.Text, "beta reads its own answer, not acme's")

	// Each tenant's answers are in its own bucket, under a key of its own.
	for _, tenant := range []string{"acme", "beta", ""} {
		kv, err := store.Bucket(t.Context(), tenant)
		require.NoError(t, err)
		keys, err := kv.ListKeys(t.Context())
		require.NoError(t, err)
		var n int
		for k := range keys.Keys() {
			require.Equal(t, "e."+policy.CacheKey(tenant, "g", call(tenant, "g", "same question").Request), k)
			n++
		}
		require.Equal(t, 1, n, "tenant %q", tenant)
	}
	require.NotEqual(t, policy.CacheKey("acme", "g", call("", "g", "q").Request), policy.CacheKey("beta", "g", call("", "g", "q").Request))
}

func TestWhatIsNotCached(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	warm := 0.7
	for _, tc := range []struct {
		name string
		call func() *policy.Call
	}{
		{"cache false", func() *policy.Call { c := call("", "g", "q"); c.NoCache = true; return c }},
		{"a group without cache", func() *policy.Call { return call("", "nocache", "q") }},
		{"temperature above 0", func() *policy.Call { c := call("", "g", "q"); c.Request.Temperature = &warm; return c }},
		{"no temperature and no seed", func() *policy.Call { c := call("", "g", "q"); c.Request.Temperature = nil; return c }},
		{"tools", func() *policy.Call {
			c := call("", "g", "q")
			c.Request.Tools = []llm.Tool{{Name: "f"}}
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &provider{}
			store := newStore(t, srv)
			e := policy.Chain(p, policy.Cache(policy.CacheConfig{Store: store, Options: opts(time.Hour)}))
			for range 3 {
				out, _ := run(t, e, tc.call())
				require.False(t, out.Cached)
			}
			require.EqualValues(t, 3, p.calls.Load())
		})
	}
	t.Run("a seed is deterministic", func(t *testing.T) {
		t.Parallel()
		p := &provider{}
		e := policy.Chain(p, policy.Cache(policy.CacheConfig{Store: newStore(t, srv), Options: opts(time.Hour)}))
		seed := int64(7)
		mk := func() *policy.Call {
			c := call("seeded", "g", "q")
			c.Request.Temperature = &warm
			c.Request.Seed = &seed
			return c
		}
		run(t, e, mk())
		out, _ := run(t, e, mk())
		require.True(t, out.Cached)
		require.EqualValues(t, 1, p.calls.Load())
	})
}

// An expired entry wanted by many callers at once, on two workers (two
// connections and stores), costs one provider call: the first takes the
// key's lock, the others wait for its answer.
func TestExpiredEntryIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	clk := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	p := &provider{}
	var errs atomic.Int64
	stores := []*waitCounter{{CacheStore: newStore(t, srv)}, {CacheStore: newStore(t, srv)}}
	var execs []policy.Executor
	for _, s := range stores {
		execs = append(execs, policy.Chain(p, policy.Cache(policy.CacheConfig{Store: s, Options: opts(time.Hour), Now: clk.Now, OnError: func(_ string, err error) { errs.Add(1); t.Log(err) }})))
	}
	old, _ := run(t, execs[0], call("", "g", "popular"))
	hit, _ := run(t, execs[1], call("", "g", "popular"))
	require.True(t, hit.Cached)
	require.EqualValues(t, 1, p.calls.Load())

	clk.Add(61 * time.Minute)
	p.gate = make(chan struct{})
	const n = 8
	outs := make([]*policy.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o, err := execs[i%2].Execute(t.Context(), call("", "g", "popular"), nil)
			if err == nil {
				outs[i] = o
			}
		})
	}
	// Every caller but the one computing the answer ends up waiting for it;
	// only then may the provider answer. Without the lock, every caller
	// would be held in the provider and none would wait.
	require.Eventually(t, func() bool { return stores[0].waits.Load()+stores[1].waits.Load() >= n-1 }, 30*time.Second, 10*time.Millisecond)
	close(p.gate)
	wg.Wait()
	require.EqualValues(t, 2, p.calls.Load(), "one call filled the cache, one refreshed it")
	var computed int
	for i, o := range outs {
		require.NotNil(t, o, "caller %d", i)
		require.NotEqual(t, old.Text, o.Text, "caller %d got the expired answer", i)
		require.Equal(t, outs[0].Text, o.Text)
		if !o.Cached {
			computed++
		}
	}
	require.Equal(t, 1, computed)
}

// A caller that computes an answer and fails gives its lock back: the next
// caller does not wait for an answer that will never come.
func TestFailedCallReleasesTheLock(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	fails := policy.ExecutorFunc(func(context.Context, *policy.Call, func(policy.Event)) (*policy.Outcome, error) {
		return nil, &llm.Error{Kind: llm.KindUnavailable, Message: "down"}
	})
	store := &waitCounter{CacheStore: newStore(t, srv)}
	cfg := policy.CacheConfig{Store: store, Options: opts(time.Hour), LockTTL: time.Hour}
	_, err := policy.Chain(fails, policy.Cache(cfg)).Execute(t.Context(), call("", "g", "q"), nil)
	require.Error(t, err)
	p := &provider{}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := policy.Chain(p, policy.Cache(cfg)).Execute(ctx, call("", "g", "q"), nil)
	require.NoError(t, err)
	require.False(t, out.Cached)
	require.Zero(t, store.waits.Load())
}
