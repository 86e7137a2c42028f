package metrics

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"zikao/internal/mail"
)

// Outbox is the e-mail outbox's metrics: its backlog and the messages the
// SMTP server refused for good, read at each scrape, and the sender's
// deliveries, failures and refusals, counted as they happen. Nothing of a
// message (address, text, registration) is in a label.
type Outbox struct {
	db         *sqlx.DB
	Timeout    time.Duration
	deliveries *prometheus.CounterVec
}

// NewOutbox makes the outbox metrics over the zikao database.
func NewOutbox(db *sqlx.DB) *Outbox {
	return &Outbox{db: db, Timeout: 5 * time.Second, deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zikao_mail_delivery_attempts_total",
		Help: "Attempts to deliver an outbox message over SMTP, by result (accepted, failed: tried again, refused: refused for good, never tried again).",
	}, []string{"result"})}
}

// Attempted counts one delivery attempt (mail.Sender's Attempted hook) by
// its result: mail.Accepted, mail.Failed or mail.Refused.
func (o *Outbox) Attempted(result string) {
	o.deliveries.WithLabelValues(result).Inc()
}

var (
	outboxUp      = prometheus.NewDesc("zikao_outbox_up", "1 when the outbox could be read at this scrape, else 0.", nil, nil)
	outboxPending = prometheus.NewDesc("zikao_outbox_pending", "E-mails neither accepted nor refused for good by the SMTP server yet.", nil, nil)
	outboxFailing = prometheus.NewDesc("zikao_outbox_failing", "Pending e-mails whose last delivery attempt failed.", nil, nil)
	outboxOldest  = prometheus.NewDesc("zikao_outbox_oldest_pending_seconds", "How long the oldest pending e-mail has waited.", nil, nil)
	outboxRefused = prometheus.NewDesc("zikao_outbox_refused", "E-mails the SMTP server refused for good (a 5xx reply to the address or the message): never tried again.", nil, nil)
)

// Describe implements prometheus.Collector.
func (o *Outbox) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{outboxUp, outboxPending, outboxFailing, outboxOldest, outboxRefused} {
		ch <- d
	}
	o.deliveries.Describe(ch)
}

// Collect implements prometheus.Collector.
func (o *Outbox) Collect(ch chan<- prometheus.Metric) {
	o.deliveries.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	b, err := mail.ReadBacklog(ctx, o.db)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(outboxUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(outboxPending, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(outboxFailing, prometheus.GaugeValue, float64(b.Failing))
	ch <- prometheus.MustNewConstMetric(outboxOldest, prometheus.GaugeValue, b.OldestWaiting.Seconds())
	ch <- prometheus.MustNewConstMetric(outboxRefused, prometheus.GaugeValue, float64(b.Refused))
}
