package metrics_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"zikao/internal/devstack"
	"zikao/internal/mail"
	"zikao/internal/metrics"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

// The outbox's metrics on a real PostgreSQL and a real SMTP server (Mailpit
// refusing every address but one): a delivery and a refusal are counted by
// result, the refused message is a gauge of its own and no longer pending,
// and no label holds anything of a message.
func TestOutboxCountsRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, _, stop, err := testenv.Postgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	withdraw := func(name string) string {
		r, login := testenv.Registration(t, db, name, status.CountyReview)
		if err := registrations.NewStore(db).Record(ctx, registrations.Transition{RegistrationID: r.ID, Seq: 2,
			Status: status.Withdrawn, At: time.Now(), ByRole: "applicant", HistoryLength: 2}); err != nil {
			t.Fatal(err)
		}
		return login
	}
	withdraw("周八") // refused: claimed first
	good := withdraw("郑十")
	mailpit, err := devstack.StartMailpit(ctx, devstack.MailpitOptions{AllowedRecipients: "^" + regexp.QuoteMeta(good) + "$"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mailpit.Stop() }()

	outbox := metrics.NewOutbox(db)
	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(outbox)
	s := &mail.Sender{DB: db, SMTP: mail.SMTP{Address: mailpit.SMTPAddress(), TLS: "off", Timeout: 5 * time.Second},
		From: "noreply@zikao.localhost", Backoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, Attempted: outbox.Attempted}
	for i := 0; i < 3; i++ { // any backoff passes: a refusal is attempted once
		if _, err := s.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	got := gather(t, registry)
	for name, want := range map[string]float64{
		"zikao_outbox_up": 1, "zikao_outbox_pending": 0, "zikao_outbox_failing": 0, "zikao_outbox_refused": 1,
		`zikao_mail_delivery_attempts_total{result="accepted"}`: 1,
		`zikao_mail_delivery_attempts_total{result="refused"}`:  1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	if _, ok := got[`zikao_mail_delivery_attempts_total{result="failed"}`]; ok {
		t.Errorf("a failed attempt was counted: %v", got)
	}
	if err := testenv.CheckServerLog(testenv.PostgresLog()); err != nil {
		t.Error(err)
	}
}

// gather reads every series of the registry as name{label="value",…} → value.
func gather(t *testing.T, registry *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for i, l := range m.GetLabel() {
				sep := ","
				if i == 0 {
					sep = "{"
				}
				name += sep + l.GetName() + `="` + l.GetValue() + `"`
			}
			if len(m.GetLabel()) > 0 {
				name += "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}
