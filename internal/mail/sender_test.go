package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/devstack"
	"zikao/internal/mail"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

// These tests deliver through a real Mailpit and read the messages back
// through its API; the outbox is in a real PostgreSQL.
var (
	database *sqlx.DB
	mailpit  *devstack.Mailpit
	mailDB   string // Mailpit's database: messages outlive a restart
	logs     syncBuffer
)

const from = "湖北自考考生注册系统 <noreply@zikao.localhost>"

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	// Everything logged goes through the check for personal data too.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logs), nil)))
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	db, _, stop, err := testenv.Postgres(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "PostgreSQL:", err)
		return 1
	}
	defer stop()
	database = db
	dir, err := os.MkdirTemp("", "zikao-test-mailpit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	mailDB = filepath.Join(dir, "mailpit.db")
	if mailpit, err = devstack.StartMailpit(ctx, devstack.MailpitOptions{DBFile: mailDB}); err != nil {
		fmt.Fprintln(os.Stderr, "Mailpit:", err)
		return 1
	}
	defer func() { _ = mailpit.Stop() }()
	code := m.Run()
	if code == 0 {
		if err := checkLogs(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		if err := testenv.CheckServerLog(testenv.PostgresLog()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// checkLogs fails when anything logged holds an e-mail address of an
// applicant (all are @example.com here) or a name of theirs.
func checkLogs() error {
	if m := regexp.MustCompile(`[\w.+-]+@example\.com|张三|李四`).FindString(logs.String()); m != "" {
		return fmt.Errorf("the log holds personal data: %q", m)
	}
	if !strings.Contains(logs.String(), "outbox_id=") {
		return errors.New("the sender logged no delivery at all")
	}
	return nil
}

func newSender() *mail.Sender {
	return &mail.Sender{DB: database, SMTP: mail.SMTP{Address: mailpit.SMTPAddress(), TLS: "off", Timeout: 5 * time.Second},
		From: from, Interval: 50 * time.Millisecond, Backoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}
}

// applicant is a registration with its login name.
type applicant struct {
	registrations.Registration
	login string
}

var namesInTurn = []string{"张三", "李四"}

// newApplicant signs up an account and registers it (county review at step 1).
func newApplicant(t *testing.T, name string) applicant {
	t.Helper()
	r, login := testenv.Registration(t, database, name, status.CountyReview)
	return applicant{Registration: r, login: login}
}

func (a applicant) record(t *testing.T, seq int, st, reasonID string) {
	t.Helper()
	err := registrations.NewStore(database).Record(context.Background(), registrations.Transition{RegistrationID: a.ID, Seq: seq,
		Status: st, At: time.Now(), ByRole: "system", ReasonID: reasonID, HistoryLength: seq})
	if err != nil {
		t.Fatal(err)
	}
}

// reject records a county rejection with its reason at step seq.
func (a applicant) reject(t *testing.T, seq int, reason string) {
	t.Helper()
	id, err := registrations.NewStore(database).AddReason(context.Background(), a.ID, fmt.Sprintf("county/%d", seq), reason)
	if err != nil {
		t.Fatal(err)
	}
	a.record(t, seq, status.AwaitingReport, id)
}

func (a applicant) complete(t *testing.T, seq int) string {
	t.Helper()
	ctx := context.Background()
	photo := testenv.FileRow(t, database, []byte("photo "+a.ID), "image/jpeg")
	ticket, err := registrations.NewStore(database).Complete(ctx, registrations.Completion{RegistrationID: a.ID, Seq: seq,
		At: time.Now(), PhotoFileID: photo, ByRole: "onsite_operator", UpdateID: "onsite/" + a.ID, HistoryLength: seq})
	if err != nil {
		t.Fatal(err)
	}
	return ticket
}

// outboxIDs lists a registration's outbox rows by kind.
func outboxIDs(t *testing.T, registrationID string) map[string]string {
	t.Helper()
	var rows []struct {
		ID   string `db:"id"`
		Kind string `db:"kind"`
	}
	if err := database.Select(&rows, `SELECT id, kind FROM outbox WHERE registration_id = $1`, registrationID); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Kind] = r.ID
	}
	return out
}

// inbox reads every message to login from Mailpit, with its text.
func inbox(t *testing.T, login string) []devstack.MailMessage {
	t.Helper()
	ctx := context.Background()
	found, err := mailpit.Search(ctx, "to:"+login)
	if err != nil {
		t.Fatal(err)
	}
	var out []devstack.MailMessage
	for _, f := range found {
		m, err := mailpit.Message(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// sendAll runs the sender until nothing is due.
func sendAll(t *testing.T, s *mail.Sender) {
	t.Helper()
	if _, err := s.SendDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM outbox WHERE accepted_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every kind of message is written with its read-model change and
// delivered: each applicant's inbox holds their messages, with the right
// subject and text, and nothing of the other applicant.
func TestEveryKindIsDelivered(t *testing.T) {
	first, second := newApplicant(t, namesInTurn[0]), newApplicant(t, namesInTurn[1])
	first.reject(t, 2, "报告模糊，无法辨认（甲）")
	second.reject(t, 2, "证书编号不符（乙）")
	first.record(t, 3, status.CountyReview, "")
	first.record(t, 4, status.ProvincialReview, "")
	first.record(t, 5, status.PreRegistered, "")
	ticket := first.complete(t, 6)
	second.record(t, 3, status.Expired, "")
	third := newApplicant(t, "王五")
	third.record(t, 2, status.Withdrawn, "")
	fourth := newApplicant(t, "赵六")
	if err := registrations.NewStore(database).Close(context.Background(), fourth.ID, 2, status.Withdrawn, "system", "工作流已终止"); err != nil {
		t.Fatal(err)
	}
	sendAll(t, newSender())
	if n := pending(t); n != 0 {
		t.Fatalf("%d messages not delivered", n)
	}

	want := map[string][]string{ // subject → phrases of the text
		"【湖北自考】学历认证报告审核未通过，请重新上传": {"考生您好", "原因：报告模糊，无法辨认（甲）", "重新上传"},
		"【湖北自考】预注册成功，请按时到考区现场确认":  {"武汉市武昌区", "武汉市武昌区教育局自考办（样例地址）", " 至 ", "居民身份证"},
		"【湖北自考】注册完成，准考证号已生成":      {"准考证号：" + ticket},
	}
	checkInbox(t, first, want, []string{"证书编号不符（乙）", second.login, second.ID, namesInTurn[1]})
	checkInbox(t, second, map[string][]string{
		"【湖北自考】学历认证报告审核未通过，请重新上传": {"原因：证书编号不符（乙）"},
		"【湖北自考】现场确认时间已过，本次注册已失效":  {"已失效", "重新注册"},
	}, []string{"报告模糊", first.login, first.ID, ticket, namesInTurn[0]})
	checkInbox(t, third, map[string][]string{"【湖北自考】本次注册已撤销": {"已撤销"}}, []string{first.ID})
	checkInbox(t, fourth, map[string][]string{"【湖北自考】本次注册已撤销": {"已撤销"}}, []string{first.ID})
}

// checkInbox checks that a's inbox holds exactly the subjects of want, each
// once, from the system's address, with the registration id, the phrases
// wanted, no name or ID number of a's own and none of others.
func checkInbox(t *testing.T, a applicant, want map[string][]string, others []string) {
	t.Helper()
	msgs := inbox(t, a.login)
	if len(msgs) != len(want) {
		t.Fatalf("%d messages to one applicant, want %d", len(msgs), len(want))
	}
	ids := map[string]bool{}
	for _, id := range outboxIDs(t, a.ID) {
		ids[mail.MessageID(id, from)] = true
	}
	for _, m := range msgs {
		phrases, ok := want[m.Subject]
		if !ok {
			t.Errorf("unexpected message %q", m.Subject)
			continue
		}
		delete(want, m.Subject)
		if len(m.To) != 1 || m.To[0].Address != a.login || m.From.Address != "noreply@zikao.localhost" || !ids[m.MessageID] {
			t.Errorf("%q: to %v from %v, Message-ID %q", m.Subject, m.To, m.From, m.MessageID)
		}
		for _, p := range append(phrases, a.ID) {
			if !strings.Contains(m.Text, p) {
				t.Errorf("%q lacks %q:\n%s", m.Subject, p, m.Text)
			}
		}
		for _, p := range append(others, a.Name, a.IDNumber) {
			if strings.Contains(m.Text, p) || strings.Contains(m.Subject, p) {
				t.Errorf("%q holds %q, which it must not:\n%s", m.Subject, p, m.Text)
			}
		}
	}
}

// messageCounts counts Mailpit's messages per Message-ID.
func messageCounts(t *testing.T) map[string]int {
	t.Helper()
	all, err := mailpit.Search(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, m := range all {
		counts[m.MessageID]++
	}
	return counts
}

// queue writes n withdrawal messages and returns their Message-IDs.
func queue(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		a := newApplicant(t, "孙七")
		a.record(t, 2, status.Withdrawn, "")
		ids = append(ids, mail.MessageID(outboxIDs(t, a.ID)["withdrawn"], from))
	}
	return ids
}

func wantOnce(t *testing.T, ids []string) {
	t.Helper()
	counts := messageCounts(t)
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("message %s arrived %d times, want once", id, counts[id])
		}
	}
}

// The SMTP server is down while messages are due: every attempt is
// recorded (with its error, naming no address) and put off; once the server
// is back, every message arrives exactly once.
func TestServerDownThenBack(t *testing.T) {
	sendAll(t, newSender())
	ids := queue(t, 5)
	if err := mailpit.Stop(); err != nil {
		t.Fatal(err)
	}
	s := newSender()
	var acceptedN, failedN atomic.Int64
	s.Attempted = func(result string) {
		if result == mail.Accepted {
			acceptedN.Add(1)
		} else {
			failedN.Add(1)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := s.SendDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	var failed []struct {
		Attempts  int    `db:"attempts"`
		LastError string `db:"last_error"`
	}
	if err := database.Select(&failed, `SELECT attempts, last_error FROM outbox WHERE accepted_at IS NULL AND attempts > 0`); err != nil {
		t.Fatal(err)
	}
	if len(failed) == 0 {
		t.Fatal("no failed attempt recorded while the server was down")
	}
	b, err := mail.ReadBacklog(context.Background(), database)
	if err != nil {
		t.Fatal(err)
	}
	if b.Pending != 5 || b.Failing != len(failed) || b.OldestWaiting <= 0 {
		t.Fatalf("backlog %+v, want 5 pending, %d failing", b, len(failed))
	}
	for _, f := range failed {
		if f.LastError == "" || strings.Contains(f.LastError, "@") {
			t.Fatalf("last_error %q: want the error, without an address", f.LastError)
		}
	}
	restartMailpit(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for pending(t) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if n := pending(t); n != 0 {
		t.Fatalf("%d messages still pending after the server came back", n)
	}
	if acceptedN.Load() != 5 || failedN.Load() < 3 {
		t.Errorf("Attempted saw %d accepted and %d failed, want 5 and at least 3", acceptedN.Load(), failedN.Load())
	}
	if b, err := mail.ReadBacklog(context.Background(), database); err != nil || b != (mail.Backlog{}) {
		t.Errorf("backlog after delivery: %+v, %v", b, err)
	}
	wantOnce(t, ids)
}

func restartMailpit(t *testing.T) {
	t.Helper()
	m, err := devstack.StartMailpit(context.Background(), devstack.MailpitOptions{UIPort: mailpit.UIPort, SMTPPort: mailpit.SMTPPort, DBFile: mailDB})
	if err != nil {
		t.Fatal(err)
	}
	mailpit = m
}

// A sender stopped mid-delivery (its context cancelled right after the
// server accepted a message) records that message before it returns; the
// next run sends the rest: every message arrives exactly once.
func TestSenderStoppedMidDelivery(t *testing.T) {
	sendAll(t, newSender())
	ids := queue(t, 6)
	ctx, cancel := context.WithCancel(context.Background())
	s := newSender()
	accepted := 0
	s.SetAfterAccept(func(string) error {
		if accepted++; accepted == 3 {
			cancel() // the worker is told to stop while it holds this message
		}
		return nil
	})
	s.Run(ctx)
	if n := pending(t); n != 3 {
		t.Fatalf("%d messages pending after the stop, want 3", n)
	}
	sendAll(t, newSender())
	wantOnce(t, ids)
}

// A sender that dies between the server's acceptance and the commit of
// accepted_at (the one unavoidable gap) sends that message again: it
// arrives twice, with the same Message-ID, so the copy is recognisable;
// every other message arrives once.
func TestCrashBetweenAcceptanceAndCommit(t *testing.T) {
	sendAll(t, newSender())
	ids := queue(t, 3)
	s := newSender()
	crashed := ""
	s.SetAfterAccept(func(id string) error {
		if crashed == "" {
			crashed = id
			return errors.New("killed")
		}
		return nil
	})
	if _, err := s.SendDue(context.Background()); err == nil {
		t.Fatal("the crash was not reported")
	}
	sendAll(t, newSender())
	twice := mail.MessageID(crashed, from)
	counts := messageCounts(t)
	for _, id := range ids {
		want := 1
		if id == twice {
			want = 2
		}
		if counts[id] != want {
			t.Errorf("message %s arrived %d times, want %d", id, counts[id], want)
		}
	}
}

// Two senders at once never send the same message.
func TestTwoSenders(t *testing.T) {
	sendAll(t, newSender())
	ids := queue(t, 12)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := newSender().SendDue(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	sendAll(t, newSender())
	wantOnce(t, ids)
}

func TestScrub(t *testing.T) {
	got := mail.Scrub("550 5.1.1 <zhang.san+1@example.com>: Recipient address rejected; to li@qq.com")
	if strings.Contains(got, "@") {
		t.Fatalf("scrubbed error still holds an address: %q", got)
	}
}
