package console

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard/switchyard/internal/heartbeat"
	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/pkg/bus"
)

// Metric families of the workers' heartbeats that the overview reads. The
// columns of a later feature appear when its family exists:
//   - a class label on switchyard_jobs_total (priority classes, #17) splits
//     the groups' rows per class;
//   - famLearnedLimit (the adaptive limiter's learned concurrency, #17)
//     replaces the configured max_concurrency as a deployment's limit.
const (
	famJobs         = "switchyard_jobs_total"
	famBreaker      = "switchyard_breaker_open"
	famDepInFlight  = "switchyard_deployment_calls_in_flight"
	famMaxConc      = "switchyard_deployment_max_concurrency"
	famLearnedLimit = "switchyard_deployment_concurrency_limit"
	famRPMUsed      = "switchyard_deployment_rpm_used"
	famTPMUsed      = "switchyard_deployment_tpm_used"
	famRPMLimit     = "switchyard_deployment_rpm_limit"
	famTPMLimit     = "switchyard_deployment_tpm_limit"
	famTTFT         = "gen_ai_server_time_to_first_token_seconds"
)

// defaultClass is the class of jobs whose metrics carry none.
const defaultClass = "default"

// Overview is what the overview page shows.
type Overview struct {
	At      time.Time
	Workers []heartbeat.Worker
	Groups  []GroupRow
	Deps    []DeploymentRow
	// VendorBatches are the vendor batches in flight (vendor_batch) of
	// the tenants in view, oldest first.
	VendorBatches []VendorBatchRow
	// HasClass is set once a worker reports classes; HasLearned once one
	// reports learned limits.
	HasClass, HasLearned bool
	Window               time.Duration
	Err                  string
}

// GroupRow is one group (and class) of the overview.
type GroupRow struct {
	Group, Class string
	// Pending and InFlight sum the group's consumers over the tenants in
	// view; ByTenant breaks Pending down.
	Pending  uint64
	InFlight int
	Waiting  int
	ByTenant []TenantDepth
	DLQ      uint64
	// Workers serving the group (from heartbeats).
	Workers int
	// Done and Errors per minute over the last minute and the last five;
	// ErrorRate is Errors/Done over the last five minutes.
	Done1, Done5, ErrPerMin5, ErrorRate float64
	// Depth is the queue depth (pending + in flight) over the window.
	Depth []float64
}

// VendorBatchRow is one vendor batch in flight: a tenant's jobs of a group
// sent, or being sent, to a deployment's batch API.
type VendorBatchRow struct {
	Tenant, Group, Deployment string
	// VendorID is the vendor's id ("" while it is being sent); Status the
	// vendor's word at the last poll, or "submitting".
	VendorID, Status string
	Lines, Done      int
	Created          time.Time
}

// TenantDepth is one tenant's share of a group's queue.
type TenantDepth struct {
	Tenant   string
	Pending  uint64
	InFlight int
}

// DeploymentRow is one deployment of the overview.
type DeploymentRow struct {
	Group, Deployment string
	Breaker           string // closed, half-open, open (the worst a worker reports)
	InFlight          int
	// Limit is the fleet's learned concurrency when workers report one
	// (Learned), else the configured max_concurrency summed over the
	// workers (0: no limit).
	Limit                                int
	Learned                              bool
	RPMUsed, RPMLimit, TPMUsed, TPMLimit int
	// TTFT percentiles over the last five minutes, fleet-wide, from the
	// workers' histograms; TTFTCount is how many first tokens they are of.
	TTFTP50, TTFTP99 time.Duration
	TTFTCount        int
	Workers          int
}

type groupKey struct{ group, class string }

// sample is one look at the fleet.
type sample struct {
	at      time.Time
	done    map[groupKey]float64       // jobs finished since the previous sample
	errs    map[groupKey]float64       // of which with an error
	ttft    map[string]*histDelta      // "group\x00deployment" -> buckets added since the previous sample
	queues  map[groupKey][]TenantDepth // group and class -> per tenant
	batches []offload.Batch            // vendor batches in flight, every tenant's
	dlq     map[string]uint64
	workers []heartbeat.Worker
}

type histDelta struct {
	bounds []float64
	counts []float64 // cumulative per bound
	total  float64
}

// sampler looks at the fleet every interval and keeps the window's
// samples (a bounded ring: window/interval of them).
type sampler struct {
	js       jetstream.JetStream
	subj     bus.Subjects
	jobs     *ops.Jobs
	beats    *heartbeat.Mirror
	interval time.Duration
	window   time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	samples []*sample
	prev    map[string]map[string]float64 // worker id -> series key -> last cumulative value
	watch   map[chan struct{}]struct{}
	lastErr string
}

func newSampler(js jetstream.JetStream, subj bus.Subjects, interval, window time.Duration, now func() time.Time, log *slog.Logger) *sampler {
	return &sampler{js: js, subj: subj, jobs: ops.NewJobs(js, subj), beats: heartbeat.NewMirror(js, now), interval: interval, window: window, now: now, log: log,
		prev: map[string]map[string]float64{}, watch: map[chan struct{}]struct{}{}}
}

func (s *sampler) run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	defer s.beats.Stop() //nolint:errcheck // shutting down
	for {
		sctx, cancel := context.WithTimeout(ctx, max(s.interval, 5*time.Second))
		err := s.take(sctx)
		cancel()
		s.mu.Lock()
		if err != nil && ctx.Err() == nil {
			if s.lastErr == "" {
				s.log.Warn("console: sampling the fleet failed", slog.Any("error", err))
			}
			s.lastErr = err.Error()
		} else {
			s.lastErr = ""
		}
		for ch := range s.watch {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// subscribe returns a channel told after every sample, and its cancel.
func (s *sampler) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watch[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.watch, ch)
		s.mu.Unlock()
	}
}

func (s *sampler) take(ctx context.Context) error {
	sm := &sample{at: s.now(), done: map[groupKey]float64{}, errs: map[groupKey]float64{},
		ttft: map[string]*histDelta{}, queues: map[groupKey][]TenantDepth{}, dlq: map[string]uint64{}}
	if err := s.sampleQueues(ctx, sm); err != nil {
		return err
	}
	s.sampleDLQ(ctx, sm)
	workers, err := s.beats.Workers(ctx)
	if err != nil {
		return err
	}
	sm.workers = workers
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, w := range workers {
		seen[w.ID] = true
		s.prev[w.ID] = sm.addWorker(w, s.prev[w.ID])
	}
	for id := range s.prev {
		if !seen[id] {
			delete(s.prev, id)
		}
	}
	s.samples = append(s.samples, sm)
	if keep := int(s.window/s.interval) + 1; len(s.samples) > keep {
		s.samples = slices.Delete(s.samples, 0, len(s.samples)-keep)
	}
	return nil
}

// sampleQueues reads every tenant's queue depth per group and class.
func (s *sampler) sampleQueues(ctx context.Context, sm *sample) error {
	tenants, err := s.jobs.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		st, err := s.js.Stream(ctx, s.subj.ForTenant(t).RequestStream())
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			// A group has a consumer per priority class, each its own row
			// (the bare subject's is the default class's).
			g, p, ok := bus.ParseConsumerName(ci.Name)
			if !ok {
				continue
			}
			sm.addQueue(groupKey{g, string(p)}, TenantDepth{Tenant: t, Pending: ci.NumPending, InFlight: ci.NumAckPending})
		}
		if err := lister.Err(); err != nil {
			return err
		}
		bs, err := offload.Batches(ctx, s.js, s.subj.ForTenant(t))
		if err != nil {
			return err
		}
		sm.batches = append(sm.batches, bs...)
	}
	return nil
}

// addQueue adds one class consumer's counts to its tenant's depth in the
// group and class k.
func (sm *sample) addQueue(k groupKey, d TenantDepth) {
	for i := range sm.queues[k] {
		if q := &sm.queues[k][i]; q.Tenant == d.Tenant {
			q.Pending += d.Pending
			q.InFlight += d.InFlight
			return
		}
	}
	sm.queues[k] = append(sm.queues[k], d)
}

// sampleDLQ counts the dead letters per group (best effort).
func (s *sampler) sampleDLQ(ctx context.Context, sm *sample) {
	if d, err := s.js.Stream(ctx, bus.StreamDLQ); err == nil {
		if info, err := d.Info(ctx, jetstream.WithSubjectFilter(s.subj.DLQs())); err == nil {
			prefix := strings.TrimSuffix(s.subj.DLQs(), ">")
			for subj, n := range info.State.Subjects {
				sm.dlq[strings.TrimPrefix(subj, prefix)] += n
			}
		}
	}
}

// addWorker adds what a worker's counters grew by since prev (its last
// sample's values, nil for a worker seen for the first time) and returns
// its values now.
func (sm *sample) addWorker(w heartbeat.Worker, prev map[string]float64) map[string]float64 {
	cur := map[string]float64{}
	first := prev == nil
	delta := func(key string, v float64) float64 {
		cur[key] = v
		if first {
			return 0 // a worker seen for the first time: no interval yet
		}
		p, ok := prev[key]
		if !ok || v < p { // a new series, or the worker restarted
			return v
		}
		return v - p
	}
	if mf := w.Families[famJobs]; mf != nil {
		for _, m := range mf.Metric {
			l := labels(m)
			k := groupKey{l["group"], classOf(l)}
			d := delta(famJobs+seriesKey(l), m.GetCounter().GetValue())
			sm.done[k] += d
			if l["status"] != string(bus.StatusOK) {
				sm.errs[k] += d
			}
		}
	}
	if mf := w.Families[famTTFT]; mf != nil {
		for _, m := range mf.Metric {
			sm.addTTFT(m, delta)
		}
	}
	return cur
}

// addTTFT adds a time-to-first-token histogram's growth.
func (sm *sample) addTTFT(m *dto.Metric, delta func(string, float64) float64) {
	l := labels(m)
	h := m.GetHistogram()
	key := l["group"] + "\x00" + l["deployment"]
	hd := sm.ttft[key]
	if hd == nil {
		hd = &histDelta{}
		for _, b := range h.GetBucket() {
			hd.bounds = append(hd.bounds, b.GetUpperBound())
		}
		hd.counts = make([]float64, len(hd.bounds))
		sm.ttft[key] = hd
	}
	sk := famTTFT + seriesKey(l)
	hd.total += delta(sk+"#count", float64(h.GetSampleCount()))
	for i, b := range h.GetBucket() {
		if i < len(hd.counts) {
			hd.counts[i] += delta(sk+"#"+fmtFloat(b.GetUpperBound()), float64(b.GetCumulativeCount()))
		}
	}
}

// overview builds the overview from the samples; a tenant sees only its
// own queues (no fleet-wide rates, deployments or workers).
func (s *sampler) overview(id *Identity) *Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &Overview{Window: s.window, Err: s.lastErr}
	if len(s.samples) == 0 {
		return o
	}
	last := s.samples[len(s.samples)-1]
	o.At = last.at
	rows := groupRows{}
	if id.Admin {
		s.fleetRows(o, rows)
	}
	s.queueRows(id, rows)
	o.VendorBatches = vendorBatchRows(id, last.batches)
	for _, r := range rows {
		o.Groups = append(o.Groups, *r)
		o.HasClass = o.HasClass || r.Class != defaultClass
	}
	slices.SortFunc(o.Groups, func(a, b GroupRow) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return cmp.Compare(bus.Priority(a.Class).Rank(), bus.Priority(b.Class).Rank())
	})
	return o
}

// groupRows are the overview's rows by group and class.
type groupRows map[groupKey]*GroupRow

func (rows groupRows) get(k groupKey) *GroupRow {
	if r := rows[k]; r != nil {
		return r
	}
	r := &GroupRow{Group: k.group, Class: k.class}
	rows[k] = r
	return r
}

// queueRows adds the queues the identity may see, a row per group and
// class, with their depth over the window (s.mu held). A group's default
// class always has a row; another class has one while its queue had jobs
// in the window (its rates add the rows of classes that ran jobs). The
// group's dead letters are on its default row.
func (s *sampler) queueRows(id *Identity, rows groupRows) {
	last := s.samples[len(s.samples)-1]
	for k, qs := range last.queues {
		var depth []float64
		busy := false
		for _, sm := range s.samples {
			var d float64
			for _, q := range sm.queues[k] {
				if id.Admin || q.Tenant == id.Tenant {
					d += float64(q.Pending) + float64(q.InFlight)
				}
			}
			depth = append(depth, d)
			busy = busy || d > 0
		}
		var mine []TenantDepth
		for _, q := range qs {
			if id.Admin || q.Tenant == id.Tenant {
				mine = append(mine, q)
			}
		}
		if len(mine) == 0 || k.class != defaultClass && !busy && rows[k] == nil {
			continue
		}
		r := rows.get(k)
		for _, q := range mine {
			r.Pending += q.Pending
			r.InFlight += q.InFlight
		}
		r.ByTenant, r.Depth = mine, depth
		if id.Admin && k.class == defaultClass {
			r.DLQ = last.dlq[k.group]
		}
	}
}

// fleetRows adds what only an admin sees: workers, job rates over the last
// one and five minutes, deployments (s.mu held).
func (s *sampler) fleetRows(o *Overview, rows groupRows) {
	last := s.samples[len(s.samples)-1]
	o.Workers = last.workers
	for _, w := range last.workers {
		for _, g := range w.Groups {
			rows.get(groupKey{g, defaultClass}).Workers++
		}
	}
	since := func(d time.Duration) []*sample {
		var out []*sample
		for _, sm := range s.samples[1:] {
			if last.at.Sub(sm.at) < d {
				out = append(out, sm)
			}
		}
		return out
	}
	span := func(ss []*sample) float64 { // minutes the samples cover
		if len(ss) == 0 {
			return 0
		}
		return max(ss[len(ss)-1].at.Sub(s.samples[slices.Index(s.samples, ss[0])-1].at).Minutes(), 1e-9)
	}
	one, five := since(time.Minute), since(5*time.Minute)
	for _, sm := range five {
		for k := range sm.done {
			if k.class != defaultClass {
				o.HasClass = true
			}
			rows.get(k)
		}
	}
	for k, r := range rows {
		var d1, d5, e5 float64
		for _, sm := range one {
			d1 += sm.done[k]
		}
		for _, sm := range five {
			d5 += sm.done[k]
			e5 += sm.errs[k]
		}
		if m := span(one); m > 0 {
			r.Done1 = d1 / m
		}
		if m := span(five); m > 0 {
			r.Done5, r.ErrPerMin5 = d5/m, e5/m
		}
		if d5 > 0 {
			r.ErrorRate = e5 / d5
		}
	}
	o.Deps = deployments(last.workers, five)
	for _, d := range o.Deps {
		o.HasLearned = o.HasLearned || d.Learned
	}
}

// deployments sums the workers' deployment gauges and the window's TTFT.
// windowTTFT sums the time-to-first-token histograms of the window, by
// group and deployment.
func windowTTFT(window []*sample) map[string]*histDelta {
	sum := map[string]*histDelta{}
	for _, sm := range window {
		for k, h := range sm.ttft {
			acc := sum[k]
			if acc == nil {
				acc = &histDelta{bounds: h.bounds, counts: make([]float64, len(h.bounds))}
				sum[k] = acc
			}
			acc.total += h.total
			for i := range min(len(acc.counts), len(h.counts)) {
				acc.counts[i] += h.counts[i]
			}
		}
	}
	return sum
}

func deployments(workers []heartbeat.Worker, window []*sample) []DeploymentRow {
	rows := map[string]*DeploymentRow{}
	row := func(l map[string]string) *DeploymentRow {
		k := l["group"] + "\x00" + l["deployment"]
		if r := rows[k]; r != nil {
			return r
		}
		r := &DeploymentRow{Group: l["group"], Deployment: l["deployment"], Breaker: "closed"}
		rows[k] = r
		return r
	}
	for _, w := range workers {
		seen := map[*DeploymentRow]bool{}
		each := func(fam string, fn func(r *DeploymentRow, v float64)) {
			mf := w.Families[fam]
			if mf == nil {
				return
			}
			for _, m := range mf.Metric {
				r := row(labels(m))
				if !seen[r] {
					seen[r] = true
					r.Workers++
				}
				fn(r, m.GetGauge().GetValue())
			}
		}
		each(famBreaker, func(r *DeploymentRow, v float64) {
			switch {
			case v >= 1:
				r.Breaker = "open"
			case v > 0 && r.Breaker == "closed":
				r.Breaker = "half-open"
			}
		})
		each(famDepInFlight, func(r *DeploymentRow, v float64) { r.InFlight += int(v) })
		each(famLearnedLimit, func(r *DeploymentRow, v float64) {
			if !r.Learned {
				r.Limit, r.Learned = 0, true
			}
			r.Limit += int(v)
		})
		each(famMaxConc, func(r *DeploymentRow, v float64) {
			if !r.Learned {
				r.Limit += int(v)
			}
		})
		each(famRPMUsed, func(r *DeploymentRow, v float64) { r.RPMUsed += int(v) })
		each(famTPMUsed, func(r *DeploymentRow, v float64) { r.TPMUsed += int(v) })
		// rpm and tpm are fleet-wide limits: every worker reports the same.
		each(famRPMLimit, func(r *DeploymentRow, v float64) { r.RPMLimit = int(v) })
		each(famTPMLimit, func(r *DeploymentRow, v float64) { r.TPMLimit = int(v) })
	}
	for k, h := range windowTTFT(window) {
		g, d, _ := strings.Cut(k, "\x00")
		r := row(map[string]string{"group": g, "deployment": d})
		r.TTFTCount = int(h.total)
		if h.total > 0 {
			r.TTFTP50 = seconds(quantile(0.5, h))
			r.TTFTP99 = seconds(quantile(0.99, h))
		}
	}
	out := make([]DeploymentRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b DeploymentRow) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.Deployment, b.Deployment)
	})
	return out
}

// quantile estimates the q-quantile of a histogram by linear interpolation
// within the bucket it falls in (as Prometheus's histogram_quantile does);
// past the last finite bound it answers that bound.
func quantile(q float64, h *histDelta) float64 {
	rank := q * h.total
	lower, below := 0.0, 0.0
	for i, ub := range h.bounds {
		c := h.counts[i]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return lower
			}
			if c == below {
				return ub
			}
			return lower + (ub-lower)*(rank-below)/(c-below)
		}
		lower, below = ub, c
	}
	return lower
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func classOf(l map[string]string) string {
	if c := l["class"]; c != "" {
		return c
	}
	return defaultClass
}

func seriesKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("|" + k + "=" + l[k])
	}
	return b.String()
}

// vendorBatchRows are the batches of bs the identity may see.
func vendorBatchRows(id *Identity, bs []offload.Batch) []VendorBatchRow {
	var rows []VendorBatchRow
	for _, b := range bs {
		if !id.Admin && b.Tenant != id.Tenant {
			continue
		}
		rows = append(rows, VendorBatchRow{
			Tenant: b.Tenant, Group: b.Group, Deployment: b.Deployment, VendorID: b.VendorID,
			Status: cmp.Or(b.Status, b.State), Lines: len(b.Jobs), Done: b.Done, Created: b.Created,
		})
	}
	return rows
}
