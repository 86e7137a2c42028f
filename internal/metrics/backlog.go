package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"zikao/internal/status"
)

// Backlog is a prometheus.Collector that counts, at each scrape, the open
// registrations and the waiting reviews of the read model. A scrape whose
// query fails (or takes longer than Timeout) reports zikao_backlog_up 0 and
// nothing else of the backlog, rather than failing the whole scrape.
type Backlog struct {
	db *sqlx.DB
	// OverdueAfter is how long a review waits before it is overdue.
	OverdueAfter time.Duration
	// Timeout bounds the queries of one scrape.
	Timeout time.Duration
}

// NewBacklog makes a Backlog over the read model.
func NewBacklog(db *sqlx.DB, overdueAfter time.Duration) *Backlog {
	return &Backlog{db: db, OverdueAfter: overdueAfter, Timeout: 5 * time.Second}
}

var (
	backlogUp = prometheus.NewDesc("zikao_backlog_up",
		"1 when the backlog gauges could be read from the read model at this scrape, else 0.", nil, nil)
	openRegistrations = prometheus.NewDesc("zikao_open_registrations",
		"Registrations not yet completed, expired or withdrawn, by status and exam area.", []string{"status", "exam_area"}, nil)
	waitingReviews = prometheus.NewDesc("zikao_reviews_waiting",
		"Registrations waiting for a review, by stage (county, provincial, identity) and exam area.", []string{"stage", "exam_area"}, nil)
	overdueReviews = prometheus.NewDesc("zikao_reviews_overdue",
		"Reviews waiting longer than ZIKAO_REVIEW_OVERDUE_AFTER, by stage and exam area.", []string{"stage", "exam_area"}, nil)
	oldestReview = prometheus.NewDesc("zikao_reviews_oldest_waiting_seconds",
		"How long the oldest waiting review of the stage and exam area has waited.", []string{"stage", "exam_area"}, nil)
	overdueThreshold = prometheus.NewDesc("zikao_reviews_overdue_after_seconds",
		"The configured time after which a waiting review is overdue.", nil, nil)
)

// Describe implements prometheus.Collector.
func (b *Backlog) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{backlogUp, openRegistrations, waitingReviews, overdueReviews, oldestReview, overdueThreshold} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (b *Backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), b.Timeout)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(overdueThreshold, prometheus.GaugeValue, b.OverdueAfter.Seconds())
	open, err := b.openRegistrations(ctx)
	var reviews []reviewGroup
	if err == nil {
		reviews, err = b.waitingReviews(ctx)
	}
	if err != nil {
		slog.Warn("metrics: backlog not read", "error", err)
		ch <- prometheus.MustNewConstMetric(backlogUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogUp, prometheus.GaugeValue, 1)
	for _, g := range open {
		ch <- prometheus.MustNewConstMetric(openRegistrations, prometheus.GaugeValue, float64(g.Count), g.Status, g.ExamArea)
	}
	for _, g := range reviews {
		ch <- prometheus.MustNewConstMetric(waitingReviews, prometheus.GaugeValue, float64(g.Waiting), g.Stage, g.ExamArea)
		ch <- prometheus.MustNewConstMetric(overdueReviews, prometheus.GaugeValue, float64(g.Overdue), g.Stage, g.ExamArea)
		ch <- prometheus.MustNewConstMetric(oldestReview, prometheus.GaugeValue, g.OldestSeconds, g.Stage, g.ExamArea)
	}
}

type openGroup struct {
	Status   string `db:"status"`
	ExamArea string `db:"exam_area_code"`
	Count    int64  `db:"count"`
}

func (b *Backlog) openRegistrations(ctx context.Context) ([]openGroup, error) {
	var rows []openGroup
	err := b.db.SelectContext(ctx, &rows, `
		SELECT status, exam_area_code, count(*) AS count FROM registrations
		WHERE `+status.OpenSQL+`
		GROUP BY status, exam_area_code`)
	if err != nil {
		return nil, fmt.Errorf("count open registrations: %w", err)
	}
	return rows, nil
}

type reviewGroup struct {
	Stage         string  `db:"stage"`
	ExamArea      string  `db:"exam_area_code"`
	Waiting       int64   `db:"waiting"`
	Overdue       int64   `db:"overdue"`
	OldestSeconds float64 `db:"oldest_seconds"`
}

// waitingReviews groups the registrations in county, provincial or identity
// (manual check) review;
// a review waits since the step that moved the registration into its stage
// (stage_since, as the reviewers' inbox shows it).
func (b *Backlog) waitingReviews(ctx context.Context) ([]reviewGroup, error) {
	var rows []reviewGroup
	err := b.db.SelectContext(ctx, &rows, `
		SELECT replace(status, '_review', '') AS stage, exam_area_code, count(*) AS waiting,
			count(*) FILTER (WHERE stage_since < now() - make_interval(secs => $1)) AS overdue,
			GREATEST(EXTRACT(EPOCH FROM now() - min(stage_since)), 0)::float8 AS oldest_seconds
		FROM registrations WHERE status IN ('county_review', 'provincial_review', 'identity_review')
		GROUP BY status, exam_area_code`, b.OverdueAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("count waiting reviews: %w", err)
	}
	return rows, nil
}
