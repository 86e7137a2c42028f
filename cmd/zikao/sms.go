package main

import (
	"context"
	"flag"
	"log/slog"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"zikao/internal/accounts"
	"zikao/internal/config"
	"zikao/internal/metrics"
	"zikao/internal/sms"
)

// smsSender is the sender of the SMS outbox with these settings (nil when
// ZIKAO_SMS_ENABLED=false: messages then wait in the outbox).
func smsSender(cfg config.Config, database *sqlx.DB, m *metrics.SMS) *sms.Sender {
	if !cfg.SMSEnabled {
		return nil
	}
	return &sms.Sender{DB: database, Attempted: m.Attempted, Timeout: cfg.SMSTimeout,
		Provider: sms.NewGateway(cfg.SMSURL, cfg.SMSAccessKeyID, cfg.SMSAccessSecret, cfg.SMSSignName, cfg.SMSTimeout)}
}

// smsLimits are the SMS limits with these settings.
func smsLimits(cfg config.Config) accounts.SMSLimits {
	l := accounts.DefaultSMSLimits()
	l.Address.Max, l.PhoneDay.Max, l.IDNumberDay.Max = cfg.SMSPerAddressHour, cfg.SMSPerPhoneDay, cfg.TicketLookupsPerIDDay
	return l
}

// startSMSSender starts the worker's SMS sender, which delivers the SMS
// outbox until ctx ends, and returns a function that waits until it has
// stopped.
func startSMSSender(ctx context.Context, cfg config.Config, database *sqlx.DB) (wait func()) {
	m := metrics.NewSMS(database) // served by the worker's /metrics (the default registry)
	if err := prometheus.Register(m); err != nil {
		slog.Warn("SMS metrics not registered", "error", err)
	}
	s := smsSender(cfg, database, m)
	if s == nil {
		slog.Info("SMS sending is off (ZIKAO_SMS_ENABLED=false): messages stay in the outbox")
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() { <-done }
}

// runSMSGateway runs the SMS provider's stand-in.
func runSMSGateway(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("sms-gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8091", "listen address")
	data := fs.String("data", filepath.Join(".data", "sms", "messages.jsonl"), "file keeping the messages received")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serveSMSGateway(ctx, cfg, *listen, *data)
}

func serveSMSGateway(ctx context.Context, cfg config.Config, listen, data string) error {
	g, err := sms.NewStandIn(cfg.SMSAccessKeyID, cfg.SMSAccessSecret, data)
	if err != nil {
		return err
	}
	defer g.Close()
	return serve(ctx, listen, g, "SMS gateway stand-in")
}
