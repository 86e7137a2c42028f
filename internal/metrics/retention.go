package metrics

import "github.com/prometheus/client_golang/prometheus"

// Retention counts what the retention jobs deleted, by job (files,
// messages, expired) and kind (files, file_accesses, outbox, sms_outbox,
// sessions, sms_codes, throttle_attempts). Register it in the worker's
// registry (the default one) and pass Deleted as activities.Retention's
// hook.
type Retention struct {
	deleted *prometheus.CounterVec
}

// NewRetention makes the retention counter.
func NewRetention() *Retention {
	return &Retention{deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zikao_retention_deleted_total",
		Help: "Personal data deleted by the retention jobs once its period was over, by job and kind (files: their bytes; the others: rows).",
	}, []string{"job", "what"})}
}

// Deleted counts n deletions of a kind by a job (activities.Retention's
// Deleted hook). A batch that deleted nothing still makes its series
// appear, at 0.
func (m *Retention) Deleted(job, what string, n int) {
	m.deleted.WithLabelValues(job, what).Add(float64(n))
}

// Describe implements prometheus.Collector.
func (m *Retention) Describe(ch chan<- *prometheus.Desc) { m.deleted.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *Retention) Collect(ch chan<- prometheus.Metric) { m.deleted.Collect(ch) }
