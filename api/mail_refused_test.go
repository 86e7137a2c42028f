package api_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// mailRefused is the JSON dashboard's count of e-mails refused for good.
func mailRefused(t *testing.T, a caller) int {
	t.Helper()
	r := a.json("GET", "/admin/dashboard", nil)
	want(t, r, 200, "")
	n, ok := r.body["mail_refused"].(float64)
	if !ok {
		t.Fatalf("the dashboard has no mail_refused: %s", r.raw)
	}
	return int(n)
}

// An e-mail the SMTP server refuses for good is attempted once by the
// worker's sender (startMail's, delivering to the tests' Mailpit), marked
// failed with the reply code only, and shown to the administrator: the
// JSON dashboard's mail_refused and the dashboard page's list (when, which
// e-mail, which registration, the reply), with no address.
//
// The refusal is a real one of the tests' own Mailpit, whatever its
// options: it answers 500 to a RCPT TO whose address is longer than 1,024
// characters. (internal/mail's tests refuse by --smtp-allowed-recipients;
// here that would need the shared Mailpit restarted, or a second sender
// racing the shared one for the message.)
func TestDashboardShowsRefusedMail(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	a := admin(t)
	before := mailRefused(t, a)
	_, registrationID := registerIn(t, "0106")
	outboxID := uuid.NewString()
	if _, err := database.Exec(`INSERT INTO outbox (id, registration_id, kind, seq, recipient, subject, body)
		VALUES ($1, $2, 'pre_registered', 1000, $3, '【湖北自考】预注册成功，请按时到考区现场确认', '考生您好：')`,
		outboxID, registrationID, strings.Repeat("r", 1100)+"@example.com"); err != nil {
		t.Fatal(err)
	}

	var row struct {
		Failed    bool   `db:"failed"`
		Attempts  int    `db:"attempts"`
		LastError string `db:"last_error"`
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		if err := database.Get(&row, `SELECT failed_at IS NOT NULL AS failed, attempts, COALESCE(last_error, '') AS last_error
			FROM outbox WHERE id = $1`, outboxID); err != nil {
			t.Fatal(err)
		}
		if row.Failed || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !row.Failed || row.Attempts != 1 || row.LastError != "500" {
		t.Fatalf("the refused e-mail: %+v, want failed after one attempt, last_error 500", row)
	}
	if got := mailRefused(t, a); got != before+1 {
		t.Errorf("mail_refused %d, want %d", got, before+1)
	}

	p := webAdmin(t).get("/admin")
	wantPage(t, p, 200, "被拒收的邮件", fmt.Sprintf("共 <strong>%d</strong> 封", before+1))
	rowOf := regexp.MustCompile(`<tr><td>[^<]+</td><td>预注册成功（pre_registered）</td><td><code>` + registrationID + `</code></td><td><code>500</code></td></tr>`)
	if !rowOf.MatchString(p.body) {
		t.Errorf("the dashboard lacks the refused e-mail of %s:\n%s", registrationID, p.body)
	}
	if strings.Contains(p.body, "rrrrrrrr") {
		t.Error("the dashboard shows the refused address")
	}
}
