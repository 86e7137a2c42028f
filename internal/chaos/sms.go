package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/mail"
	"zikao/internal/sms"
	"zikao/internal/status"
	"zikao/workflows"
)

// smsGateway is the run's SMS provider: the stand-in (sms.StandIn) served
// in this process on a loopback port, keeping what it accepted in the run
// folder, so that a fault can stop it and start it again on the same
// address and file. It counts its answers OK by OutId: more than one for
// an OutId is a message sent again (a sender killed between the
// acceptance and its commit, or an answer lost), which the stand-in keeps
// once.
type smsGateway struct {
	addr, file    string
	keyID, secret string

	mu      sync.Mutex
	standIn *sms.StandIn
	server  *http.Server
	oks     map[string]int // OutId → answers OK
	okTimes []time.Time    // of every answer OK
}

// startSMSGateway serves the stand-in on a free loopback port.
func startSMSGateway(dir, keyID, secret string) (*smsGateway, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &smsGateway{addr: l.Addr().String(), file: filepath.Join(dir, "sms-gateway.jsonl"), keyID: keyID, secret: secret,
		oks: map[string]int{}}
	if err := g.serve(l); err != nil {
		l.Close()
		return nil, err
	}
	return g, nil
}

// URL is where the senders reach it (ZIKAO_SMS_URL).
func (g *smsGateway) URL() string { return "http://" + g.addr }

func (g *smsGateway) serve(l net.Listener) error {
	st, err := sms.NewStandIn(g.keyID, g.secret, g.file)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: g.counting(st), ReadHeaderTimeout: 10 * time.Second}
	g.mu.Lock()
	g.standIn, g.server = st, srv
	g.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

// counting passes requests to h and counts its answers OK by OutId.
func (g *smsGateway) counting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != sms.SendPath {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		var req struct {
			OutID string `json:"OutId"`
		}
		var answer struct {
			Code string `json:"Code"`
		}
		if json.Unmarshal(body, &req) == nil && json.Unmarshal(rec.body.Bytes(), &answer) == nil && answer.Code == "OK" {
			g.mu.Lock()
			g.oks[req.OutID]++
			g.okTimes = append(g.okTimes, time.Now())
			g.mu.Unlock()
		}
		maps.Copy(w.Header(), rec.header)
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// recorder keeps an answer until it is counted.
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// stop closes the server, dropping the requests in flight (a message kept
// before its answer was lost is sent again with its OutId), and the
// stand-in's file.
func (g *smsGateway) stop() {
	g.mu.Lock()
	srv, st := g.server, g.standIn
	g.server = nil
	g.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	if st != nil {
		_ = st.Close()
	}
}

// restart stops the stand-in, leaves it down, and starts it again on the
// same address and file (what it accepted before is read back from it).
func (g *smsGateway) restart(ctx context.Context, down time.Duration) error {
	g.stop()
	sleep(ctx, down)
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if l, err = net.Listen("tcp", g.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", g.addr, err)
	}
	if err := g.serve(l); err != nil {
		l.Close()
		return fmt.Errorf("start the SMS gateway stand-in again: %w", err)
	}
	return nil
}

// received lists what the stand-in accepted.
func (g *smsGateway) received() []sms.Received {
	g.mu.Lock()
	st := g.standIn
	g.mu.Unlock()
	if st == nil {
		return nil
	}
	return st.Messages("")
}

// answersOK copies the count of answers OK by OutId, and their times.
func (g *smsGateway) answersOK() (map[string]int, []time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.oks), slices.Clone(g.okTimes)
}

// restartSMS stops the SMS gateway stand-in, leaves it down 4–8 s (the
// senders' attempts fail meanwhile and are retried after their backoff)
// and starts it again on the same address and file.
func (s *stack) restartSMS(ctx context.Context, f *fault, rng *rand.Rand) error {
	down := 4*time.Second + time.Duration(rng.IntN(4000))*time.Millisecond
	f.Target = fmt.Sprintf("SMS gateway stand-in, down %s", down.Round(100*time.Millisecond))
	return s.sms.restart(ctx, down)
}

// smsRow is a row of the SMS outbox (its phone only compared, never shown).
type smsRow struct {
	ID             string  `db:"id"`
	RegistrationID *string `db:"registration_id"`
	Purpose        string  `db:"purpose"`
	Seq            *int    `db:"seq"`
	Phone          string  `db:"phone"`
	WantPhone      *string `db:"want_phone"` // the account's bound phone, else the registration's
	Template       string  `db:"template_code"`
	Attempts       int     `db:"attempts"`
	Accepted       bool    `db:"accepted"`
	Failed         bool    `db:"failed"`
	LastError      *string `db:"last_error"`
	ProviderID     *string `db:"provider_message_id"`
}

// notice tells a registration's step's SMS (beside its e-mail).
func (r smsRow) notice() bool { return r.RegistrationID != nil && r.Seq != nil }

// readSMSOutbox waits (within limit) until the senders have sent or given
// up every SMS, and reads the outbox.
func readSMSOutbox(ctx context.Context, database *sqlx.DB, limit time.Duration) ([]smsRow, error) {
	for deadline := time.Now().Add(limit); ; time.Sleep(time.Second) {
		var pending int
		if err := database.GetContext(ctx, &pending, `SELECT count(*) FROM sms_outbox WHERE accepted_at IS NULL AND failed_at IS NULL`); err != nil {
			return nil, fmt.Errorf("read the SMS outbox: %w", err)
		}
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	var rows []smsRow
	err := database.SelectContext(ctx, &rows, `
		SELECT o.id::text, o.registration_id::text, o.purpose, o.seq, o.phone, COALESCE(a.phone, r.phone) AS want_phone, o.template_code,
			o.attempts, o.accepted_at IS NOT NULL AS accepted, o.failed_at IS NOT NULL AS failed, o.last_error, o.provider_message_id
		FROM sms_outbox o LEFT JOIN registrations r ON r.id = o.registration_id LEFT JOIN accounts a ON a.id = r.account_id
		ORDER BY o.registration_id, o.seq`)
	if err != nil {
		return nil, fmt.Errorf("read the SMS outbox: %w", err)
	}
	return rows, nil
}

// checkSMS waits until the SMS outbox is delivered and compares it with
// what the stand-in accepted and with the e-mails.
// It also returns the SMS outbox and what the stand-in accepted.
func checkSMS(ctx context.Context, database *sqlx.DB, g *smsGateway, s *snapshot, mails []outboxRow, limit time.Duration) (*Invariant, []smsRow, []sms.Received, error) {
	rows, err := readSMSOutbox(ctx, database, limit)
	if err != nil {
		return nil, nil, nil, err
	}
	oks, _ := g.answersOK()
	received := g.received()
	return compareSMS(rows, received, oks, mails, s), rows, received, nil
}

// noticeStatus is the status of the step that sends each kind of e-mail
// and its SMS.
var noticeStatus = map[string]string{
	string(mail.Rejected): status.AwaitingReport, string(mail.PreRegistered): status.PreRegistered,
	string(mail.IdentityRefused): status.PreRegistered, string(mail.Completed): status.Completed, string(mail.Expired): status.Expired,
	string(mail.Withdrawn): status.Withdrawn, string(mail.Annulled): status.Annulled,
}

// committed tells whether the history holds the step of a message: its
// seq with the status its kind reports — for an area change's, an entry of
// that change (it keeps the status), and no other message's step is one.
// A message of another step was written by a workflow task Temporal never
// committed, and replaced.
func committed(s *snapshot, registrationID, kind string, seq int) bool {
	for _, h := range s.history[registrationID] {
		if h.Seq == seq {
			if kind == string(mail.AreaChanged) {
				return byUpdate(h, workflows.UpdateChangeExamArea)
			}
			return h.Status == noticeStatus[kind] && !byUpdate(h, workflows.UpdateChangeExamArea)
		}
	}
	return false
}

// noticeKey names one registration's step's message of a kind.
type noticeKey struct {
	registrationID, kind string
	seq                  int
}

// compareSMS: every SMS was accepted by the provider (none given up: the
// run sends none it should refuse), each accepted one is at the stand-in
// exactly once (by OutId = the outbox row's id) under the provider id
// recorded, for the phone and template of its row; a step's SMS goes to the
// account's bound phone, else the registration's, and a completion's
// carries the ticket number; and the SMS of the steps match the e-mails:
// every e-mail of a step has the SMS of the same registration, purpose and
// step, and every SMS its e-mail — but for a step Temporal never committed,
// whose e-mail (or SMS) went before the step was replaced and the other
// was retracted, which is counted.
func compareSMS(rows []smsRow, received []sms.Received, oks map[string]int, mails []outboxRow, s *snapshot) *Invariant {
	inv := &Invariant{Name: "every SMS delivered once, beside its e-mail (the SMS outbox against the provider's stand-in and the e-mails)"}
	kept, byOut := map[string]int{}, map[string]sms.Received{}
	for _, m := range received {
		kept[m.OutID]++
		byOut[m.OutID] = m
	}
	ids := map[string]bool{}
	smsBy := map[noticeKey]smsRow{}
	purposes := map[string]int{}
	accepted, pending, givenUp, attempts, failedAttempts := 0, 0, 0, 0, 0
	for _, r := range rows {
		ids[r.ID] = true
		purposes[r.Purpose]++
		attempts += r.Attempts
		got := byOut[r.ID]
		switch {
		case r.Failed:
			givenUp++
			inv.fail("SMS %s (%s) given up after %d attempt(s): %s", r.ID, r.Purpose, r.Attempts, orNone(deref(r.LastError)))
		case !r.Accepted:
			pending++
		case kept[r.ID] == 0:
			inv.fail("SMS %s (%s) is marked accepted but the stand-in never received it", r.ID, r.Purpose)
		case kept[r.ID] > 1:
			inv.fail("SMS %s (%s) kept %d times by the stand-in", r.ID, r.Purpose, kept[r.ID])
		case deref(r.ProviderID) != got.ID:
			inv.fail("SMS %s (%s): provider id %q recorded, the stand-in's is %q", r.ID, r.Purpose, deref(r.ProviderID), got.ID)
		case got.Phone != r.Phone || got.Template != r.Template:
			inv.fail("SMS %s (%s): the stand-in received it for another phone or template (%s)", r.ID, r.Purpose, got.Template)
		case !strings.HasPrefix(got.Text, "【"+sms.DefaultSignName+"】"):
			inv.fail("SMS %s (%s): its text does not begin with the signature", r.ID, r.Purpose)
		default:
			accepted++
			failedAttempts += r.Attempts - 1
		}
		if !r.notice() {
			continue
		}
		smsBy[noticeKey{*r.RegistrationID, r.Purpose, *r.Seq}] = r
		if r.WantPhone == nil || r.Phone != *r.WantPhone {
			inv.fail("registration %s: its %s SMS of step %d goes to a phone neither its account's nor its own", *r.RegistrationID, r.Purpose, *r.Seq)
		}
		if rw, ok := s.rows[*r.RegistrationID]; ok && r.Purpose == string(sms.Completed) && r.Accepted && rw.Ticket != nil &&
			!strings.Contains(got.Text, *rw.Ticket) {
			inv.fail("registration %s: its completion's SMS does not carry its ticket number", *r.RegistrationID)
		}
	}
	if pending > 0 {
		inv.fail("%d of %d SMS still neither accepted by the provider nor given up", pending, len(rows))
	}
	orphans := 0 // accepted for a row retracted before its acceptance was committed
	for out := range kept {
		if !ids[out] {
			orphans++
		}
	}
	again := 0
	for id, n := range oks {
		if n > 1 && ids[id] {
			again++
		}
	}

	mailBy := map[noticeKey]outboxRow{}
	for _, m := range mails {
		mailBy[noticeKey{m.RegistrationID, m.Kind, m.Seq}] = m
	}
	paired := map[string]int{}
	mailAlone, smsAlone := 0, 0
	for k, m := range mailBy {
		_, ok := smsBy[k]
		switch {
		case ok:
			paired[k.kind]++
		case m.Accepted && !committed(s, k.registrationID, k.kind, k.seq):
			mailAlone++
		default:
			inv.fail("registration %s: the %s e-mail of step %d has no SMS", k.registrationID, k.kind, k.seq)
		}
	}
	for k, r := range smsBy {
		_, ok := mailBy[k]
		switch {
		case ok:
		case r.Accepted && !committed(s, k.registrationID, k.kind, k.seq):
			smsAlone++
		default:
			inv.fail("registration %s: an SMS %s of step %d without its e-mail", k.registrationID, k.kind, k.seq)
		}
	}
	var kinds []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(paired)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, paired[k]))
		total += paired[k]
	}
	var byPurpose []string
	for _, p := range slices.Sorted(maps.Keys(purposes)) {
		byPurpose = append(byPurpose, fmt.Sprintf("%s %d", p, purposes[p]))
	}
	inv.Figures = fmt.Sprintf("%d SMS in the outbox (%s), %d accepted by the provider, %d given up; %d attempts (%d failed and retried); "+
		"the stand-in holds %d, each accepted SMS once; %d sent again with the same OutId after a kill or a lost answer (kept once); "+
		"%d e-mails of steps each with its SMS (%s); %d e-mails and %d SMS of superseded steps sent without the other; %d received for rows retracted before their acceptance was committed",
		len(rows), orNone(strings.Join(byPurpose, ", ")), accepted, givenUp, attempts, failedAttempts, len(received), again,
		total, orNone(strings.Join(kinds, ", ")), mailAlone, smsAlone, orphans)
	return inv
}

// smsSenders counts, from each worker's log, the starts of its SMS sender
// and the SMS it sent: a worker started again after a kill must start its
// sender again.
func smsSenders(workers []*proc) *Invariant {
	inv := &Invariant{Name: "every start of a worker started its SMS sender (the workers started again after a kill deliver SMS too)"}
	var parts []string
	for _, w := range workers {
		log, err := os.ReadFile(w.logPath)
		if err != nil {
			inv.fail("%s: read its log: %v", w.name, err)
			continue
		}
		const start, accepted = `msg="SMS sender started"`, `msg="SMS accepted by the provider"`
		started, sent := strings.Count(string(log), start), strings.Count(string(log), accepted)
		if starts := w.Starts(); started != starts {
			inv.fail("%s was started %d times, its SMS sender %d times", w.name, starts, started)
		}
		last := string(log)[max(strings.LastIndex(string(log), start), 0):]
		parts = append(parts, fmt.Sprintf("%s: %d starts, %d SMS sent (%d since its last start)", w.name, w.Starts(), sent,
			strings.Count(last, accepted)))
	}
	inv.Figures = strings.Join(parts, "; ")
	return inv
}
