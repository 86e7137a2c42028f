package main

import (
	"context"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"zikao/internal/config"
	"zikao/internal/mail"
	"zikao/internal/metrics"
)

// startMailSender starts the worker's e-mail sender, which delivers the
// outbox over SMTP until ctx ends, and returns a function that waits until
// it has stopped (it finishes and records the message it holds). With
// ZIKAO_MAIL_ENABLED=false it starts nothing: the outbox is still written
// and its messages wait there until a worker with e-mail on sends them.
func startMailSender(ctx context.Context, cfg config.Config, database *sqlx.DB) (wait func()) {
	outbox := metrics.NewOutbox(database) // served by the worker's /metrics (the default registry)
	if err := prometheus.Register(outbox); err != nil {
		slog.Warn("outbox metrics not registered", "error", err)
	}
	if !cfg.MailEnabled {
		slog.Info("e-mail sending is off (ZIKAO_MAIL_ENABLED=false): messages stay in the outbox")
		return func() {}
	}
	s := &mail.Sender{DB: database, From: cfg.MailFrom, Attempted: outbox.Attempted,
		SMTP: mail.SMTP{Address: cfg.SMTPAddress, User: cfg.SMTPUser, Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() { <-done }
}
