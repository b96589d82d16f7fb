package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/switchyard/switchyard/internal/gateway")

// metrics are the gateway's Prometheus collectors.
type metrics struct {
	gatherer  prometheus.Gatherer
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	firstByte *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	abandoned prometheus.Counter
	webhooks  *prometheus.CounterVec
	batches   *prometheus.CounterVec
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_gateway_requests_total", Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchyard_gateway_request_duration_seconds", Help: "Time from a request's arrival to the end of its answer (a stream's last event), by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		firstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchyard_gateway_time_to_first_event_seconds", Help: "Time from a streamed request's arrival to its first event sent, by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_gateway_requests_in_flight", Help: "Requests being answered, by route.",
		}, []string{"route"}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_gateway_abandoned_jobs_total", Help: "Jobs cancelled because their client disconnected without an Idempotency-Key.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_gateway_webhook_deliveries_total", Help: "Webhook calls, by outcome (delivered, retry, failed).",
		}, []string{"outcome"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_gateway_batches_total", Help: "Batches that ended, by status.",
		}, []string{"status"}),
	}
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, m.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.firstByte, m.inFlight, m.abandoned, m.webhooks, m.batches} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) handler() http.Handler {
	if m.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// reqInfo is what instrument records about a request for the handlers.
type reqInfo struct {
	route string
	start time.Time
	ttft  bool
}

type reqInfoKey struct{}

// ttft records the first event of a stream.
func (m *metrics) ttft(ctx context.Context) {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok && !ri.ttft {
		ri.ttft = true
		m.firstByte.WithLabelValues(ri.route).Observe(time.Since(ri.start).Seconds())
	}
}

// statusWriter records the status of a response. It unwraps to the
// underlying writer so that http.ResponseController and the SSE library
// reach its Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets the SSE library flush through the wrapper.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush() // the next write reports it
}

// instrument counts and times a route.
func (g *Gateway) instrument(route string, h http.Handler) http.Handler {
	inFlight := g.met.inFlight.WithLabelValues(route)
	dur := g.met.duration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &reqInfo{route: route, start: time.Now()}
		inFlight.Inc()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			inFlight.Dec()
			dur.Observe(time.Since(ri.start).Seconds())
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			g.met.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		}()
		// A traceparent from the client continues into the job (bus.Client
		// injects the context's span into the request's headers).
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, "gateway "+route, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		h.ServeHTTP(sw, r.WithContext(context.WithValue(ctx, reqInfoKey{}, ri)))
	})
}
