package mail_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"zikao/internal/devstack"
	"zikao/internal/mail"
	"zikao/internal/status"
)

// outboxRow is what the sender recorded of one message.
type outboxRow struct {
	ID        string  `db:"id"`
	Attempts  int     `db:"attempts"`
	Accepted  bool    `db:"accepted"`
	Failed    bool    `db:"failed"`
	LastError *string `db:"last_error"`
}

func outboxRowOf(t *testing.T, registrationID string) outboxRow {
	t.Helper()
	var r outboxRow
	if err := database.Get(&r, `SELECT id, attempts, accepted_at IS NOT NULL AS accepted, failed_at IS NOT NULL AS failed, last_error
		FROM outbox WHERE registration_id = $1`, registrationID); err != nil {
		t.Fatal(err)
	}
	return r
}

// Addresses a real SMTP server refuses for good (Mailpit with
// --smtp-allowed-recipients answers 550 5.1.0 to every other RCPT TO): each
// message is attempted once, marked failed with the reply code only, and
// never claimed again, even once its backoff would have passed; a good
// address in the same run is delivered. The backlog counts them as refused,
// not pending; ReadRefused lists them newest first; the log names the
// outbox id and the reply, no address.
func TestRefusedAddressIsNotRetried(t *testing.T) {
	ctx := context.Background()
	sendAll(t, newSender()) // nothing else due
	first, second, good := newApplicant(t, "周八"), newApplicant(t, "吴九"), newApplicant(t, "郑十")
	for _, a := range []applicant{first, second, good} { // claimed in this order
		a.record(t, 2, status.Withdrawn, "")
	}
	t.Cleanup(func() { // the other tests count what is pending or refused
		if _, err := database.Exec(`DELETE FROM outbox WHERE registration_id IN ($1, $2, $3)`, first.ID, second.ID, good.ID); err != nil {
			t.Error(err)
		}
	})
	refusing, err := devstack.StartMailpit(ctx, devstack.MailpitOptions{AllowedRecipients: "^" + regexp.QuoteMeta(good.login) + "$"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = refusing.Stop() }()

	s := newSender()
	s.SMTP.Address = refusing.SMTPAddress()
	var mu sync.Mutex
	results := map[string]int{}
	s.Attempted = func(result string) {
		mu.Lock()
		defer mu.Unlock()
		results[result]++
	}
	sent, err := s.SendDue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sent != 1 {
		t.Fatalf("one run delivered %d messages, want the good one (a refusal must not end the run)", sent)
	}
	time.Sleep(3 * s.MaxBackoff) // any backoff has passed
	sendAll(t, s)
	sendAll(t, s)

	for _, a := range []applicant{first, second} {
		r := outboxRowOf(t, a.ID)
		if !r.Failed || r.Accepted || r.Attempts != 1 || r.LastError == nil || *r.LastError != "550 5.1.0" {
			t.Errorf("refused message: %+v (last_error %v), want failed after 1 attempt with last_error 550 5.1.0", r, deref(r.LastError))
		}
	}
	if r := outboxRowOf(t, good.ID); !r.Accepted || r.Failed || r.Attempts != 1 {
		t.Errorf("good message: %+v, want accepted at the first attempt", r)
	}
	if results[mail.Accepted] != 1 || results[mail.Refused] != 2 || results[mail.Failed] != 0 {
		t.Errorf("Attempted saw %v, want 1 accepted and 2 refused", results)
	}
	all, err := refusing.Search(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if goodID := mail.MessageID(outboxRowOf(t, good.ID).ID, from); len(all) != 1 || all[0].MessageID != goodID {
		t.Errorf("the refusing server holds %v, want the good message %s only", all, goodID)
	}

	b, err := mail.ReadBacklog(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	if b.Refused != 2 || b.Pending != 0 || b.Failing != 0 {
		t.Errorf("backlog %+v, want 2 refused, none pending", b)
	}
	refused, err := mail.ReadRefused(ctx, database, 1)
	if err != nil {
		t.Fatal(err)
	}
	secondID := outboxRowOf(t, second.ID).ID
	if refused.Count != 2 || len(refused.Newest) != 1 {
		t.Fatalf("ReadRefused: %+v, want a count of 2 and the newest one", refused)
	}
	if n := refused.Newest[0]; n.OutboxID != secondID || n.RegistrationID != second.ID || n.Kind != mail.Withdrawn ||
		n.Reply != "550 5.1.0" || time.Since(n.At) > time.Minute {
		t.Errorf("newest refusal %+v, want the second applicant's withdrawn message, 550 5.1.0", n)
	}
	if only, err := mail.ReadRefused(ctx, database, 0); err != nil || only.Count != 2 || len(only.Newest) != 0 {
		t.Errorf("ReadRefused without a list: %+v, %v", only, err)
	}
	if line := `outbox_id=` + secondID + ` reply="550 5.1.0"`; !strings.Contains(logs.String(), line) {
		t.Errorf("the log lacks %q", line)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
