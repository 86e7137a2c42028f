package sms_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/sms"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

// These tests deliver the outbox of a real PostgreSQL through the real
// Gateway client to the stand-in, over HTTP.
var (
	database *sqlx.DB
	logs     syncBuffer
)

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

// secretCode is the code of every code message the sender tests write: it
// must never reach the log.
const secretCode = "424242"

func TestMain(m *testing.M) {
	// Everything logged goes through the check for personal data too.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logs), nil)))
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database = db
		code := m.Run()
		if err := checkLogs(); code == 0 && err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		return code
	}, false))
}

// checkLogs fails when anything logged holds a phone number or a code.
func checkLogs() error {
	if m := regexp.MustCompile(`\b1[3-9][0-9]{9}\b|` + secretCode).FindString(logs.String()); m != "" {
		return fmt.Errorf("the log holds personal data: %q", m)
	}
	if !strings.Contains(logs.String(), "sms_id=") {
		return errors.New("the sender logged no delivery at all")
	}
	return nil
}

var phoneSeq atomic.Int64

// newPhone is a phone number no other call made.
func newPhone() string { return fmt.Sprintf("1370%07d", phoneSeq.Add(1)) }

// enqueue writes o into the outbox in a transaction of its own.
func enqueue(t *testing.T, o sms.Outgoing) string {
	t.Helper()
	ctx := context.Background()
	tx, err := database.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	id, err := sms.Enqueue(ctx, tx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

// queueCodes writes n sign-up codes (registration_id NULL), each to a phone
// of its own.
func queueCodes(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, enqueue(t, sms.Outgoing{Purpose: sms.SignUp, Phone: newPhone(), Params: map[string]string{"code": secretCode}}))
	}
	return ids
}

func queueLookup(t *testing.T, phone string) string {
	t.Helper()
	return enqueue(t, sms.Outgoing{Purpose: sms.TicketLookup, Phone: phone, Params: map[string]string{"ticket": "010627000042"}})
}

func newSender(p sms.Provider) *sms.Sender {
	return &sms.Sender{DB: database, Provider: p, Interval: 20 * time.Millisecond, Backoff: 100 * time.Millisecond,
		MaxBackoff: 400 * time.Millisecond, Timeout: 2 * time.Second}
}

// counting counts the messages handed to a provider, by OutId, and waits
// delay in each call.
type counting struct {
	sms.Provider
	delay time.Duration
	mu    sync.Mutex
	calls map[string]int
}

func countCalls(p sms.Provider, delay time.Duration) *counting {
	return &counting{Provider: p, delay: delay, calls: map[string]int{}}
}

func (c *counting) Send(ctx context.Context, m sms.Message) (string, error) {
	c.mu.Lock()
	c.calls[m.OutID]++
	c.mu.Unlock()
	time.Sleep(c.delay)
	return c.Provider.Send(ctx, m)
}

func (c *counting) of(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

// results counts what Attempted reported, by purpose and result.
type results struct {
	mu sync.Mutex
	n  map[string]int
}

func recordResults(s *sms.Sender) *results {
	r := &results{n: map[string]int{}}
	s.Attempted = func(p sms.Purpose, result string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.n[string(p)+" "+result]++
		r.n[result]++
	}
	return r
}

func (r *results) get(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

// drain delivers whatever earlier tests left due, so that each test counts
// its own messages.
func drain(t *testing.T) {
	t.Helper()
	_, srv := standIn(t, "")
	if _, err := newSender(gatewayTo(srv.URL)).SendDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// outboxRow is a row of sms_outbox; Wait is the time until its next attempt.
type outboxRow struct {
	ID         string         `db:"id"`
	Purpose    string         `db:"purpose"`
	Phone      string         `db:"phone"`
	Params     string         `db:"params"`
	Attempts   int            `db:"attempts"`
	Accepted   bool           `db:"accepted"`
	Failed     bool           `db:"failed"`
	LastError  sql.NullString `db:"last_error"`
	ProviderID sql.NullString `db:"provider_message_id"`
	WaitSec    float64        `db:"wait"`
}

func (r outboxRow) wait() time.Duration { return time.Duration(r.WaitSec * float64(time.Second)) }

func rowOf(t *testing.T, id string) outboxRow {
	t.Helper()
	var r outboxRow
	err := database.Get(&r, `SELECT id, purpose, phone, params::text AS params, attempts, accepted_at IS NOT NULL AS accepted,
		failed_at IS NOT NULL AS failed, last_error, provider_message_id,
		EXTRACT(EPOCH FROM next_attempt_at - clock_timestamp())::float8 AS wait
		FROM sms_outbox WHERE id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func params(t *testing.T, r outboxRow) map[string]string {
	t.Helper()
	var p map[string]string
	if err := json.Unmarshal([]byte(r.Params), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// received counts the stand-in's messages by OutId, and keeps the last of
// each.
func received(g *sms.StandIn) (map[string]int, map[string]sms.Received) {
	counts, last := map[string]int{}, map[string]sms.Received{}
	for _, m := range g.Messages("") {
		counts[m.OutID]++
		last[m.OutID] = m
	}
	return counts, last
}

// wantDelivered checks that each of ids is accepted, at the stand-in exactly
// once, under the provider id recorded.
func wantDelivered(t *testing.T, g *sms.StandIn, ids []string) {
	t.Helper()
	counts, last := received(g)
	for _, id := range ids {
		r := rowOf(t, id)
		switch {
		case !r.Accepted || r.Failed:
			t.Errorf("SMS %s not accepted: %+v", id, r)
		case counts[id] != 1:
			t.Errorf("SMS %s kept %d times by the stand-in, want once", id, counts[id])
		case r.ProviderID.String != last[id].ID || last[id].Phone != r.Phone:
			t.Errorf("SMS %s: provider id %q, the stand-in's %q; phone %s, the stand-in's %s", id, r.ProviderID.String, last[id].ID,
				r.Phone, last[id].Phone)
		}
	}
}

// Each message goes once, is recorded with the provider's id, and a code's
// parameters are emptied once it has gone (the code lives hashed in
// sms_codes only); other messages keep theirs.
func TestDeliveredOnce(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	codes := queueCodes(t, 3)
	lookupPhone := newPhone()
	lookup := queueLookup(t, lookupPhone)
	s := newSender(gatewayTo(srv.URL))
	res := recordResults(s)
	n, err := s.SendDue(context.Background())
	if err != nil || n != 4 {
		t.Fatalf("SendDue: %d sent, %v; want 4", n, err)
	}
	if n, err := s.SendDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("SendDue again: %d sent, %v; want none", n, err)
	}
	all := append(append([]string(nil), codes...), lookup)
	wantDelivered(t, g, all)
	for _, id := range all {
		r := rowOf(t, id)
		if r.Attempts != 1 || r.LastError.Valid {
			t.Errorf("SMS %s: %d attempts, last error %q", id, r.Attempts, r.LastError.String)
		}
	}
	_, last := received(g)
	for _, id := range codes {
		if r := rowOf(t, id); r.Params != "{}" {
			t.Errorf("sent code %s keeps its parameters %s", id, r.Params)
		}
		if text := last[id].Text; !strings.HasPrefix(text, "【湖北自考】您正在注册") || !strings.Contains(text, secretCode) {
			t.Errorf("code %s arrived as %q", id, text)
		}
	}
	if p := params(t, rowOf(t, lookup)); p["ticket"] != "010627000042" {
		t.Errorf("a sent ticket look-up lost its parameters: %v", p)
	}
	if m := g.Messages(lookupPhone); len(m) != 1 || !strings.Contains(m[0].Text, "010627000042") {
		t.Errorf("the ticket look-up arrived as %+v", m)
	}
	if res.get("sign_up sent") != 3 || res.get("ticket_lookup sent") != 1 || res.get(sms.Failed) != 0 {
		t.Errorf("Attempted saw %v", res.n)
	}
	b, err := sms.ReadBacklog(context.Background(), database)
	if err != nil || b.Pending != 0 || b.Failing != 0 || b.OldestWaiting != 0 {
		t.Errorf("backlog after delivery: %+v, %v", b, err)
	}
}

// freeAddress is a loopback address nothing listens on (yet).
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func sumAttempts(t *testing.T, ids []string) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		n += rowOf(t, id).Attempts
	}
	return n
}

// makeDue puts a message's next attempt now, as if its backoff had passed.
func makeDue(t *testing.T, id string) {
	t.Helper()
	if _, err := database.Exec(`UPDATE sms_outbox SET next_attempt_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

// The provider is down (nothing listens) while messages are due: each
// attempt is counted and put off by a backoff that doubles up to its
// longest; once the provider is back on the same address, each message is
// delivered exactly once.
func TestProviderDownThenBack(t *testing.T) {
	drain(t)
	addr := freeAddress(t)
	ids := append(queueCodes(t, 2), queueLookup(t, newPhone()))
	s := newSender(gatewayTo("http://" + addr))
	s.Backoff, s.MaxBackoff = time.Second, 3*time.Second
	res := recordResults(s)
	ctx := context.Background()

	// Each pass stops at its first failure: three passes, one attempt each.
	for pass := 1; pass <= 3; pass++ {
		if n, err := s.SendDue(ctx); err != nil || n != 0 {
			t.Fatalf("pass %d: %d sent, %v", pass, n, err)
		}
		if got := sumAttempts(t, ids); got != pass {
			t.Fatalf("after pass %d: %d attempts recorded, want %d", pass, got, pass)
		}
	}
	for _, id := range ids {
		r := rowOf(t, id)
		if r.Attempts != 1 || r.Accepted || r.Failed || !r.LastError.Valid || r.LastError.String == "" {
			t.Fatalf("SMS %s after one failure: %+v", id, r)
		}
		if strings.Contains(r.LastError.String, r.Phone) || strings.Contains(r.LastError.String, secretCode) {
			t.Errorf("last_error holds personal data: %q", r.LastError.String)
		}
		if w := r.wait(); w <= 500*time.Millisecond || w > time.Second {
			t.Errorf("SMS %s: next attempt in %s, want the first backoff (1s)", id, w)
		}
	}
	// Nothing is due while the backoff runs.
	if n, err := s.SendDue(ctx); err != nil || n != 0 || sumAttempts(t, ids) != 3 {
		t.Fatalf("a pass within the backoff: %d sent, %v, %d attempts; want no attempt", n, err, sumAttempts(t, ids))
	}
	b, err := sms.ReadBacklog(ctx, database)
	if err != nil || b.Pending != 3 || b.Failing != 3 || b.OldestWaiting <= 0 {
		t.Errorf("backlog while the provider is down: %+v, %v; want 3 pending, 3 failing", b, err)
	}
	// The backoff doubles, up to MaxBackoff.
	for i, want := range []time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second} {
		makeDue(t, ids[0])
		if _, err := s.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		r := rowOf(t, ids[0])
		if r.Attempts != i+2 || r.wait() <= want-500*time.Millisecond || r.wait() > want {
			t.Errorf("failure %d: %d attempts, next in %s; want %d and %s", i+2, r.Attempts, r.wait(), i+2, want)
		}
	}
	failures := res.get(sms.Failed)
	if failures != 6 || res.get(sms.Sent) != 0 {
		t.Errorf("Attempted saw %v, want 6 failures", res.n)
	}

	// The provider comes back on the same address.
	g, err := sms.NewStandIn(testKeyID, testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := sms.ReadBacklog(ctx, database); err == nil && b.Pending == 0 {
			break
		}
	}
	cancel()
	<-done
	wantDelivered(t, g, ids)
	for _, id := range ids {
		r := rowOf(t, id)
		want := 2
		if id == ids[0] {
			want = 5
		}
		if r.Attempts != want || r.LastError.Valid {
			t.Errorf("SMS %s: %d attempts, last error %q; want %d, none", id, r.Attempts, r.LastError.String, want)
		}
	}
	if res.get(sms.Sent) != 3 || res.get(sms.Failed) != failures {
		t.Errorf("Attempted saw %v, want 3 sent", res.n)
	}
}

// A sender that dies between the provider's acceptance and the commit of
// accepted_at (the one gap no transaction closes) leaves the message due:
// the next pass sends it again, with the same OutId. The stand-in, like a
// provider that deduplicates by OutId, keeps it once and answers the same
// id; a provider that does not deduplicate would send the applicant a
// second text (a duplicate, with the same provider id, never a loss).
func TestCrashBetweenAcceptanceAndCommit(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	ids := queueCodes(t, 3)
	provider := countCalls(gatewayTo(srv.URL), 0)
	s := newSender(provider)
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
	r := rowOf(t, crashed)
	if r.Accepted || r.Attempts != 0 || params(t, r)["code"] != secretCode {
		t.Fatalf("the crashed message: %+v; want it due as before", r)
	}
	counts, first := received(g)
	if counts[crashed] != 1 {
		t.Fatalf("the stand-in holds the crashed message %d times", counts[crashed])
	}
	if _, err := newSender(provider).SendDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if provider.of(crashed) != 2 {
		t.Errorf("the crashed message was handed to the provider %d times, want twice", provider.of(crashed))
	}
	wantDelivered(t, g, ids)
	if r := rowOf(t, crashed); r.ProviderID.String != first[crashed].ID || r.Attempts != 1 || r.Params != "{}" {
		t.Errorf("the crashed message, sent again: %+v; want the first provider id %s", r, first[crashed].ID)
	}
	for _, id := range ids {
		if id != crashed && provider.of(id) != 1 {
			t.Errorf("SMS %s handed to the provider %d times", id, provider.of(id))
		}
	}
}

// A message the provider refuses for good (an unknown template, a number
// it cannot reach) is marked failed and never tried again; a code's
// parameters go with it.
func TestRefusedForGood(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	unknown := uuid.NewString()
	if _, err := database.Exec(`INSERT INTO sms_outbox (id, purpose, phone, template_code, params)
		VALUES ($1, 'sign_up', $2, 'ZK_NO_SUCH_TEMPLATE', $3)`, unknown, newPhone(), `{"code":"`+secretCode+`"}`); err != nil {
		t.Fatal(err)
	}
	badPhone := queueLookup(t, "12345")
	provider := countCalls(gatewayTo(srv.URL), 0)
	s := newSender(provider)
	res := recordResults(s)
	if n, err := s.SendDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("SendDue: %d sent, %v", n, err)
	}
	for id, code := range map[string]string{unknown: "isv.SMS_TEMPLATE_ILLEGAL", badPhone: "isv.MOBILE_NUMBER_ILLEGAL"} {
		r := rowOf(t, id)
		if !r.Failed || r.Accepted || r.Attempts != 1 || !strings.Contains(r.LastError.String, code) {
			t.Errorf("refused SMS %s: %+v; want failed after 1 attempt with %s", id, r, code)
		}
	}
	if r := rowOf(t, unknown); r.Params != "{}" {
		t.Errorf("a refused code keeps its parameters: %s", r.Params)
	}
	if p := params(t, rowOf(t, badPhone)); p["ticket"] == "" {
		t.Errorf("a refused ticket look-up lost its parameters: %v", p)
	}
	if res.get("sign_up given_up") != 1 || res.get("ticket_lookup given_up") != 1 {
		t.Errorf("Attempted saw %v", res.n)
	}
	makeDue(t, unknown)
	if _, err := s.SendDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if provider.of(unknown) != 1 || provider.of(badPhone) != 1 || rowOf(t, unknown).Attempts != 1 {
		t.Errorf("a refused message was tried again")
	}
	if len(g.Messages("")) != 0 {
		t.Errorf("the stand-in kept a refused message")
	}
	if b, err := sms.ReadBacklog(context.Background(), database); err != nil || b.GivenUp < 2 || b.Pending != 0 {
		t.Errorf("backlog: %+v, %v; want the 2 given up, none pending", b, err)
	}
}

// A row whose parameters are not a JSON object of strings (written by hand:
// Enqueue writes none) can never be sent: it is given up, and does not hold
// up the messages behind it.
func TestUnreadableParametersHoldNothingUp(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	bad := uuid.NewString()
	if _, err := database.Exec(`INSERT INTO sms_outbox (id, purpose, phone, template_code, params, next_attempt_at)
		VALUES ($1, 'ticket_lookup', $2, $3, '{"ticket": 10627000042}', now() - interval '1 hour')`,
		bad, newPhone(), sms.Templates[sms.TicketLookup].Code); err != nil {
		t.Fatal(err)
	}
	good := queueCodes(t, 2)
	s := newSender(gatewayTo(srv.URL))
	for pass := 0; pass < 3; pass++ {
		_, _ = s.SendDue(context.Background())
	}
	if r := rowOf(t, bad); !r.Failed || r.Accepted || !r.LastError.Valid {
		t.Errorf("the unreadable message: %+v; want it given up", r)
	}
	wantDelivered(t, g, good)
}

// A code that could not go within CodeTTL has expired: it is given up
// without being sent, and its parameters emptied. Other messages have no
// such limit.
func TestExpiredCodeIsGivenUp(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	old := queueCodes(t, 1)[0]
	oldLookup := queueLookup(t, newPhone())
	if _, err := database.Exec(`UPDATE sms_outbox SET created_at = now() - interval '11 minutes' WHERE id IN ($1, $2)`, old, oldLookup); err != nil {
		t.Fatal(err)
	}
	fresh := queueCodes(t, 1)[0]
	provider := countCalls(gatewayTo(srv.URL), 0)
	s := newSender(provider)
	res := recordResults(s)
	if n, err := s.SendDue(context.Background()); err != nil || n != 2 {
		t.Fatalf("SendDue: %d sent, %v; want the fresh code and the look-up", n, err)
	}
	r := rowOf(t, old)
	if !r.Failed || r.Accepted || r.Params != "{}" || !strings.Contains(r.LastError.String, "expired") || r.Attempts != 1 {
		t.Errorf("the expired code: %+v", r)
	}
	if provider.of(old) != 0 {
		t.Errorf("the expired code was sent")
	}
	if res.get("sign_up given_up") != 1 || res.get("sign_up sent") != 1 {
		t.Errorf("Attempted saw %v", res.n)
	}
	wantDelivered(t, g, []string{fresh, oldLookup})

	// A shorter CodeTTL, as configured.
	short := queueCodes(t, 1)[0]
	time.Sleep(30 * time.Millisecond)
	s.CodeTTL = 10 * time.Millisecond
	if _, err := s.SendDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := rowOf(t, short); !r.Failed || provider.of(short) != 0 {
		t.Errorf("a code older than CodeTTL: %+v", r)
	}
}

// Deliver sends the one message asked for, now, and nothing else; one
// not due, sent already or held by another sender is left alone.
func TestDeliverSendsJustThatOne(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	ids := queueCodes(t, 4)
	provider := countCalls(gatewayTo(srv.URL), 0)
	s := newSender(provider)
	ctx := context.Background()
	if err := s.Deliver(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, g, ids[1:2])
	for _, id := range []string{ids[0], ids[2], ids[3]} {
		if rowOf(t, id).Accepted || provider.of(id) != 0 {
			t.Errorf("Deliver(%s) sent %s too", ids[1], id)
		}
	}
	if err := s.Deliver(ctx, ids[1]); err != nil || provider.of(ids[1]) != 1 {
		t.Errorf("Deliver of a sent message: %v, %d calls", err, provider.of(ids[1]))
	}
	if err := s.Deliver(ctx, uuid.NewString()); err != nil {
		t.Errorf("Deliver of no message: %v", err)
	}
	// Not due: its backoff runs.
	if _, err := database.Exec(`UPDATE sms_outbox SET next_attempt_at = now() + interval '1 hour' WHERE id = $1`, ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, ids[2]); err != nil || provider.of(ids[2]) != 0 {
		t.Errorf("Deliver of a message not due: %v, %d calls", err, provider.of(ids[2]))
	}
	// Held by another sender: Deliver does not wait for it.
	tx, err := database.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT 1 FROM sms_outbox WHERE id = $1 FOR UPDATE`, ids[3]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Deliver(ctx, ids[3]); err != nil || provider.of(ids[3]) != 0 || time.Since(start) > 2*time.Second {
		t.Errorf("Deliver of a held message: %v, %d calls after %s", err, provider.of(ids[3]), time.Since(start))
	}
	_ = tx.Rollback()
	if err := s.Deliver(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	makeDue(t, ids[2])
	if err := s.Deliver(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, g, ids)
}

// Two senders at once never hand one message to the provider twice (each
// claims with FOR UPDATE SKIP LOCKED and holds it while sending).
func TestTwoSenders(t *testing.T) {
	drain(t)
	g, srv := standIn(t, "")
	ids := queueCodes(t, 30)
	provider := countCalls(gatewayTo(srv.URL), 5*time.Millisecond)
	var wg sync.WaitGroup
	sent := make([]int, 2)
	for i := range sent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := newSender(provider).SendDue(context.Background())
			if err != nil {
				t.Error(err)
			}
			sent[i] = n
		}()
	}
	wg.Wait()
	if sent[0]+sent[1] != len(ids) || sent[0] == 0 || sent[1] == 0 {
		t.Errorf("the senders sent %d and %d of %d; want all, shared", sent[0], sent[1], len(ids))
	}
	for _, id := range ids {
		if n := provider.of(id); n != 1 {
			t.Errorf("SMS %s handed to the provider %d times", id, n)
		}
	}
	wantDelivered(t, g, ids)
}

// A registration's notice goes to the phone bound to its account, else the
// phone on the registration, with the facts of the step; written again for
// the same step, it adds nothing.
func TestNoticeOfARegistration(t *testing.T) {
	drain(t)
	ctx := context.Background()
	r, _ := testenv.Registration(t, database, "张三", status.CountyReview)
	notice := func(seq int, p sms.Purpose) {
		t.Helper()
		tx, err := database.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck
		if err := sms.EnqueueNotice(ctx, tx, r.ID, seq, p); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() []outboxRow {
		t.Helper()
		var ids []string
		if err := database.Select(&ids, `SELECT id FROM sms_outbox WHERE registration_id = $1 ORDER BY seq, created_at`, r.ID); err != nil {
			t.Fatal(err)
		}
		var out []outboxRow
		for _, id := range ids {
			out = append(out, rowOf(t, id))
		}
		return out
	}
	notice(2, sms.PreRegistered)
	notice(2, sms.PreRegistered) // the same step again
	got := rows()
	if len(got) != 1 || got[0].Phone != r.Phone || got[0].Purpose != string(sms.PreRegistered) {
		t.Fatalf("the pre-registration's SMS: %+v", got)
	}
	var window struct {
		Starts time.Time `db:"window_starts_at"`
		Ends   time.Time `db:"window_ends_at"`
	}
	if err := database.Get(&window, `SELECT window_starts_at, window_ends_at FROM registrations WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"area": "武汉市武昌区", "start": sms.Day(window.Starts), "end": sms.Day(window.Ends)}
	if p := params(t, got[0]); len(p) != 3 || p["area"] != want["area"] || p["start"] != want["start"] || p["end"] != want["end"] {
		t.Errorf("parameters %v, want %v", p, want)
	}
	for _, v := range []string{r.Name, r.IDNumber} {
		if strings.Contains(got[0].Params, v) {
			t.Errorf("the SMS's parameters hold %q", v)
		}
	}

	// Bound to the account, a phone takes the notices.
	bound := newPhone()
	if _, err := database.Exec(`UPDATE accounts SET phone = $2 WHERE id = $1`, r.AccountID, bound); err != nil {
		t.Fatal(err)
	}
	notice(3, sms.Withdrawn)
	if got := rows(); len(got) != 2 || got[1].Phone != bound || got[1].Purpose != string(sms.Withdrawn) {
		t.Fatalf("after binding a phone: %+v", got)
	}

	// Sent: the pre-registration's. (A step replaced later retracts its
	// unsent messages: registrations' TestSupersededStepsRetractTheirMail.)
	g, srv := standIn(t, "")
	if err := newSender(gatewayTo(srv.URL)).Deliver(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, g, []string{got[0].ID})
	if text := g.Messages(r.Phone)[0].Text; !strings.Contains(text, "武汉市武昌区自考办") || strings.Contains(text, r.Name) {
		t.Errorf("the pre-registration's text: %q", text)
	}

	// An unknown purpose, or parameters that do not fit, are refused at
	// once, not by the provider hours later.
	tx, err := database.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := sms.Enqueue(ctx, tx, sms.Outgoing{Purpose: "birthday", Phone: bound}); err == nil {
		t.Error("an unknown purpose was written")
	}
	if _, err := sms.Enqueue(ctx, tx, sms.Outgoing{Purpose: sms.SignUp, Phone: bound, Params: map[string]string{"ticket": "1"}}); err == nil {
		t.Error("parameters that do not fit were written")
	}
}
