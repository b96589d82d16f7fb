package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/embedded"
	"github.com/switchyard/switchyard/internal/respcache"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/policy"
)

// CostConfig configures Cost. Every field has a default, stated on it.
type CostConfig struct {
	// Hits is how many repeats of one cached request are timed (default
	// 1000).
	Hits int
	// Lines is the size of the batch priced (default 1000).
	Lines int
	// Model is the catalogue model the mock deployment is priced as
	// (default gpt-4o-mini).
	Model string
	// TTFT is the mock provider's time to first token (default 200ms): what
	// a miss waits and a hit does not.
	TTFT time.Duration
	// PromptBytes sizes each prompt (default 512).
	PromptBytes int
	// Concurrency bounds the batch's jobs in flight (default 64).
	Concurrency int
}

// CostReport is what Cost measured.
type CostReport struct {
	MissTTFC         time.Duration // publish to first chunk of the first (uncached) request
	HitP50, HitP99   time.Duration // publish to first chunk of the cached repeats
	Hits, HitsCached int           // repeats timed, and how many of them said cached
	HitProviderCalls int64         // provider calls while the repeats ran (0 when all hit)
	Lines, LinesOK   int
	PromptTokens     int // of the batch, summed from the results' usage
	CompletionTokens int
	Interactive      float64 // the batch's cost_usd as the results report it (each line a normal call)
	VendorBatch      float64 // the same usage at the catalogue's batch prices (catalog.BatchCost)
}

// Cost runs an embedded NATS server and one worker in this process, with a
// mock deployment priced as cfg.Model and two groups (one with a response
// cache), and measures: the time to first chunk of a cache hit against a
// miss, and what a batch of cfg.Lines lines cost run as ordinary calls,
// beside what the same usage costs at the vendor's batch prices.
func Cost(ctx context.Context, cfg CostConfig, out io.Writer) (*CostReport, error) {
	cfg.Hits = cmp.Or(cfg.Hits, 1000)
	cfg.Lines = cmp.Or(cfg.Lines, 1000)
	cfg.Model = cmp.Or(cfg.Model, "gpt-4o-mini")
	cfg.TTFT = cmp.Or(cfg.TTFT, 200*time.Millisecond)
	cfg.PromptBytes = cmp.Or(cfg.PromptBytes, 512)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 64)
	model, ok := catalog.Lookup(cfg.Model)
	if !ok {
		return nil, fmt.Errorf("bench: model %q is not in the catalogue", cfg.Model)
	}

	dir, err := os.MkdirTemp("", "switchyard-bench-cost-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.StartContext(ctx, embedded.Options{Addr: "127.0.0.1:-1", StoreDir: dir})
	if err != nil {
		return nil, err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}

	p := mock.New(mock.Config{TTFT: cfg.TTFT, Tokens: 20})
	dep := policy.Deployment{Name: "mock-" + cfg.Model, Model: cfg.Model, Provider: p}
	router, err := policy.NewRouter([]policy.Group{
		{Name: "cached", Deployments: []policy.Deployment{dep}, Options: policy.GroupOptions{Cache: &policy.CacheOptions{TTL: time.Hour}}},
		{Name: "lines", Deployments: []policy.Deployment{dep}},
	})
	if err != nil {
		return nil, err
	}
	defer router.Close()
	exec := costExec{r: router, Executor: policy.Chain(router, policy.Cache(policy.CacheConfig{
		Store: respcache.New(js, respcache.Config{}), Options: router.CacheOptions,
	}))}
	w, err := worker.New(nc, exec, worker.Config{
		Groups: []string{"cached", "lines"}, Concurrency: 256, FetchWait: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()
	select {
	case <-w.Ready():
	case err := <-done:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := bus.NewClient(nc)
	if err != nil {
		return nil, err
	}

	rep := &CostReport{Hits: cfg.Hits, Lines: cfg.Lines}
	zero := 0.0
	cachedReq := func() *bus.Request {
		return &bus.Request{Temperature: &zero, Messages: []bus.Message{{Role: "user", Content: bus.Text(Prompt(cfg.PromptBytes))}}}
	}
	ttfc, res, err := firstChunk(ctx, c, "cached", cachedReq())
	if err != nil {
		return nil, fmt.Errorf("bench: the first cached request: %w", err)
	}
	if res.Cached {
		return nil, errors.New("bench: the first request was a hit in an empty cache")
	}
	rep.MissTTFC = ttfc
	before := p.Calls()
	h := NewHistogram()
	for range cfg.Hits {
		d, res, err := firstChunk(ctx, c, "cached", cachedReq())
		if err != nil {
			return nil, fmt.Errorf("bench: a repeat: %w", err)
		}
		h.Record(d)
		if res.Cached {
			rep.HitsCached++
		}
	}
	rep.HitProviderCalls = p.Calls() - before
	rep.HitP50, rep.HitP99 = h.Quantile(0.50), h.Quantile(0.99)

	// The batch: distinct prompts, run as ordinary calls.
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
		errs []error
	)
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Lines || ctx.Err() != nil {
					return
				}
				off := false
				req := &bus.Request{Stream: &off, Messages: []bus.Message{{Role: "user", Content: bus.Text(fmt.Sprintf("line %d: %s", i, Prompt(cfg.PromptBytes)))}}}
				res, err := c.Submit(ctx, "lines", req)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if res.Usage != nil {
					u := llm.Usage{PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens}
					rep.LinesOK++
					rep.PromptTokens += u.PromptTokens
					rep.CompletionTokens += u.CompletionTokens
					rep.Interactive += res.CostUSD
					rep.VendorBatch += catalog.BatchCost(model, u)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return rep, fmt.Errorf("bench: %d of %d lines failed, the first: %w", len(errs), cfg.Lines, errs[0])
	}

	fmt.Fprintf(out, "response cache (mock TTFT %s, %d-byte prompt, temperature 0):\n", cfg.TTFT, cfg.PromptBytes)
	fmt.Fprintf(out, "  miss: time to first chunk %s\n", rep.MissTTFC.Round(time.Microsecond))
	fmt.Fprintf(out, "  hit:  time to first chunk p50 %s  p99 %s  (%d repeats, %d cached, %d provider calls)\n",
		rep.HitP50.Round(time.Microsecond), rep.HitP99.Round(time.Microsecond), rep.Hits, rep.HitsCached, rep.HitProviderCalls)
	fmt.Fprintf(out, "batch of %d lines on %s (catalogue prices of %s: $%.3f/$%.3f per Mtok, batch $%.3f/$%.3f):\n",
		cfg.Lines, cfg.Model, catalog.PricesAsOf, model.InputPerMTok, model.OutputPerMTok, model.BatchInputPerMTok, model.BatchOutputPerMTok)
	fmt.Fprintf(out, "  usage: %d prompt + %d completion tokens over %d lines\n", rep.PromptTokens, rep.CompletionTokens, rep.LinesOK)
	fmt.Fprintf(out, "  as ordinary calls (results' cost_usd): $%.6f\n", rep.Interactive)
	saved := 0.0
	if rep.Interactive > 0 {
		saved = 100 * (1 - rep.VendorBatch/rep.Interactive)
	}
	fmt.Fprintf(out, "  at the vendor's batch prices:          $%.6f (%.0f%% less; priced from the same usage: the fleet does not offload to vendor batches yet)\n",
		rep.VendorBatch, saved)
	return rep, nil
}

// costExec is the cached chain over the router, with its groups.
type costExec struct {
	policy.Executor
	r *policy.Router
}

func (e costExec) HasGroup(name string) bool { return e.r.HasGroup(name) }

// firstChunk publishes req and returns the time from publication to its
// first chunk event, and its result.
func firstChunk(ctx context.Context, c *bus.Client, group string, req *bus.Request) (time.Duration, *bus.Result, error) {
	t0 := time.Now()
	job, err := c.Publish(ctx, group, req)
	if err != nil {
		return 0, nil, err
	}
	defer job.Close()
	var first time.Duration
	for {
		ev, res, err := job.Next(ctx)
		if err != nil {
			return 0, nil, err
		}
		if res != nil {
			if res.Status != bus.StatusOK {
				return 0, res, fmt.Errorf("job %s: %v", res.ID, res.Error)
			}
			if first == 0 {
				return 0, res, fmt.Errorf("job %s: no chunk", res.ID)
			}
			return first, res, nil
		}
		if ev.Type == bus.EventChunk && first == 0 {
			first = time.Since(t0)
		}
	}
}
