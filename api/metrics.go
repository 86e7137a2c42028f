package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"zikao/internal/metrics"
)

// unmatchedRoute labels requests that match no route: their paths are
// never labels (they may hold ID numbers).
const unmatchedRoute = "unmatched"

// httpMetrics are one engine's metrics, in a registry of its own (not
// Prometheus's default one), so that several servers run in one process.
type httpMetrics struct {
	registry  *prometheus.Registry
	handler   http.Handler
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled *prometheus.CounterVec
}

// metricsKey is where the middleware leaves the engine's metrics for
// serveMetrics.
const metricsKey = "zikao.metrics"

// measure makes a new registry with the HTTP metrics, the backlog gauges
// and the Go runtime's, and returns the middleware that counts every
// request into it; GET /metrics (serveMetrics) serves it.
func (s *Server) measure() gin.HandlerFunc {
	m := newHTTPMetrics(s)
	return func(c *gin.Context) {
		c.Set(metricsKey, m)
		start := time.Now()
		c.Next()
		m.observe(c, time.Since(start))
	}
}

func newHTTPMetrics(s *Server) *httpMetrics {
	m := &httpMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zikao_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zikao_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route template.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zikao_http_throttled_total",
			Help: "Attempts refused with 429 too_many_attempts (failed logins, password resets, enrolment look-ups, submissions), by route template.",
		}, []string{"route"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.throttled, metrics.NewBacklog(s.DB, s.Registering.OverdueAfter), s.SMSMetrics.Counters(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{}, ErrorHandling: promhttp.ContinueOnError})
	return m
}

// observe counts one answered request by its route template.
func (m *httpMetrics) observe(c *gin.Context, took time.Duration) {
	route := c.FullPath()
	if route == "" {
		route = unmatchedRoute
	}
	status, method := c.Writer.Status(), knownMethod(c.Request.Method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(took.Seconds())
	if status == http.StatusTooManyRequests {
		m.throttled.WithLabelValues(route).Inc()
	}
}

// knownMethod is the request's method when it is a standard one, else
// "other": a client chooses the method, and labels must stay few.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// serveMetrics answers GET /metrics in Prometheus's text format.
func serveMetrics(c *gin.Context) {
	v, _ := c.Get(metricsKey)
	m, ok := v.(*httpMetrics)
	if !ok {
		fail(c, errInternal)
		return
	}
	m.handler.ServeHTTP(c.Writer, c.Request)
}

// slogPrinter logs promhttp's errors.
type slogPrinter struct{}

func (slogPrinter) Println(v ...any) { slog.Warn("metrics: scrape", "error", v) }
