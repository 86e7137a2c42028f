package main

import (
	"context"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"zikao/internal/config"
	"zikao/internal/mail"
)

// startMailSender starts the worker's e-mail sender, which delivers the
// outbox over SMTP until ctx ends, and returns a function that waits until
// it has stopped (it finishes and records the message it holds). With
// ZIKAO_MAIL_ENABLED=false it starts nothing: the outbox is still written
// and its messages wait there until a worker with e-mail on sends them.
func startMailSender(ctx context.Context, cfg config.Config, database *sqlx.DB) (wait func()) {
	if !cfg.MailEnabled {
		slog.Info("e-mail sending is off (ZIKAO_MAIL_ENABLED=false): messages stay in the outbox")
		return func() {}
	}
	s := &mail.Sender{DB: database, From: cfg.MailFrom,
		SMTP: mail.SMTP{Address: cfg.SMTPAddress, User: cfg.SMTPUser, Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() { <-done }
}
