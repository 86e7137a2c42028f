package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"zikao/internal/devstack"
	"zikao/internal/mail"
)

// mailpit receives the e-mails of every API test: the worker's sender
// (internal/mail) delivers the outbox to it, as in `zikao dev`.
var mailpit *devstack.Mailpit

// startMail starts Mailpit and a sender delivering the outbox to it; stop
// ends both.
func startMail(ctx context.Context, db *sqlx.DB) (stop func(), err error) {
	if mailpit, err = devstack.StartMailpit(ctx, devstack.MailpitOptions{}); err != nil {
		return nil, err
	}
	s := &mail.Sender{DB: db, SMTP: mail.SMTP{Address: mailpit.SMTPAddress(), TLS: "off"},
		From: "湖北自考考生注册系统 <noreply@zikao.localhost>", Interval: 100 * time.Millisecond}
	senderCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(senderCtx); close(done) }()
	return func() { cancel(); <-done; _ = mailpit.Stop() }, nil
}

// mailsTo waits until n messages to login have arrived (or 15 s passed) and
// returns them, oldest first, with their text.
func mailsTo(t *testing.T, login string, n int) []devstack.MailMessage {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		found, err := mailpit.Search(ctx, "to:"+login)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) >= n || time.Now().After(deadline) {
			var out []devstack.MailMessage
			for i := len(found) - 1; i >= 0; i-- { // Mailpit lists the newest first
				m, err := mailpit.Message(ctx, found[i].ID)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The longest path with a county rejection, walked through the API, sends
// the applicant three e-mails at the login name: the rejection with its
// reason, the pre-registration with the office and the window, the ticket
// number; another applicant's withdrawal sends them one. Neither holds
// anything of the other, nor a name or an ID number.
func TestApplicantMailsThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	login, otherLogin := "mail-"+uuid.NewString()[:8]+"@example.com", "mail-"+uuid.NewString()[:8]+"@example.com"
	for _, l := range []string{login, otherLogin} {
		want(t, caller{t: t}.json("POST", "/accounts", map[string]any{"login_name": l, "password": "secret1", "security_question_id": 1, "security_answer": "王小花"}), 201, "")
	}
	applicant, other := logIn(t, login, "secret1"), logIn(t, otherLogin, "secret1")
	county, province, onsite := staff(t, "county0106@example.com"), staff(t, "province@example.com"), staff(t, "onsite0106@example.com")

	body := newRegistration("zhuanshengben", "", "钱二十")
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	idNumber := body["personal"].(map[string]any)["id_number"].(string)
	otherBody := newRegistration("zhuanshengben", "", "孙廿一")
	r = other.json("POST", "/registrations", otherBody)
	want(t, r, 202, "")
	otherID := r.str("registration_id")

	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": false, "reason": "报告页面缺失，请上传完整报告"}), 200, "")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGJ"}, "file", pdfFile), 202, "")
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
	want(t, province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true}), 200, "")
	r = onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "钱二十"}, "photo", jpegFile)
	want(t, r, 200, "")
	ticket := r.str("ticket_number")
	waitFor(t, other, otherID, "awaiting_report")
	want(t, other.json("POST", "/registrations/"+otherID+"/withdraw", nil), 202, "")

	mails := mailsTo(t, login, 3)
	wantMails(t, mails, login, id, [][]string{
		{"【湖北自考】学历认证报告审核未通过，请重新上传", "原因：报告页面缺失，请上传完整报告"},
		{"【湖北自考】预注册成功，请按时到考区现场确认", "武汉市武昌区教育局自考办（样例地址）", "居民身份证"},
		{"【湖北自考】注册完成，准考证号已生成", "准考证号：" + ticket},
	}, []string{"钱二十", idNumber, otherLogin, otherID, "孙廿一"})
	wantMails(t, mailsTo(t, otherLogin, 1), otherLogin, otherID, [][]string{{"【湖北自考】本次注册已撤销", "已撤销"}},
		[]string{"孙廿一", otherBody["personal"].(map[string]any)["id_number"].(string), login, id, ticket, "报告页面缺失"})
}

// wantMails checks the messages to login, in order: subject then phrases
// of the text (and the registration id), nothing of the forbidden.
func wantMails(t *testing.T, mails []devstack.MailMessage, login, registrationID string, want [][]string, forbidden []string) {
	t.Helper()
	if len(mails) != len(want) {
		var subjects []string
		for _, m := range mails {
			subjects = append(subjects, m.Subject)
		}
		t.Fatalf("%d e-mails to the applicant (%v), want %d", len(mails), subjects, len(want))
	}
	for i, m := range mails {
		if m.Subject != want[i][0] || len(m.To) != 1 || m.To[0].Address != login {
			t.Errorf("e-mail %d: %q to %v, want %q to the login name", i, m.Subject, m.To, want[i][0])
		}
		for _, p := range append(want[i][1:], registrationID) {
			if !strings.Contains(m.Text, p) {
				t.Errorf("%q lacks %q:\n%s", m.Subject, p, m.Text)
			}
		}
		for _, p := range forbidden {
			if strings.Contains(m.Text, p) || strings.Contains(m.Subject, p) {
				t.Errorf("%q holds %q:\n%s", m.Subject, p, m.Text)
			}
		}
	}
}
