// Package metrics exposes a worker's Prometheus metrics. Names follow the
// OpenTelemetry GenAI semantic conventions where they apply
// (gen_ai_client_token_usage, gen_ai_client_operation_duration_seconds,
// gen_ai_server_time_to_first_token_seconds); the rest are switchyard_*.
//
// Per-job counters are fed by the worker through its Observer interface;
// breaker state, in-flight calls and queue depth are read on each scrape, so
// they cost nothing between scrapes.
package metrics

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard/switchyard/internal/worker"
	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// StatusSource reports deployment state; *policy.Router is one.
type StatusSource interface {
	Status() []policy.DeploymentStatus
}

// Metrics holds the collectors of one worker process.
type Metrics struct {
	reg *prometheus.Registry

	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	queueWait   *prometheus.HistogramVec
	inFlight    *prometheus.GaugeVec
	handedBack  *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	retries     *prometheus.CounterVec
	hedges      *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	cost        *prometheus.CounterVec
	tokens      *prometheus.HistogramVec
	ttft        *prometheus.HistogramVec
	opDuration  *prometheus.HistogramVec
	cacheHits   *prometheus.CounterVec
}

var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// New registers the collectors. status and js (with the served groups) feed
// the scrape-time gauges; either may be nil.
func New(status StatusSource, js jetstream.JetStream, groups []string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_jobs_total", Help: "Jobs finished, by group, priority class, status and error code.",
		}, []string{"group", "class", "status", "code"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchyard_job_duration_seconds", Help: "Time from pick-up to result, by group and priority class.", Buckets: latencyBuckets,
		}, []string{"group", "class"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchyard_queue_wait_seconds", Help: "Time from publication to pick-up, by group and priority class.", Buckets: latencyBuckets,
		}, []string{"group", "class"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_jobs_in_flight", Help: "Jobs running on this worker.",
		}, []string{"group"}),
		handedBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_jobs_handed_back_total", Help: "Started jobs handed back for redelivery by this worker's shutdown.",
		}, []string{"group"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_attempts_total", Help: "Calls to deployments, by error code (\"\" for success).",
		}, []string{"group", "deployment", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_retries_total", Help: "Retries on the same group.",
		}, []string{"group", "deployment"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hedges_total",
			Help: "Hedges (calls started beside a call whose first token was late), by the hedge's deployment and outcome: " +
				"won (its first token came first), cancelled (another attempt's did), failed (it failed before a first token).",
		}, []string{"group", "deployment", "outcome"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_fallbacks_total", Help: "Fallbacks to another deployment or group.",
		}, []string{"group"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_restarts_total", Help: "Restart events: a stream started over (provider failure mid-stream, redelivery, validation).",
		}, []string{"group", "reason"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_cost_usd_total", Help: "Estimated cost from the model catalogue, in USD, of every job's provider calls, ok or not.",
		}, []string{"group", "deployment"}),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_token_usage", Help: "Tokens per job (GenAI semantic conventions).",
			Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576},
		}, []string{"gen_ai_token_type", "gen_ai_request_model", "gen_ai_provider_name"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_server_time_to_first_token_seconds", Help: "Time from pick-up to the first chunk.", Buckets: latencyBuckets,
		}, []string{"gen_ai_request_model", "group", "deployment"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_operation_duration_seconds", Help: "Duration of one call to a deployment.", Buckets: latencyBuckets,
		}, []string{"gen_ai_request_model", "gen_ai_provider_name", "error_type"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_cache_hits_total", Help: "Jobs answered from the group's response cache, with no provider call.",
		}, []string{"group"}),
	}
	reg.MustRegister(m.cacheHits, m.jobs, m.jobDuration, m.queueWait, m.inFlight, m.handedBack, m.attempts, m.retries, m.hedges, m.fallbacks,
		m.restarts, m.cost, m.tokens, m.ttft, m.opDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if status != nil {
		reg.MustRegister(&breakerCollector{src: status})
	}
	if js != nil {
		reg.MustRegister(&queueCollector{js: js, groups: groups})
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var _ worker.Observer = (*Metrics)(nil)

// JobStarted implements worker.Observer.
func (m *Metrics) JobStarted(group string) { m.inFlight.WithLabelValues(group).Inc() }

// JobHandedBack implements worker.Observer: the job is no longer in
// flight here, and is not a finished job (its redelivery will be).
func (m *Metrics) JobHandedBack(group string) {
	m.inFlight.WithLabelValues(group).Dec()
	m.handedBack.WithLabelValues(group).Inc()
}

// JobDone implements worker.Observer.
func (m *Metrics) JobDone(r worker.JobReport) {
	g := r.Group
	if r.Started {
		m.inFlight.WithLabelValues(g).Dec()
	}
	res := r.Result
	code := ""
	if res.Error != nil {
		code = string(res.Error.Code)
	}
	class := cmp.Or(string(r.Class), string(bus.PriorityDefault))
	m.jobs.WithLabelValues(g, class, string(res.Status), code).Inc()
	m.jobDuration.WithLabelValues(g, class).Observe(float64(res.Timings.TotalMS) / 1000)
	m.queueWait.WithLabelValues(g, class).Observe(r.QueueWait.Seconds())
	for reason, n := range r.Restarts {
		m.restarts.WithLabelValues(g, reason).Add(float64(n))
	}
	for i, a := range res.Attempts {
		m.attempts.WithLabelValues(g, a.Deployment, a.ErrorCode).Inc()
		if a.Hedge {
			m.hedges.WithLabelValues(g, a.Deployment, hedgeOutcome(a)).Inc()
		}
		errType := a.ErrorCode
		if errType == "" {
			errType = "none"
		}
		model, prov := attemptModel(r.Outcome, i)
		m.opDuration.WithLabelValues(model, prov, errType).Observe(float64(a.DurationMS) / 1000)
	}
	if o := r.Outcome; o != nil {
		if o.Retries > 0 {
			m.retries.WithLabelValues(g, o.Deployment).Add(float64(o.Retries))
		}
		if o.Fallbacks > 0 {
			m.fallbacks.WithLabelValues(g).Add(float64(o.Fallbacks))
		}
	}
	// What a job spent, it spent whether or not it ended ok: an answer
	// re-asked until validation gave up, a stream cut after its tokens, a
	// hedge that lost (the result's cost and usage add them up, see
	// policy.Outcome). A cached answer cost nothing (its cost is 0).
	var prov string
	if r.Outcome != nil {
		prov = r.Outcome.Provider
	}
	if res.CostUSD > 0 {
		m.cost.WithLabelValues(g, res.Deployment).Add(res.CostUSD)
	}
	if u := res.Usage; u != nil {
		m.tokens.WithLabelValues("input", res.Model, prov).Observe(float64(u.PromptTokens))
		m.tokens.WithLabelValues("output", res.Model, prov).Observe(float64(u.CompletionTokens))
	}
	if res.Status != bus.StatusOK || res.Deployment == "" {
		return
	}
	if res.Cached {
		m.cacheHits.WithLabelValues(g).Inc()
	}
	if res.Timings.TTFTMS > 0 {
		m.ttft.WithLabelValues(res.Model, g, res.Deployment).Observe(float64(res.Timings.TTFTMS) / 1000)
	}
}

// hedgeOutcome is the outcome label of a hedge's attempt: its race result
// (won, cancelled), else failed: it ended with its own error.
func hedgeOutcome(a bus.Attempt) string {
	return cmp.Or(a.Race, "failed")
}

// attemptModel is the model and provider of the i-th attempt, which the
// router's outcome records per attempt (the result's attempts, one for one,
// carry only the deployment): a job that fell back is not labelled with the
// model that answered for every attempt.
func attemptModel(o *policy.Outcome, i int) (model, provider string) {
	if o == nil || i >= len(o.Attempts) {
		return "", ""
	}
	return o.Attempts[i].Model, o.Attempts[i].Provider
}

type breakerCollector struct{ src StatusSource }

var (
	breakerDesc = prometheus.NewDesc("switchyard_breaker_open", "1 when the deployment's circuit breaker is open (or half-open: 0.5).", []string{"group", "deployment"}, nil)
	depInFlDesc = prometheus.NewDesc("switchyard_deployment_calls_in_flight", "Calls in flight to a deployment from this worker.", []string{"group", "deployment"}, nil)
	limitDesc   = prometheus.NewDesc("switchyard_deployment_concurrency_limit", "The deployment's learned concurrency limit on this worker (adaptive_concurrency; absent: none).", []string{"group", "deployment"}, nil)
	maxConcDesc = prometheus.NewDesc("switchyard_deployment_max_concurrency", "The deployment's configured max_concurrency (absent: no limit).", []string{"group", "deployment"}, nil)
	rpmUsedDesc = prometheus.NewDesc("switchyard_deployment_rpm_used", "Requests this worker sent to a deployment in the current minute.", []string{"group", "deployment"}, nil)
	tpmUsedDesc = prometheus.NewDesc("switchyard_deployment_tpm_used", "Tokens (as estimated at admission) this worker sent to a deployment in the current minute.", []string{"group", "deployment"}, nil)
	rpmDesc     = prometheus.NewDesc("switchyard_deployment_rpm_limit", "The deployment's configured rpm (absent: no limit).", []string{"group", "deployment"}, nil)
	tpmDesc     = prometheus.NewDesc("switchyard_deployment_tpm_limit", "The deployment's configured tpm (absent: no limit).", []string{"group", "deployment"}, nil)
	pendingDesc = prometheus.NewDesc("switchyard_queue_pending", "Jobs waiting in a group's queue (consumer pending).", []string{"group"}, nil)
	ackPendDesc = prometheus.NewDesc("switchyard_queue_ack_pending", "Jobs delivered and not yet acked, fleet-wide.", []string{"group"}, nil)
	redelivDesc = prometheus.NewDesc("switchyard_queue_redelivered", "Jobs redelivered and not yet acked, fleet-wide.", []string{"group"}, nil)
)

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{breakerDesc, depInFlDesc, limitDesc, maxConcDesc, rpmUsedDesc, tpmUsedDesc, rpmDesc, tpmDesc} {
		ch <- d
	}
}

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.Status() {
		v := 0.0
		switch s.Breaker {
		case policy.BreakerOpen:
			v = 1
		case policy.BreakerHalfOpen:
			v = 0.5
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, s.Group, s.Deployment)
		ch <- prometheus.MustNewConstMetric(depInFlDesc, prometheus.GaugeValue, float64(s.InFlight), s.Group, s.Deployment)
		ch <- prometheus.MustNewConstMetric(rpmUsedDesc, prometheus.GaugeValue, float64(s.Requests), s.Group, s.Deployment)
		ch <- prometheus.MustNewConstMetric(tpmUsedDesc, prometheus.GaugeValue, float64(s.Tokens), s.Group, s.Deployment)
		for _, l := range []struct {
			d *prometheus.Desc
			v int
		}{{limitDesc, s.Limit}, {maxConcDesc, s.MaxConcurrency}, {rpmDesc, s.RPM}, {tpmDesc, s.TPM}} {
			if l.v > 0 {
				ch <- prometheus.MustNewConstMetric(l.d, prometheus.GaugeValue, float64(l.v), s.Group, s.Deployment)
			}
		}
	}
}

type queueCollector struct {
	js     jetstream.JetStream
	groups []string
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- ackPendDesc
	ch <- redelivDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, g := range c.groups {
		// A group's queue is the sum of its priority classes' consumers (a
		// batch backlog waits on worker-<group>@batch): what KEDA scales on.
		var pending, ackPending, redelivered float64
		found := false
		for _, p := range bus.Priorities {
			cons, err := c.js.Consumer(ctx, bus.StreamRequests, bus.ConsumerNameFor(g, p))
			if err != nil {
				continue
			}
			info, err := cons.Info(ctx)
			if err != nil {
				continue
			}
			found = true
			pending += float64(info.NumPending)
			ackPending += float64(info.NumAckPending)
			redelivered += float64(info.NumRedelivered)
		}
		if !found {
			continue
		}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, pending, g)
		ch <- prometheus.MustNewConstMetric(ackPendDesc, prometheus.GaugeValue, ackPending, g)
		ch <- prometheus.MustNewConstMetric(redelivDesc, prometheus.GaugeValue, redelivered, g)
	}
}
