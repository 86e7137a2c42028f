package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"zikao/internal/catalog"
	"zikao/internal/status"
	"zikao/workflows"
)

func (inv *Invariant) fail(format string, args ...any) {
	inv.Failed = append(inv.Failed, fmt.Sprintf(format, args...))
}

// row is a registration in the read model.
type row struct {
	ID             string  `db:"id"`
	AccountID      int64   `db:"account_id"`
	Kind           string  `db:"kind"`
	Status         string  `db:"status"`
	Ticket         *string `db:"ticket_number"`
	SelectedTicket *string `db:"selected_ticket_number"`
	LastSeq        int     `db:"last_seq"`
	AnnulReason    *string `db:"annulment_reason"`
	IDKey          string  `db:"id_key"` // a digest of the ID number: compared, never shown
	PhotoFileID    *string `db:"photo_file_id"`
	ExamArea       string  `db:"exam_area_code"`
	WindowOfArea   bool    `db:"window_of_area"` // its window is its exam area's for its sitting
	// Online verification (网上验证) and the manual check (人工核验).
	TriesLeft    int     `db:"online_tries_left"`
	OnlineClosed bool    `db:"online_closed"`
	LastResult   *string `db:"online_last_result"`
	ReviewAsked  bool    `db:"identity_review_asked"`
	ReviewReason *string `db:"identity_review_reason"`
}

// tryRow is one recorded try of online verification (online_tries).
type tryRow struct {
	RegistrationID string `db:"registration_id"`
	Seq            int    `db:"seq"`
	ChallengeID    string `db:"challenge_id"`
	Result         string `db:"result"`
	PortraitFileID string `db:"portrait_file_id"`
}

// historyRow is one entry of registration_history.
type historyRow struct {
	RegistrationID string  `db:"registration_id"`
	Seq            int     `db:"seq"`
	Status         string  `db:"status"`
	ByRole         string  `db:"by_role"`
	Note           string  `db:"note"`
	UpdateID       *string `db:"update_id"`
	ByAccountID    *int64  `db:"by_account_id"`
}

func (h historyRow) String() string {
	u := "-"
	if h.UpdateID != nil {
		u = *h.UpdateID
	}
	return fmt.Sprintf("seq %d %s by %s (account %s) update %s", h.Seq, h.Status, h.ByRole, accountOf(h), u)
}

func accountOf(h historyRow) string {
	if h.ByAccountID == nil {
		return "none"
	}
	return fmt.Sprint(*h.ByAccountID)
}

// workflowState is what Temporal says of a registration's workflow.
type workflowState struct {
	Found        bool
	Status       enumspb.WorkflowExecutionStatus
	SearchStatus string
	SearchArea   string         // the ExamArea search attribute
	Result       map[string]any // of a completed workflow (workflows.State, read loosely)
	Err          error          // Temporal did not answer
}

// snapshot is everything the checks read, once the run has settled.
type snapshot struct {
	rows      map[string]row
	history   map[string][]historyRow
	tickets   map[string]string // ticket number → registration id
	enrolled  map[string]bool   // ticket numbers of enrolment records
	workflows map[string]workflowState
	running   []string            // registration ids of running workflows (visibility)
	all       []string            // registration ids of every workflow (visibility)
	tries     map[string][]tryRow // registration id → its recorded online tries, by seq
	fileSums  map[string]string   // file id → SHA-256 (hex): the registrations' photos and the tries' portraits
	areaNames map[string]string   // exam area code → its full name (catalog.FullName)
}

// settle waits (at most limit) until every registration's row and
// workflow agree on being open or closed, so that the checks race neither
// the last steps nor the reconciler (which repairs a disagreement after a
// minute or two). It reports how many still disagree.
func settle(ctx context.Context, database *sqlx.DB, tc client.Client, limit time.Duration, events *eventLog) (int, error) {
	deadline := time.Now().Add(limit)
	for {
		rows, err := readRows(ctx, database)
		if err != nil {
			return 0, err
		}
		pending := 0
		for id, r := range rows {
			running := describe(ctx, tc, id, false).Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			if status.Terminal(r.Status) == running {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return pending, nil
		}
		events.add("settling: %d registration(s) whose row and workflow disagree; waiting (at most %s)", pending, time.Until(deadline).Round(time.Second))
		sleep(ctx, 10*time.Second)
	}
}

// takeSnapshot reads the read model, the tickets and every workflow.
func takeSnapshot(ctx context.Context, database *sqlx.DB, tc client.Client) (*snapshot, error) {
	s := &snapshot{history: map[string][]historyRow{}, tickets: map[string]string{}, enrolled: map[string]bool{}, workflows: map[string]workflowState{},
		tries: map[string][]tryRow{}, fileSums: map[string]string{}, areaNames: map[string]string{}}
	var err error
	if s.rows, err = readRows(ctx, database); err != nil {
		return nil, err
	}
	var hist []historyRow
	if err := database.SelectContext(ctx, &hist, `SELECT registration_id, seq, status, by_role, note, update_id, by_account_id
		FROM registration_history ORDER BY registration_id, seq`); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	for _, h := range hist {
		s.history[h.RegistrationID] = append(s.history[h.RegistrationID], h)
	}
	var tickets []struct {
		Number string `db:"ticket_number"`
		RegID  string `db:"registration_id"`
	}
	if err := database.SelectContext(ctx, &tickets, `SELECT ticket_number, registration_id FROM tickets`); err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	for _, t := range tickets {
		s.tickets[t.Number] = t.RegID
	}
	var legacy []string
	if err := database.SelectContext(ctx, &legacy, `SELECT ticket_number FROM enrolled_records`); err != nil {
		return nil, fmt.Errorf("read enrolment records: %w", err)
	}
	for _, t := range legacy {
		s.enrolled[t] = true
	}
	if err := readOnline(ctx, database, s); err != nil {
		return nil, err
	}
	var areas []catalog.ExamArea
	if err := database.SelectContext(ctx, &areas, `SELECT code, name, city, office_address FROM exam_areas`); err != nil {
		return nil, fmt.Errorf("read exam areas: %w", err)
	}
	for _, a := range areas {
		s.areaNames[a.Code] = a.FullName()
	}
	for id := range s.rows {
		s.workflows[id] = describe(ctx, tc, id, true)
	}
	if s.running, err = listWorkflows(ctx, tc, "WorkflowType = 'Registration' AND ExecutionStatus = 'Running'"); err != nil {
		return nil, err
	}
	if s.all, err = listWorkflows(ctx, tc, "WorkflowType = 'Registration'"); err != nil {
		return nil, err
	}
	return s, nil
}

func readRows(ctx context.Context, database *sqlx.DB) (map[string]row, error) {
	var rows []row
	if err := database.SelectContext(ctx, &rows, `SELECT r.id, r.account_id, r.kind, r.status, r.ticket_number, r.selected_ticket_number, r.last_seq,
		r.annulment_reason, md5(r.id_number) AS id_key, r.photo_file_id::text, r.online_tries_left, r.online_closed, r.online_last_result,
		r.identity_review_asked, r.identity_review_reason, r.exam_area_code,
		(r.window_starts_at = w.starts_at AND r.window_ends_at = w.ends_at) IS TRUE AS window_of_area
		FROM registrations r LEFT JOIN confirmation_windows w
			ON w.exam_area_code = r.exam_area_code AND w.year = r.year AND w.sitting = r.sitting`); err != nil {
		return nil, fmt.Errorf("read registrations: %w", err)
	}
	out := make(map[string]row, len(rows))
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}

// readOnline reads the recorded online tries, and the digests of the
// registrations' photos and of the tries' portraits.
func readOnline(ctx context.Context, database *sqlx.DB, s *snapshot) error {
	var tries []tryRow
	if err := database.SelectContext(ctx, &tries, `SELECT registration_id::text, seq, challenge_id::text, result, portrait_file_id::text
		FROM online_tries ORDER BY registration_id, seq`); err != nil {
		return fmt.Errorf("read online tries: %w", err)
	}
	for _, t := range tries {
		s.tries[t.RegistrationID] = append(s.tries[t.RegistrationID], t)
	}
	var sums []struct {
		ID  string `db:"id"`
		Sum string `db:"sum"`
	}
	if err := database.SelectContext(ctx, &sums, `SELECT id::text, encode(sha256, 'hex') AS sum FROM files
		WHERE id IN (SELECT photo_file_id FROM registrations UNION SELECT portrait_file_id FROM online_tries)`); err != nil {
		return fmt.Errorf("read file digests: %w", err)
	}
	for _, f := range sums {
		s.fileSums[f.ID] = f.Sum
	}
	return nil
}

// describe asks Temporal about a registration's workflow (and its result,
// when withResult and it completed).
func describe(ctx context.Context, tc client.Client, registrationID string, withResult bool) workflowState {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	wid := workflows.WorkflowID(registrationID)
	d, err := tc.DescribeWorkflow(ctx, wid, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return workflowState{}
	}
	if err != nil {
		return workflowState{Err: err}
	}
	ws := workflowState{Found: true, Status: d.Status}
	ws.SearchStatus, _ = d.TypedSearchAttributes.GetKeyword(workflows.StatusKey)
	ws.SearchArea, _ = d.TypedSearchAttributes.GetKeyword(workflows.ExamAreaKey)
	if withResult && d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		var res map[string]any
		if err := tc.GetWorkflow(ctx, wid, "").Get(ctx, &res); err != nil {
			ws.Err = fmt.Errorf("result: %w", err)
		} else {
			ws.Result = res
		}
	}
	return ws
}

// listWorkflows lists the registration ids of the workflows a visibility
// query finds.
func listWorkflows(ctx context.Context, tc client.Client, query string) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list workflows (%s): %w", query, err)
		}
		for _, e := range resp.Executions {
			ids = append(ids, strings.TrimPrefix(e.Execution.WorkflowId, workflows.WorkflowID("")))
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return ids, nil
		}
	}
}

// checks runs every invariant over the snapshot and the clients' runs.
func checks(s *snapshot, runs []*run, st *stats, faults []*fault, planned FaultCounts) []*Invariant {
	return []*Invariant{
		checkTargets(s, runs),
		checkOneEach(s, runs),
		checkTickets(s, runs),
		checkDecisions(s, runs),
		checkAnswers(st),
		checkWorkflows(s),
		checkRunning(s),
		checkFaults(faults, planned),
	}
}

// checkTargets: every registration reached the state its client drove it to.
func checkTargets(s *snapshot, runs []*run) *Invariant {
	inv := &Invariant{Name: "every registration reached the state its client drove it to"}
	reached := 0
	for _, r := range runs {
		rw, ok := s.rows[r.ID]
		switch {
		case r.ID == "":
			inv.fail("%s: no registration (client: %s)", r.Plan, r.Error)
		case !ok:
			inv.fail("%s registration %s: no row in the read model", r.Plan, r.ID)
		case rw.Status != r.Plan.Path.Target || !r.Done:
			inv.fail("%s registration %s: status %s, want %s; client: %s", r.Plan, r.ID, rw.Status, r.Plan.Path.Target, orNone(r.Error))
		default:
			reached++
		}
	}
	inv.Figures = fmt.Sprintf("%d of %d", reached, len(runs))
	return inv
}

// checkOneEach: each applicant account has exactly the one registration
// its client made (a retried submission made no second one).
func checkOneEach(s *snapshot, runs []*run) *Invariant {
	inv := &Invariant{Name: "one registration per applicant: no submission applied twice"}
	byAccount := map[int64][]string{}
	for id, r := range s.rows {
		byAccount[r.AccountID] = append(byAccount[r.AccountID], id)
	}
	for _, r := range runs {
		if r.AccountID == 0 {
			continue
		}
		if ids := byAccount[r.AccountID]; len(ids) > 1 || (r.ID != "" && (len(ids) != 1 || ids[0] != r.ID)) {
			inv.fail("%s: account %d has registrations %v, its client made %s", r.Plan, r.AccountID, ids, orNone(r.ID))
		}
	}
	inv.Figures = fmt.Sprintf("%d registrations in the read model, %d accounts", len(s.rows), len(byAccount))
	return inv
}

// checkTickets: no ticket number issued twice, and every completed
// registration has the one its answer and its workflow gave.
func checkTickets(s *snapshot, runs []*run) *Invariant {
	inv := &Invariant{Name: "no ticket number issued twice"}
	holders := map[string][]string{}
	reactivated := 0
	for id, r := range s.rows {
		if r.Ticket != nil {
			holders[*r.Ticket] = append(holders[*r.Ticket], id)
		}
		checkRowTicket(inv, s, id, r)
		if r.Kind == workflows.KindEnrolled && r.Status == status.Completed {
			reactivated++
		}
	}
	for t, ids := range holders {
		if len(ids) > 1 {
			sort.Strings(ids)
			inv.fail("ticket %s held by %d registrations: %v", t, len(ids), ids)
		}
	}
	for t, id := range s.tickets {
		if r, ok := s.rows[id]; !ok || r.Ticket == nil || *r.Ticket != t {
			inv.fail("ticket %s issued to registration %s, which holds %s", t, id, ticketOf(r))
		}
		if s.enrolled[t] {
			inv.fail("ticket %s issued to registration %s is an enrolment record's number", t, id)
		}
	}
	for _, r := range runs {
		if rw, ok := s.rows[r.ID]; ok && r.Ticket != "" && ticketOf(rw) != r.Ticket {
			inv.fail("registration %s: the on-site check answered ticket %s, the read model holds %s", r.ID, r.Ticket, ticketOf(rw))
		}
	}
	inv.Figures = fmt.Sprintf("%d issued (tickets table), %d enrolment numbers re-activated, %d distinct numbers held; %d enrolment numbers lay inside the issued ranges (skipped by the allocator)",
		len(s.tickets), reactivated, len(holders), legacyInRange(s))
	return inv
}

// legacyInRange counts the enrolment records' numbers that share a prefix
// with issued numbers and lie below the highest of them: numbers the
// allocator had to skip.
func legacyInRange(s *snapshot) int {
	highest := map[string]string{} // prefix (first 7 digits) → highest issued number
	for t := range s.tickets {
		if p := t[:7]; t > highest[p] {
			highest[p] = t
		}
	}
	n := 0
	for t := range s.enrolled {
		if h, ok := highest[t[:7]]; ok && t < h {
			n++
		}
	}
	return n
}

func checkRowTicket(inv *Invariant, s *snapshot, id string, r row) {
	switch {
	case r.Status != status.Completed && r.Ticket != nil:
		inv.fail("registration %s is %s but holds ticket %s", id, r.Status, *r.Ticket)
	case r.Status != status.Completed:
	case r.Ticket == nil:
		inv.fail("registration %s completed without a ticket number", id)
	case r.Kind == workflows.KindEnrolled && (r.SelectedTicket == nil || *r.SelectedTicket != *r.Ticket):
		inv.fail("enrolled registration %s completed with %s, not its selected number", id, *r.Ticket)
	case r.Kind == workflows.KindNew && s.tickets[*r.Ticket] != id:
		inv.fail("registration %s holds %s, issued (tickets table) to %s", id, *r.Ticket, orNone(s.tickets[*r.Ticket]))
	}
}

func ticketOf(r row) string {
	if r.Ticket == nil {
		return "none"
	}
	return *r.Ticket
}

// expectedEntry is a history entry a run must have made.
type expectedEntry struct {
	Status, ByRole string
	AccountID      int64  // the acting account (by_account_id); 0 for the system
	Key            string // the decision's Idempotency-Key; "" for entries no update made
	Optional       bool
}

// expectedHistory is the history a registration must have, from its path
// and its client's log of successful decisions.
func expectedHistory(r *run) []expectedEntry {
	p := r.Plan.Path
	out := []expectedEntry{{Status: firstStatus(p), ByRole: workflows.ByApplicant, AccountID: r.AccountID}}
	if p.CheckRow != "" {
		// A withdrawal (or annulment) may overtake the check's outcome even
		// after the client saw it: a worker killed after writing it, before
		// Temporal committed its workflow task, leaves a step the committed
		// withdrawal replaces.
		overtaken := len(r.Decisions) > 0 && (r.Decisions[0].To == status.Withdrawn || r.Decisions[0].To == status.Annulled)
		out = append(out, expectedEntry{Status: p.CheckRow, ByRole: workflows.BySystem, Optional: p.CheckRowOptional || overtaken})
	}
	for _, d := range r.Decisions {
		out = append(out, expectedEntry{Status: d.To, ByRole: d.ByRole, AccountID: d.AccountID, Key: d.Key})
	}
	return out
}

func (e expectedEntry) matches(h historyRow) bool {
	if h.Status != e.Status || h.ByRole != e.ByRole {
		return false
	}
	if (h.ByAccountID == nil) != (e.AccountID == 0) || (h.ByAccountID != nil && *h.ByAccountID != e.AccountID) {
		return false
	}
	if e.Key == "" {
		return h.UpdateID == nil
	}
	return h.UpdateID != nil && strings.Contains(*h.UpdateID, e.Key)
}

// checkDecisions: the history of each registration holds exactly the
// decisions its client got a success for, each once, in order, and the
// diploma check's own entry; nothing else.
func checkDecisions(s *snapshot, runs []*run) *Invariant {
	inv := &Invariant{Name: "no decision applied twice or lost (history against the clients' logs, each entry by its acting account)"}
	logged, inferred, rows := 0, 0, 0
	for _, r := range runs {
		if r.ID == "" {
			continue
		}
		logged += len(r.Decisions)
		for _, d := range r.Decisions {
			if d.Inferred {
				inferred++
			}
		}
		hist := s.history[r.ID]
		rows += len(hist)
		if problem := compareHistory(expectedHistory(r), hist); problem != "" {
			inv.fail("%s registration %s: %s\n      history: %s\n      client:  %s", r.Plan, r.ID, problem, historyString(hist), decisionsString(r.Decisions))
		}
		if rw, ok := s.rows[r.ID]; ok && len(hist) > 0 {
			if last := hist[len(hist)-1]; last.Status != rw.Status || last.Seq != rw.LastSeq {
				inv.fail("registration %s: row says %s (seq %d), its last history entry %s", r.ID, rw.Status, rw.LastSeq, last)
			}
		}
	}
	inv.Figures = fmt.Sprintf("%d decisions logged by clients (%d inferred from a 409 after a lost answer), %d history entries", logged, inferred, rows)
	return inv
}

// compareHistory says how a history differs from what was expected ("" if
// it does not): entries missing, extra, out of order, or numbered with gaps.
func compareHistory(want []expectedEntry, hist []historyRow) string {
	for i, h := range hist {
		if h.Seq != i+1 {
			return fmt.Sprintf("sequence numbers not 1..%d (entry %d has seq %d)", len(hist), i+1, h.Seq)
		}
	}
	i := 0
	for _, e := range want {
		if i < len(hist) && e.matches(hist[i]) {
			i++
			continue
		}
		if e.Optional {
			continue
		}
		if i < len(hist) {
			return fmt.Sprintf("entry seq %d is %s, want %s by %s%s", hist[i].Seq, hist[i], e.Status, e.ByRole, keyNote(e))
		}
		return fmt.Sprintf("missing entry %s by %s%s (decision lost)", e.Status, e.ByRole, keyNote(e))
	}
	if i < len(hist) {
		return fmt.Sprintf("%d extra entries from seq %d (applied twice or not asked for)", len(hist)-i, hist[i].Seq)
	}
	return ""
}

func keyNote(e expectedEntry) string {
	note := fmt.Sprintf(" (account %d)", e.AccountID)
	if e.AccountID == 0 {
		note = " (no account)"
	}
	if e.Key == "" {
		return note
	}
	return note + " with key " + e.Key
}

func historyString(hist []historyRow) string {
	parts := make([]string, len(hist))
	for i, h := range hist {
		parts[i] = h.String()
	}
	return strings.Join(parts, "; ")
}

func decisionsString(ds []decision) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		inf := ""
		if d.Inferred {
			inf = " (inferred)"
		}
		parts[i] = fmt.Sprintf("%s key %s → %s after %d attempt(s)%s", d.Update, d.Key, d.To, d.Attempts, inf)
	}
	return orNone(strings.Join(parts, "; "))
}

// checkAnswers: every success answer showed the step it acknowledged.
func checkAnswers(st *stats) *Invariant {
	inv := &Invariant{Name: "every success answer shows the step it acknowledged"}
	st.mu.Lock()
	defer st.mu.Unlock()
	inv.Failed = append(inv.Failed, st.anomalies...)
	inv.Figures = fmt.Sprintf("%d requests", st.requests)
	return inv
}

// checkWorkflows: read model and workflow agree for every registration.
func checkWorkflows(s *snapshot) *Invariant {
	inv := &Invariant{Name: "read model and workflow agree (Describe of every registration's workflow)"}
	closed, open := 0, 0
	for id, r := range s.rows {
		w := s.workflows[id]
		final := status.Terminal(r.Status)
		switch {
		case w.Err != nil:
			inv.fail("registration %s (%s): Temporal did not answer: %v", id, r.Status, w.Err)
			continue
		case !w.Found:
			inv.fail("registration %s (%s): no workflow", id, r.Status)
			continue
		case final && w.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			inv.fail("registration %s is %s but its workflow still runs", id, r.Status)
		case final && w.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			inv.fail("registration %s is %s but its workflow ended %s", id, r.Status, w.Status)
		case !final && w.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			inv.fail("registration %s is open (%s) but its workflow ended %s", id, r.Status, w.Status)
		}
		if w.SearchStatus != r.Status {
			inv.fail("registration %s is %s, its workflow's RegistrationStatus %q", id, r.Status, w.SearchStatus)
		}
		if w.Result != nil {
			checkResult(inv, id, r, w.Result)
		}
		if w.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			open++
		} else {
			closed++
		}
	}
	inv.Figures = fmt.Sprintf("%d workflows described: %d closed, %d running", len(s.rows), closed, open)
	return inv
}

// checkResult compares a completed workflow's result (workflows.State:
// its status, and its sequence number or ticket number where it has them)
// with the row.
func checkResult(inv *Invariant, id string, r row, res map[string]any) {
	if st, _ := res["Status"].(string); st != r.Status {
		inv.fail("registration %s is %s, its workflow ended with %q", id, r.Status, st)
	}
	if seq, ok := res["Seq"].(float64); ok && int(seq) != r.LastSeq {
		inv.fail("registration %s has last_seq %d, its workflow ended at seq %d", id, r.LastSeq, int(seq))
	}
	if t, _ := res["TicketNumber"].(string); t != "" && t != ticketOf(r) {
		inv.fail("registration %s holds ticket %s, its workflow returned %s", id, ticketOf(r), t)
	}
}

// checkRunning: no workflow runs whose registration is final or missing,
// and no workflow exists without a registration.
func checkRunning(s *snapshot) *Invariant {
	inv := &Invariant{Name: "no workflow left running that should not be"}
	for _, id := range s.running {
		if r, ok := s.rows[id]; !ok || status.Terminal(r.Status) {
			inv.fail("workflow of %s runs, its registration is %s", id, rowStatus(s, id))
		}
	}
	for _, id := range s.all {
		if _, ok := s.rows[id]; !ok {
			inv.fail("workflow of %s has no registration row", id)
		}
	}
	inv.Figures = fmt.Sprintf("%d running, %d workflows listed", len(s.running), len(s.all))
	return inv
}

func rowStatus(s *snapshot, id string) string {
	if r, ok := s.rows[id]; ok {
		return r.Status
	}
	return "missing"
}

// checkFaults: every planned fault was injected and undone, and the API
// became healthy after it.
func checkFaults(faults []*fault, planned FaultCounts) *Invariant {
	inv := &Invariant{Name: "every planned fault injected and recovered from"}
	got := map[faultKind]int{}
	for _, f := range faults {
		if f.Err != nil {
			inv.fail("%s %s: %v", f.Kind, f.Target, f.Err)
			continue
		}
		got[f.Kind]++
	}
	var parts []string
	for _, k := range faultKinds {
		if got[k] < planned.of(k) {
			inv.fail("%s: %d of %d injected", k, got[k], planned.of(k))
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d", k, got[k], planned.of(k)))
	}
	inv.Figures = strings.Join(parts, ", ")
	return inv
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
