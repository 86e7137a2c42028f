package metrics

import (
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
)

// NewTemporalHandler makes a Temporal SDK metrics handler (for
// client.Options.MetricsHandler) that reports into reg, as the SDK's
// contrib/tally integration does: a tally root scope flushed every second
// to tally's Prometheus reporter, timers as histograms, names in
// Prometheus's style (counters end in _total, timers in _seconds, such as
// temporal_request_total and
// temporal_workflow_task_schedule_to_start_latency_seconds). Close the
// closer to stop the flushing.
func NewTemporalHandler(reg prometheus.Registerer) (client.MetricsHandler, io.Closer) {
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError: func(err error) {
			slog.Warn("metrics: a Temporal SDK series is left out", "error", err)
		},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &tallyprom.DefaultSanitizerOpts,
	}, time.Second)
	return temporalHandler{scope}, closer
}

// temporalHandler adapts a tally scope to client.MetricsHandler.
type temporalHandler struct{ scope tally.Scope }

func (h temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	return temporalHandler{h.scope.Tagged(tags)}
}

func (h temporalHandler) Counter(name string) client.MetricsCounter {
	return h.scope.Counter(withSuffix(name, "_total"))
}

func (h temporalHandler) Gauge(name string) client.MetricsGauge { return h.scope.Gauge(name) }

func (h temporalHandler) Timer(name string) client.MetricsTimer {
	return h.scope.Timer(withSuffix(name, "_seconds"))
}

func withSuffix(name, suffix string) string {
	if strings.HasSuffix(name, suffix) {
		return name
	}
	return name + suffix
}

// check at compile time that tally's instruments are the SDK's.
var (
	_ client.MetricsCounter = tally.Counter(nil)
	_ client.MetricsGauge   = tally.Gauge(nil)
	_ client.MetricsTimer   = tally.Timer(nil)
)
