package metrics

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"zikao/internal/sms"
)

// SMS is the SMS channel's metrics: messages by purpose and result (sent,
// failed: an attempt that will be retried, given_up: refused for good or a
// code that expired first, throttled: a request for a code or a ticket
// look-up refused by a limit), and the outbox's backlog, read at each
// scrape. No phone number, text or registration is in a label.
type SMS struct {
	db      *sqlx.DB
	Timeout time.Duration
	counts  *prometheus.CounterVec
}

// NewSMS makes the SMS metrics over the zikao database.
func NewSMS(db *sqlx.DB) *SMS {
	return &SMS{db: db, Timeout: 5 * time.Second, counts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zikao_sms_total",
		Help: "SMS by purpose and result: sent (accepted by the provider), failed (an attempt that will be retried), given_up, throttled (a request refused by a limit).",
	}, []string{"purpose", "result"})}
}

// Attempted counts a delivery attempt (sms.Sender's Attempted hook).
func (m *SMS) Attempted(p sms.Purpose, result string) {
	m.counts.WithLabelValues(string(p), result).Inc()
}

// Counters are the counts alone, for a process that does not report the
// outbox's backlog (the API: the workers do).
func (m *SMS) Counters() prometheus.Collector { return m.counts }

// Throttled counts a request refused by a limit.
func (m *SMS) Throttled(p sms.Purpose) { m.counts.WithLabelValues(string(p), "throttled").Inc() }

var (
	smsUp      = prometheus.NewDesc("zikao_sms_outbox_up", "1 when the SMS outbox could be read at this scrape, else 0.", nil, nil)
	smsPending = prometheus.NewDesc("zikao_sms_outbox_pending", "SMS not yet accepted by the provider nor given up.", nil, nil)
	smsFailing = prometheus.NewDesc("zikao_sms_outbox_failing", "Pending SMS whose last attempt failed.", nil, nil)
	smsGivenUp = prometheus.NewDesc("zikao_sms_outbox_given_up", "SMS the provider refused for good, or codes that expired before they could go.", nil, nil)
	smsOldest  = prometheus.NewDesc("zikao_sms_outbox_oldest_pending_seconds", "How long the oldest pending SMS has waited.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *SMS) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{smsUp, smsPending, smsFailing, smsGivenUp, smsOldest} {
		ch <- d
	}
	m.counts.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *SMS) Collect(ch chan<- prometheus.Metric) {
	m.counts.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), m.Timeout)
	defer cancel()
	b, err := sms.ReadBacklog(ctx, m.db)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(smsUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(smsUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(smsPending, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(smsFailing, prometheus.GaugeValue, float64(b.Failing))
	ch <- prometheus.MustNewConstMetric(smsGivenUp, prometheus.GaugeValue, float64(b.GivenUp))
	ch <- prometheus.MustNewConstMetric(smsOldest, prometheus.GaugeValue, b.OldestWaiting.Seconds())
}
