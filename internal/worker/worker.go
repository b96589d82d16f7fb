package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Executor runs one request for a model group; *policy.Router is one.
type Executor interface {
	policy.Executor
	HasGroup(name string) bool
}

// Budgets checks and charges tenants' spending; *tenant.Budgets is one.
// Allow returns an error (a *bus.Error budget_exceeded) when the tenant may
// not run another job now.
type Budgets = policy.Budget

// Config configures a Worker. Every field but Groups has a default, stated on
// the field.
type Config struct {
	// Groups are the model groups this worker serves. Required.
	Groups []string
	// Subjects names the subjects (default prefix "llm").
	Subjects bus.Subjects
	// Streams sizes the streams provisioned at start.
	Streams bus.StreamsConfig
	// Consumer sizes the durable consumer of each group.
	Consumer bus.ConsumerConfig
	// Concurrency bounds the jobs this worker runs at once per group: its
	// tenants and classes share these slots (see docs/scheduling.md).
	// Default 128.
	Concurrency int
	// InteractiveShare is the share of each group's Concurrency slots kept
	// for interactive jobs: default and batch jobs never hold more than
	// Concurrency − floor(Concurrency × InteractiveShare) of them, even when
	// no interactive job waits. Default 0.25; negative for none; below 1.
	InteractiveShare float64
	// Classes maps a group to the class of the jobs on its bare request
	// subject (llm.req.<group>): the model file's groups.<g>.priority.
	// Default: bus.PriorityDefault.
	Classes map[string]bus.Priority
	// ShutdownGrace is how long running jobs may go on after shutdown
	// starts before they are handed back for redelivery. Default 25s.
	ShutdownGrace time.Duration
	// MaxJobTime bounds one job from pick-up to result. Default 10 minutes.
	MaxJobTime time.Duration
	// FetchWait is how long one pull request waits for jobs; it also bounds
	// how long shutdown waits for the pull loops. Default 2s.
	FetchWait time.Duration
	// UnknownSweep is how often queued jobs of groups that no worker serves
	// are looked for; UnknownGrace is how old such a job must be before it
	// is answered unknown_group (a worker serving it may be starting).
	// Defaults 2s and 5s.
	UnknownSweep time.Duration
	UnknownGrace time.Duration
	// StoreRetry is how long a job keeps retrying a JetStream write of its
	// answer (its result, its dead-letter copy, its ack) that fails for a
	// reason that may pass (storage full, a leader election) before it is
	// handed back for a later delivery. Default 30s.
	StoreRetry time.Duration
	// HandBackDelay is how long a job handed back because its answer could
	// not be stored waits before its next delivery; it doubles with each
	// delivery, up to 5 minutes. Default 5s.
	HandBackDelay time.Duration
	// MaxResultBytes bounds an encoded result. A result larger than one
	// NATS message is stored in the Object Store (see bus.Client.DecodeResult);
	// one larger than MaxResultBytes is answered too_large instead. Default
	// 64 MiB.
	MaxResultBytes int
	// ValidationRetries is how many times a json_object / json_schema
	// answer (or a tool call's arguments) that does not validate is re-asked
	// when the request does not set validation_retries. Default 2; negative
	// means no re-asks.
	ValidationRetries int
	// TenantNames are the tenants whose request streams, object and cancel
	// buckets this worker provisions and whose jobs it consumes, besides
	// the anonymous tenant's (the v1 subjects). Every key of Tenants is one
	// too. A job's tenant is the one whose subject it arrived on, never what
	// its body says.
	TenantNames []string
	// Tenants maps a tenant name to the executor its jobs run on (its own
	// keys). Jobs of other tenants use the worker's.
	Tenants map[string]Executor
	// AnonymousAs is the tenant that jobs on the anonymous (v1) subjects
	// run as (its keys and budget): "" runs them as the anonymous tenant,
	// with the worker's executor and no budget. DenyAnonymous refuses them
	// instead. The model file's unknown_tenants sets both.
	AnonymousAs   string
	DenyAnonymous bool
	// Secrets are the credentials the fleet holds (provider keys of every
	// deployment and tenant, NATS passwords): they are scrubbed, in every
	// form a vendor may echo them in (llm.Scrub), from the error and
	// attempt messages of results and the reasons of events, behind the
	// providers' own scrubbing.
	Secrets []string
	// CancelMemo bounds the cancel markers held in memory per tenant;
	// past it a tenant's markers are looked up in its bucket. Default 32768.
	CancelMemo int
	// Offload, when set, sends the jobs that can wait of groups that set
	// vendor_batch through their vendor's batch API (see OffloadConfig).
	Offload *OffloadConfig
	// Budgets, when set, is checked before a tenant's job runs and charged
	// after it ran.
	Budgets Budgets
	// Observer is told about every job (metrics). Default: none.
	Observer Observer
	// Tracer makes the job spans. Default: the global OpenTelemetry
	// tracer provider's, which is a no-op unless one was installed.
	Tracer trace.Tracer
	// Logger receives the worker's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Streams.Subjects = c.Subjects
	c.Streams = c.Streams.WithDefaults()
	c.Consumer = c.Consumer.WithDefaults()
	c.Concurrency = cmp.Or(c.Concurrency, 128)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 25*time.Second)
	c.MaxJobTime = cmp.Or(c.MaxJobTime, 10*time.Minute)
	c.FetchWait = cmp.Or(c.FetchWait, 2*time.Second)
	c.UnknownSweep = cmp.Or(c.UnknownSweep, 2*time.Second)
	c.UnknownGrace = cmp.Or(c.UnknownGrace, 5*time.Second)
	c.ValidationRetries = cmp.Or(c.ValidationRetries, 2)
	c.StoreRetry = cmp.Or(c.StoreRetry, 30*time.Second)
	c.HandBackDelay = cmp.Or(c.HandBackDelay, 5*time.Second)
	c.MaxResultBytes = cmp.Or(c.MaxResultBytes, 64<<20)
	c.CancelMemo = cmp.Or(c.CancelMemo, 32768)
	// Streams.Tenants, set by a caller that provisions with it, counts too:
	// overwriting it would leave those tenants' streams unmade.
	names := slices.Concat(c.TenantNames, c.Streams.Tenants)
	for t := range c.Tenants {
		names = append(names, t)
	}
	if c.AnonymousAs != "" {
		names = append(names, c.AnonymousAs)
	}
	slices.Sort(names)
	c.TenantNames = slices.Compact(names)
	c.Streams.Tenants = c.TenantNames
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Tracer == nil {
		c.Tracer = otel.GetTracerProvider().Tracer("github.com/switchyard/switchyard/internal/worker")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if len(c.Groups) == 0 {
		return errors.New("worker: no groups to serve")
	}
	for _, g := range c.Groups {
		if !bus.ValidGroup(g) {
			return fmt.Errorf("worker: invalid group name %q (one token of [a-z0-9_-])", g)
		}
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("worker: concurrency %d must be at least 1", c.Concurrency)
	}
	if c.InteractiveShare >= 1 {
		return fmt.Errorf("worker: interactive share %v must be below 1", c.InteractiveShare)
	}
	for g, p := range c.Classes {
		if !bus.ValidPriority(p) {
			return fmt.Errorf("worker: group %s: priority %q is not one of interactive, default, batch", g, p)
		}
	}
	for _, t := range c.TenantNames {
		if !bus.ValidTenant(t) {
			return fmt.Errorf("worker: invalid tenant name %q ([a-z0-9][a-z0-9_-]{0,31})", t)
		}
	}
	if c.Offload != nil && c.Offload.Targets == nil {
		return errors.New("worker: offload without targets")
	}
	if c.DenyAnonymous && c.AnonymousAs != "" {
		return errors.New("worker: jobs on the anonymous subjects are either denied or run as a tenant, not both")
	}
	return nil
}

// Worker consumes jobs of its groups. Create it with New and run it with Run.
type Worker struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	chain    policy.Executor // see chain.go
	rules    rules           // see intake.go
	log      *slog.Logger
	scrubber *llm.Scrubber

	// jobCtx is the parent of every job's context. It outlives the Run
	// context so that running jobs may finish during shutdown.
	jobCtx    context.Context
	stopJobs  context.CancelCauseFunc
	cancelled *cancelSet
	offload   *offload.Engine // nil: no vendor batches (Config.Offload)

	ready chan struct{}

	storePolicy retrypolicy.RetryPolicy[any] // the reply side's writes, see store
	health      health
	unstored    unstored // result messages sent but not stored, for the job's next delivery
	readers     sync.Map // bus.Subjects → *bus.Client reading stored results, see resultReader

	mu       sync.Mutex
	inflight map[*job]struct{}
	running  map[string]*job // by tenant-qualified job id (Subjects.ResultMsgID), for cancel
	wg       sync.WaitGroup
}

// namespaces returns the subjects of the anonymous tenant and of every
// configured tenant.
func (w *Worker) namespaces() []bus.Subjects {
	out := []bus.Subjects{w.cfg.Subjects.ForTenant("")}
	for _, t := range w.cfg.TenantNames {
		out = append(out, w.cfg.Subjects.ForTenant(t))
	}
	return out
}

// queue is one group's consumer of one class on one tenant's request
// stream.
type queue struct {
	ns    bus.Subjects
	group string
	class bus.Priority // the class its jobs are scheduled as (see Config.Classes)
	// consumer tells apart the bare subject's consumer from the class's own
	// when a group's default class is named (Config.Classes); else "".
	consumer string
	c        jetstream.Consumer
}

// New returns a worker. It does not touch NATS until Run.
func New(nc *nats.Conn, exec Executor, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	for _, g := range cfg.Groups {
		if !exec.HasGroup(g) {
			return nil, fmt.Errorf("worker: group %q is not configured", g)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, nc: nc, js: js, chain: newChain(exec, cfg), rules: rulesOf(cfg), log: cfg.Logger, scrubber: llm.NewScrubber(cfg.Secrets),
		inflight: map[*job]struct{}{}, running: map[string]*job{},
		ready:       make(chan struct{}),
		storePolicy: storeRetry(cfg.StoreRetry, cfg.Logger),
	}
	w.jobCtx, w.stopJobs = context.WithCancelCause(context.Background())
	if o := cfg.Offload; o != nil {
		ec := o.Engine
		ec.Subjects = cfg.Subjects
		ec.Logger = cmp.Or(ec.Logger, cfg.Logger)
		if ec.Now == nil {
			ec.Now = cfg.Now
		}
		w.offload = offload.New(js, w.namespaces(), o.Targets, offloadHost{w}, ec)
	}
	return w, nil
}

// errShutdown is the cause of a job context cancelled because the worker is
// stopping: such a job is handed back, not answered.
var errShutdown = errors.New("worker shutting down")

// Run provisions the streams and consumers, then consumes until ctx ends.
// It then stops pulling, lets running jobs finish for ShutdownGrace, hands
// back those that did not, and returns.
func (w *Worker) Run(ctx context.Context) error {
	var (
		queues []queue
		cs     *cancelSet
	)
	// A cluster that is still electing its JetStream leaders (every node
	// starting at once) refuses these for a while: keep trying until ctx
	// ends rather than exit, and say why each time.
	start := retrypolicy.NewBuilder[any]().
		WithMaxRetries(-1).
		WithBackoff(200*time.Millisecond, 5*time.Second).
		OnRetry(func(e failsafe.ExecutionEvent[any]) {
			w.log.WarnContext(ctx, "waiting for JetStream", slog.Int("attempt", e.Attempts()), slog.Any("error", e.LastError()))
		}).Build()
	err := failsafe.With[any](start).WithContext(ctx).Run(func() error {
		if err := bus.Provision(ctx, w.js, w.cfg.Streams); err != nil {
			return err
		}
		queues = queues[:0]
		for _, ns := range w.namespaces() {
			for _, g := range w.cfg.Groups {
				for _, p := range bus.Priorities {
					c, err := bus.EnsureConsumerFor(ctx, w.js, ns, g, p, w.cfg.Consumer)
					if err != nil {
						return err
					}
					q := queue{ns: ns, group: g, class: p, c: c}
					if p == bus.PriorityDefault && w.cfg.Classes[g] != "" && w.cfg.Classes[g] != p {
						q.class, q.consumer = w.cfg.Classes[g], "bare"
					}
					queues = append(queues, q)
				}
			}
		}
		var err error
		cs, err = startCancelSet(ctx, w.js, w.namespaces(), w.cfg.CancelMemo, w.cfg.Now, w.log)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("worker: stopped before JetStream was ready: %w", err)
		}
		return err
	}
	defer cs.stop()
	w.cancelled = cs
	for _, subject := range []string{w.cfg.Subjects.Cancels(), w.cfg.Subjects.TenantCancels()} {
		sub, err := w.nc.Subscribe(subject, w.onCancel)
		if err != nil {
			return fmt.Errorf("worker: subscribe cancels: %w", err)
		}
		defer sub.Unsubscribe()
	}

	var loops sync.WaitGroup
	for _, g := range w.cfg.Groups {
		var qs []queue
		for _, q := range queues {
			if q.group == g {
				qs = append(qs, q)
			}
		}
		loops.Go(func() { w.schedule(ctx, g, qs) })
	}
	loops.Go(func() { w.sweepUnknown(ctx) })
	if w.offload != nil {
		loops.Go(func() { w.offload.Run(ctx) })
	}
	stopKeepAlive := make(chan struct{})
	keepAliveDone := make(chan struct{})
	go func() { defer close(keepAliveDone); w.keepAlive(stopKeepAlive) }()
	defer func() { close(stopKeepAlive); <-keepAliveDone }()
	w.log.InfoContext(ctx, "worker ready", slog.Any("groups", w.cfg.Groups), slog.Any("tenants", w.cfg.TenantNames), slog.Int("concurrency", w.cfg.Concurrency))
	close(w.ready)

	<-ctx.Done()
	// First let the pull loops end (their last fetch expires within
	// FetchWait; what it still brings is handed back with a delay longer
	// than that), so that no pull request of this worker is left to receive
	// the jobs handed back below. Then give running jobs their grace period.
	loops.Wait()
	return w.drain()
}

// Ready is closed once the worker consumes: streams, consumers and cancel
// watch are in place.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// drain waits for running jobs for ShutdownGrace, then cancels the rest,
// which hand their messages back.
func (w *Worker) drain() error {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	w.mu.Lock()
	n := len(w.inflight)
	w.mu.Unlock()
	if n > 0 {
		w.log.Info("waiting for running jobs", slog.Int("jobs", n), slog.Duration("grace", w.cfg.ShutdownGrace))
	}
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		w.mu.Lock()
		n = len(w.inflight)
		w.mu.Unlock()
		w.log.Warn("grace period over, handing back running jobs", slog.Int("jobs", n))
		w.stopJobs(errShutdown)
		<-done
	}
	w.stopJobs(errShutdown)
	return w.nc.Flush()
}

// start runs one job in its own goroutine, giving its slot back at the end
// (release).
func (w *Worker) start(ns bus.Subjects, group string, class bus.Priority, msg jetstream.Msg, release func()) {
	j := &job{w: w, ticket: ticket{ns: ns}, group: group, class: class, msg: msg, picked: w.cfg.Now()}
	w.mu.Lock()
	w.inflight[j] = struct{}{}
	w.mu.Unlock()
	w.wg.Go(func() {
		defer func() {
			// A panic in any stage of the job (decoding, validation, the
			// router, a provider) ends that job, not the process.
			if v := recover(); v != nil {
				j.recoverPanic(v)
			}
			w.mu.Lock()
			delete(w.inflight, j)
			if key := j.subj.ResultMsgID(j.id); j.id != "" && w.running[key] == j {
				delete(w.running, key)
			}
			w.mu.Unlock()
			release()
		}()
		j.run()
	})
}

// keepAlive sends InProgress for every running job at a third of AckWait, so
// a long generation is not redelivered. It runs until stop is closed, which
// is after the shutdown grace period.
func (w *Worker) keepAlive(stop <-chan struct{}) {
	t := time.NewTicker(w.cfg.Consumer.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.touchAll()
		}
	}
}

func (w *Worker) touchAll() {
	w.mu.Lock()
	jobs := make([]*job, 0, len(w.inflight))
	for j := range w.inflight {
		jobs = append(jobs, j)
	}
	w.mu.Unlock()
	for _, j := range jobs {
		j.touch()
	}
}

// onCancel handles a cancel subject of any tenant: it reaches only the job of
// that id in that tenant's namespace.
func (w *Worker) onCancel(m *nats.Msg) {
	tenant, id, ok := w.cfg.Subjects.ParseCancel(m.Subject)
	if !ok {
		return
	}
	w.cancelled.add(tenant, id) // ignored for tenants this fleet does not serve
	w.mu.Lock()
	j := w.running[w.cfg.Subjects.ForTenant(tenant).ResultMsgID(id)]
	w.mu.Unlock()
	if j != nil {
		j.cancel(policy.ErrCancelled)
		confirmCancel(m, id)
	}
}
