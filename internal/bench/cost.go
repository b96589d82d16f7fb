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
	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/respcache"
	"github.com/switchyard/switchyard/internal/vendortest"
	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
	"github.com/switchyard/switchyard/pkg/llm/mock"
	"github.com/switchyard/switchyard/pkg/llm/openai"
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

func (cfg CostConfig) withDefaults() CostConfig {
	cfg.Hits = cmp.Or(cfg.Hits, 1000)
	cfg.Lines = cmp.Or(cfg.Lines, 1000)
	cfg.Model = cmp.Or(cfg.Model, "gpt-4o-mini")
	cfg.TTFT = cmp.Or(cfg.TTFT, 200*time.Millisecond)
	cfg.PromptBytes = cmp.Or(cfg.PromptBytes, 512)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 64)
	return cfg
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
	// The same lines (same prompts, the replay answering with the usage
	// the live run reported) offloaded through the worker to a replay of
	// OpenAI's Batch API.
	Offloaded       float64 // the results' cost_usd
	OffloadedOK     int     // lines answered with a vendor_batch_id
	OffloadBatches  int     // vendor batches the replay saw created
	OffloadDuration time.Duration
}

// Cost runs an embedded NATS server and one worker in this process, with a
// mock deployment priced as cfg.Model and two groups (one with a response
// cache), and measures: the time to first chunk of a cache hit against a
// miss, and what a batch of cfg.Lines lines cost run as ordinary calls,
// beside what the same usage costs at the vendor's batch prices.
func Cost(ctx context.Context, cfg CostConfig, out io.Writer) (*CostReport, error) {
	cfg = cfg.withDefaults()
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
	replay, stopReplay := vendortest.ServeOpenAIBatches()
	defer stopReplay()
	replay.SetRunning(1)
	oa, err := openai.New(openai.Options{APIKey: "sk-bench", BaseURL: replay.URL})
	if err != nil {
		return nil, err
	}
	batchDep := policy.Deployment{Name: "openai-batch", Model: cfg.Model, Provider: oa, Options: policy.DeploymentOptions{Priority: 1}}
	router, err := policy.NewRouter([]policy.Group{
		{Name: "cached", Deployments: []policy.Deployment{dep}, Options: policy.GroupOptions{Cache: &policy.CacheOptions{TTL: time.Hour}}},
		{Name: "lines", Deployments: []policy.Deployment{dep}},
		{Name: "offloaded", Deployments: []policy.Deployment{dep, batchDep}, Options: policy.GroupOptions{VendorBatch: &policy.VendorBatchOptions{After: time.Second}}},
	})
	if err != nil {
		return nil, err
	}
	defer router.Close()
	stopWorker, err := startCostWorker(ctx, nc, js, router)
	if err != nil {
		return nil, err
	}
	defer stopWorker()
	c, err := bus.NewClient(nc)
	if err != nil {
		return nil, err
	}

	rep := &CostReport{Hits: cfg.Hits, Lines: cfg.Lines}
	if err := cacheHits(ctx, c, cfg, p, rep); err != nil {
		return nil, err
	}

	// The batch: distinct prompts, run as ordinary calls, then offloaded.
	linePrompt := func(i int) string { return fmt.Sprintf("line %d: %s", i, Prompt(cfg.PromptBytes)) }
	used, err := liveLines(ctx, c, cfg, model, linePrompt, rep)
	if err != nil {
		return rep, err
	}
	replay.SetAnswer(func(l vendortest.Line) vendortest.Outcome {
		u := used[l.Prompt]
		return vendortest.Outcome{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	})
	if err := offloadLines(ctx, c, cfg.Lines, linePrompt, rep); err != nil {
		return rep, err
	}
	rep.OffloadBatches = len(replay.Created())

	printCost(out, cfg, model, rep)
	return rep, nil
}

// startCostWorker runs the bench's worker (the cache in front of router,
// vendor batches offloaded) until the returned stop.
func startCostWorker(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, router *policy.Router) (func(), error) {
	exec := costExec{r: router, Executor: policy.Chain(router, policy.Cache(policy.CacheConfig{
		Store: respcache.New(js, respcache.Config{}), Options: router.CacheOptions,
	}))}
	w, err := worker.New(nc, exec, worker.Config{
		Groups: []string{"cached", "lines", "offloaded"}, Concurrency: 256, FetchWait: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Offload: &worker.OffloadConfig{
			Targets: func(_, group string) (policy.BatchTarget, bool) { return router.BatchTarget(group) },
			Engine:  offload.Config{Tick: 200 * time.Millisecond},
		},
	})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		stop()
		return nil, err
	case <-ctx.Done():
		stop()
		<-done
		return nil, ctx.Err()
	}
	return func() { stop(); <-done }, nil
}

// cacheHits times the first cached request (a miss) and cfg.Hits repeats.
func cacheHits(ctx context.Context, c *bus.Client, cfg CostConfig, p *mock.Provider, rep *CostReport) error {
	zero := 0.0
	cachedReq := func() *bus.Request {
		return &bus.Request{Temperature: &zero, Messages: []bus.Message{{Role: "user", Content: bus.Text(Prompt(cfg.PromptBytes))}}}
	}
	ttfc, res, err := firstChunk(ctx, c, "cached", cachedReq())
	if err != nil {
		return fmt.Errorf("bench: the first cached request: %w", err)
	}
	if res.Cached {
		return errors.New("bench: the first request was a hit in an empty cache")
	}
	rep.MissTTFC = ttfc
	before := p.Calls()
	h := NewHistogram()
	for range cfg.Hits {
		d, res, err := firstChunk(ctx, c, "cached", cachedReq())
		if err != nil {
			return fmt.Errorf("bench: a repeat: %w", err)
		}
		h.Record(d)
		if res.Cached {
			rep.HitsCached++
		}
	}
	rep.HitProviderCalls = p.Calls() - before
	rep.HitP50, rep.HitP99 = h.Quantile(0.50), h.Quantile(0.99)
	return nil
}

// printCost prints what Cost measured.
func printCost(out io.Writer, cfg CostConfig, model catalog.Model, rep *CostReport) {
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
	fmt.Fprintf(out, "  at the vendor's batch prices:          $%.6f (%.0f%% less; the same usage priced with catalog.BatchCost)\n",
		rep.VendorBatch, saved)
	saved = 0
	if rep.Interactive > 0 {
		saved = 100 * (1 - rep.Offloaded/rep.Interactive)
	}
	fmt.Fprintf(out, "  offloaded (vendor_batch, results' cost_usd): $%.6f (%.0f%% less; %d of %d lines answered by %d vendor batch(es) of a local replay of OpenAI's Batch API, in %s)\n",
		rep.Offloaded, saved, rep.OffloadedOK, cfg.Lines, rep.OffloadBatches, rep.OffloadDuration.Round(time.Millisecond))
}

// liveLines runs cfg.Lines lines as ordinary calls on the lines group,
// cfg.Concurrency at a time, and returns the usage of each, by prompt.
func liveLines(ctx context.Context, c *bus.Client, cfg CostConfig, model catalog.Model, linePrompt func(int) string, rep *CostReport) (map[string]llm.Usage, error) {
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
		errs []error
		used = map[string]llm.Usage{} // by prompt
	)
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Lines || ctx.Err() != nil {
					return
				}
				off := false
				req := &bus.Request{Stream: &off, Messages: []bus.Message{{Role: "user", Content: bus.Text(linePrompt(i))}}}
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
					used[linePrompt(i)] = u
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("bench: %d of %d lines failed, the first: %w", len(errs), cfg.Lines, errs[0])
	}
	return used, nil
}

// offloadLines publishes n batch-class jobs to the offloaded group, all
// before the first is sent (the group's after is 1s), and sums the cost
// of their results.
func offloadLines(ctx context.Context, c *bus.Client, n int, prompt func(int) string, rep *CostReport) error {
	t0 := time.Now()
	jobs := make([]*bus.Job, 0, n)
	defer func() {
		for _, j := range jobs {
			j.Close()
		}
	}()
	off := false
	for i := range n {
		req := &bus.Request{Stream: &off, Priority: bus.PriorityBatch, Messages: []bus.Message{{Role: "user", Content: bus.Text(prompt(i))}}}
		j, err := c.Publish(ctx, "offloaded", req)
		if err != nil {
			return fmt.Errorf("bench: publish an offloaded line: %w", err)
		}
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		for {
			_, res, err := j.Next(ctx)
			if err != nil {
				return fmt.Errorf("bench: offloaded line %s: %w", j.ID, err)
			}
			if res == nil {
				continue
			}
			if res.Status == bus.StatusOK && res.VendorBatchID != "" {
				rep.OffloadedOK++
			}
			rep.Offloaded += res.CostUSD
			break
		}
	}
	rep.OffloadDuration = time.Since(t0)
	return nil
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
