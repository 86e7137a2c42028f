package registrations_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

// outboxRow is an e-mail as the outbox holds it.
type outboxRow struct {
	Kind      string `db:"kind"`
	Seq       int    `db:"seq"`
	Recipient string `db:"recipient"`
	Subject   string `db:"subject"`
	Body      string `db:"body"`
}

func outboxOf(t *testing.T, id string) []outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := database.Select(&rows, `SELECT kind, seq, recipient, subject, body FROM outbox WHERE registration_id = $1 ORDER BY seq, kind`, id); err != nil {
		t.Fatal(err)
	}
	return rows
}

func loginOf(t *testing.T, r registrations.Registration) string {
	t.Helper()
	var login string
	if err := database.Get(&login, `SELECT login_name FROM accounts WHERE id = $1`, r.AccountID); err != nil {
		t.Fatal(err)
	}
	return login
}

// wantMail checks that the outbox holds exactly the e-mails kinds (in step
// order) to the account's login name, and returns them.
func wantMail(t *testing.T, r registrations.Registration, kinds ...string) []outboxRow {
	t.Helper()
	rows := outboxOf(t, r.ID)
	var got []string
	for _, row := range rows {
		got = append(got, row.Kind)
		if row.Recipient != loginOf(t, r) {
			t.Errorf("%s e-mail to another address", row.Kind)
		}
		if strings.Contains(row.Body, r.Name) || strings.Contains(row.Body, r.IDNumber) || strings.Contains(row.Subject, r.Name) {
			t.Errorf("%s e-mail names the applicant or their ID number:\n%s", row.Kind, row.Body)
		}
		if !strings.Contains(row.Body, r.ID) || !strings.HasPrefix(row.Subject, "【湖北自考】") {
			t.Errorf("%s e-mail without the registration id or the subject's prefix: %q\n%s", row.Kind, row.Subject, row.Body)
		}
	}
	if strings.Join(got, ",") != strings.Join(kinds, ",") {
		t.Fatalf("outbox holds %v, want %v", got, kinds)
	}
	return rows
}

func record(t *testing.T, r registrations.Registration, seq int, st, reasonID string, historyLength int) {
	t.Helper()
	err := registrations.NewStore(database).Record(context.Background(), registrations.Transition{RegistrationID: r.ID, Seq: seq,
		Status: st, At: time.Now(), ByRole: "system", ReasonID: reasonID, UpdateID: "", HistoryLength: historyLength})
	if err != nil {
		t.Fatal(err)
	}
}

// The e-mails are written with the read-model change that causes them, once
// per step: a rejection (with the reason), pre-registration (the office and
// the window), completion (the ticket number); not the first awaiting_report
// (the registry did not know the diploma) nor the reviews.
func TestOutboxFollowsTheReadModel(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	r := newRegistration(t) // pre_registered at step 1 (专科, written by the API)
	rows := wantMail(t, r, "pre_registered")
	if rows[0].Seq != 1 || !strings.Contains(rows[0].Body, "武汉市武昌区教育局自考办（样例地址）") {
		t.Fatalf("pre-registration e-mail of a new registration: step %d\n%s", rows[0].Seq, rows[0].Body)
	}
	if _, err := database.Exec(`DELETE FROM outbox WHERE registration_id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	record(t, r, 2, status.AwaitingReport, "", 2) // the registry does not know the diploma
	record(t, r, 3, status.CountyReview, "", 3)
	wantMail(t, r)
	reason, err := store.AddReason(ctx, r.ID, "county/1", "报告模糊，无法辨认")
	if err != nil {
		t.Fatal(err)
	}
	record(t, r, 4, status.AwaitingReport, reason, 4)
	record(t, r, 4, status.AwaitingReport, reason, 4) // a retry adds nothing
	rows = wantMail(t, r, "rejected")
	if !strings.Contains(rows[0].Body, "报告模糊，无法辨认") || !strings.Contains(rows[0].Subject, "审核未通过") {
		t.Fatalf("rejection e-mail without its reason: %q\n%s", rows[0].Subject, rows[0].Body)
	}
	record(t, r, 5, status.CountyReview, "", 5)
	record(t, r, 6, status.ProvincialReview, "", 6)
	record(t, r, 7, status.PreRegistered, "", 7)
	rows = wantMail(t, r, "rejected", "pre_registered")
	if !strings.Contains(rows[1].Body, "武汉市武昌区教育局自考办（样例地址）") || !strings.Contains(rows[1].Body, " 至 ") {
		t.Fatalf("pre-registration e-mail without the office or the window:\n%s", rows[1].Body)
	}
	photo := testenv.FileRow(t, database, []byte("photo of "+r.ID), "image/jpeg")
	c := registrations.Completion{RegistrationID: r.ID, Seq: 8, At: time.Now(), PhotoFileID: photo, ByRole: "onsite_operator", UpdateID: "onsite/1", HistoryLength: 8}
	ticket, err := store.Complete(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Complete(ctx, c); err != nil { // a retry adds nothing
		t.Fatal(err)
	}
	rows = wantMail(t, r, "rejected", "pre_registered", "completed")
	if !strings.Contains(rows[2].Body, "准考证号："+ticket) {
		t.Fatalf("completion e-mail without the ticket number %s:\n%s", ticket, rows[2].Body)
	}
}

// quietRegistration is newRegistration with its first e-mail (pre_registered) gone.
func quietRegistration(t *testing.T) registrations.Registration {
	t.Helper()
	r := newRegistration(t)
	if _, err := database.Exec(`WITH m AS (DELETE FROM outbox WHERE registration_id = $1) DELETE FROM sms_outbox WHERE registration_id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

// wantSMS checks the purposes of a registration's SMS in the outbox, by step.
func wantSMS(t *testing.T, r registrations.Registration, purposes ...string) {
	t.Helper()
	var got []string
	if err := database.Select(&got, `SELECT purpose FROM sms_outbox WHERE registration_id = $1 ORDER BY seq, purpose`, r.ID); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(purposes, ",") {
		t.Fatalf("SMS outbox holds %v, want %v", got, purposes)
	}
}

// Expiry and withdrawal (by the workflow, or the reconciler's Close) each
// write their e-mail; a Close of a registration already closed writes none.
func TestOutboxOnClosing(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	expired := quietRegistration(t)
	record(t, expired, 2, status.Expired, "", 2)
	rows := wantMail(t, expired, "expired")
	if !strings.Contains(rows[0].Subject, "已失效") {
		t.Fatalf("expiry e-mail: %q", rows[0].Subject)
	}
	withdrawn := quietRegistration(t)
	record(t, withdrawn, 2, status.Withdrawn, "", 2)
	wantMail(t, withdrawn, "withdrawn")

	closed := quietRegistration(t)
	if err := store.Close(ctx, closed.ID, 2, status.Withdrawn, "system", "工作流已终止"); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(ctx, closed.ID, 2, status.Withdrawn, "system", "工作流已终止"); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(ctx, closed.ID, 3, status.Withdrawn, "system", "工作流已终止"); err != nil { // already closed
		t.Fatal(err)
	}
	rows = wantMail(t, closed, "withdrawn")
	if rows[0].Seq != 2 || !strings.Contains(rows[0].Subject, "已撤销") {
		t.Fatalf("reconciler's withdrawal e-mail: step %d, %q", rows[0].Seq, rows[0].Subject)
	}
}

// A step written by a workflow task Temporal never committed loses its
// unsent e-mail when the committed step replaces it, or when the reconciler
// sets the registration back; a late write of the lost task adds none.
func TestSupersededStepsRetractTheirMail(t *testing.T) {
	ctx := context.Background()
	r := quietRegistration(t)
	record(t, r, 2, status.Withdrawn, "", 10) // the lost task's write
	wantMail(t, r, "withdrawn")
	wantSMS(t, r, "withdrawn")
	record(t, r, 2, status.Expired, "", 15) // what the workflow committed instead
	wantMail(t, r, "expired")
	wantSMS(t, r, "expired")
	record(t, r, 2, status.Withdrawn, "", 12) // the lost task, late
	wantMail(t, r, "expired")
	wantSMS(t, r, "expired")

	other := quietRegistration(t)
	record(t, other, 2, status.Withdrawn, "", 10)
	if err := registrations.NewStore(database).Restore(ctx, other.ID, registrations.Snapshot{Status: status.PreRegistered, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	wantMail(t, other)
	wantSMS(t, other)

	// A message the SMTP server or the SMS provider accepted stays (it
	// cannot be recalled).
	sent := quietRegistration(t)
	record(t, sent, 2, status.Withdrawn, "", 10)
	if _, err := database.Exec(`WITH m AS (UPDATE outbox SET accepted_at = now() WHERE registration_id = $1)
		UPDATE sms_outbox SET accepted_at = now() WHERE registration_id = $1`, sent.ID); err != nil {
		t.Fatal(err)
	}
	record(t, sent, 2, status.Expired, "", 15)
	wantMail(t, sent, "expired", "withdrawn")
	wantSMS(t, sent, "expired", "withdrawn")
}

// A report is accepted (kept from the clean-up of reports never handed
// over) when the workflow records the step that took it, not before.
func TestRecordedReportIsAccepted(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	r := quietRegistration(t)
	accepted := func(id string) bool {
		t.Helper()
		var yes bool
		if err := database.Get(&yes, `SELECT accepted_at IS NOT NULL FROM diploma_reports WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		return yes
	}
	file := testenv.FileRow(t, database, []byte("%PDF-1.4 report of "+r.ID), "application/pdf")
	report, err := store.AddReport(ctx, r.ID, "upload/1", file, "ABCD1234EFGH", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if accepted(report) {
		t.Fatal("report accepted before the workflow recorded it")
	}
	err = store.Record(ctx, registrations.Transition{RegistrationID: r.ID, Seq: 2, Status: status.CountyReview, At: time.Now(),
		ByRole: "applicant", ReportID: report, UpdateID: "upload/1", HistoryLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !accepted(report) {
		t.Fatal("report not accepted with the step that took it")
	}
}

// A message that a sender is delivering while its step is set back escapes
// the retraction (SKIP LOCKED); when that delivery fails, the next write of
// the step retracts it, so that the applicant hears of the step the workflow
// committed only.
func TestRetractionCatchesAMessageBeingSent(t *testing.T) {
	ctx := context.Background()
	r := quietRegistration(t)
	record(t, r, 2, status.Withdrawn, "", 10) // a task Temporal never committed
	sending, err := database.Beginx()         // a sender delivering its e-mail
	if err != nil {
		t.Fatal(err)
	}
	defer sending.Rollback() //nolint:errcheck
	var id string
	if err := sending.Get(&id, `SELECT id FROM outbox WHERE registration_id = $1 FOR UPDATE`, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := registrations.NewStore(database).Restore(ctx, r.ID, registrations.Snapshot{Status: status.PreRegistered, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	wantMail(t, r, "withdrawn") // skipped while being sent
	// The delivery fails.
	if err := sending.Rollback(); err != nil {
		t.Fatal(err)
	}
	record(t, r, 2, status.Expired, "", 15) // what the workflow committed
	wantMail(t, r, "expired")
}

// An annulment (作废) shows its reason and writes its e-mail with it; it
// ends the registration, so that the ID number may be registered again at
// once, by another account.
func TestAnnulment(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	r := quietRegistration(t)
	rejection, err := store.AddReason(ctx, r.ID, "county/1", "报告模糊")
	if err != nil {
		t.Fatal(err)
	}
	record(t, r, 2, status.AwaitingReport, rejection, 2)
	reason, err := store.AddReason(ctx, r.ID, "annul/1", "冒用他人身份证号")
	if err != nil {
		t.Fatal(err)
	}
	err = store.Record(ctx, registrations.Transition{RegistrationID: r.ID, Seq: 3, Status: status.Annulled, At: time.Now(),
		ByRole: "county_reviewer", AccountID: r.AccountID, Note: "区考办已作废本次注册：", ReasonID: reason, UpdateID: "annul/1", HistoryLength: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := got.History[len(got.History)-1]
	if got.Status != status.Annulled || got.AnnulmentReason == nil || *got.AnnulmentReason != "冒用他人身份证号" || got.RejectionReason != nil ||
		last.Note != "区考办已作废本次注册：冒用他人身份证号" || last.ByAccountID == nil || *last.ByAccountID != r.AccountID ||
		last.ByAccount == nil || *last.ByAccount != loginOf(t, r) {
		t.Fatalf("annulled registration %+v, last step %+v", got, last)
	}
	if got.History[1].ByAccountID != nil || got.History[0].ByAccountID == nil { // system step; the applicant's submission
		t.Errorf("history accounts %v, %v", got.History[0].ByAccountID, got.History[1].ByAccountID)
	}
	rows := wantMail(t, r, "rejected", "annulled")
	if !strings.Contains(rows[1].Body, "原因：冒用他人身份证号") || rows[1].Subject != "【湖北自考】本次注册已作废" {
		t.Fatalf("annulment e-mail: %q\n%s", rows[1].Subject, rows[1].Body)
	}

	// The real person registers with the ID number.
	other, _ := testenv.Registration(t, database, "测试", status.PreRegistered)
	again := other
	again.ID, again.IDNumber, again.IdempotencyKey = uuid.NewString(), r.IDNumber, nil
	if _, err := database.Exec(`UPDATE registrations SET status = 'withdrawn' WHERE id = $1`, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, &again, "提交"); err != nil {
		t.Fatalf("registration of an annulled ID number: %v", err)
	}
}
