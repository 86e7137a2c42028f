package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"zikao/internal/config"
	"zikao/internal/metrics"
)

// sdkMetrics is this process's Temporal SDK metrics: the handler every
// Temporal client of the servers reports into (connectLazily), and the
// registry it fills, served by the worker's /metrics. One per process,
// made at the first use.
var sdkMetrics = sync.OnceValue(func() temporalMetrics {
	reg := prometheus.NewRegistry()
	handler, _ := metrics.NewTemporalHandler(reg) // flushed for the life of the process
	return temporalMetrics{registry: reg, handler: handler}
})

type temporalMetrics struct {
	registry *prometheus.Registry
	handler  client.MetricsHandler
}

// serveWorkerMetrics serves GET /metrics on cfg.WorkerMetricsAddress until
// ctx ends: the Temporal SDK's metrics, the backlog gauges, and Prometheus's
// default registry, where the worker's other parts (the e-mail sender)
// register theirs, with the Go runtime's and the process's. A failure to
// listen is logged; the worker goes on without metrics.
func serveWorkerMetrics(ctx context.Context, cfg config.Config, database *sqlx.DB) {
	own := prometheus.NewRegistry()
	own.MustRegister(metrics.NewBacklog(database, cfg.ReviewOverdueAfter))
	gatherers := prometheus.Gatherers{prometheus.DefaultGatherer, sdkMetrics().registry, own}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{}, ErrorHandling: promhttp.ContinueOnError,
	}))
	if err := serve(ctx, cfg.WorkerMetricsAddress, mux, "worker metrics"); err != nil {
		slog.Error("worker metrics not served", "address", cfg.WorkerMetricsAddress, "error", err)
	}
}

// slogPrinter logs promhttp's errors.
type slogPrinter struct{}

func (slogPrinter) Println(v ...any) { slog.Warn("metrics: scrape", "error", v) }
