package chaos

import (
	"fmt"
	"strings"

	"zikao/internal/mail"
	"zikao/internal/status"
	"zikao/workflows"
)

// checkAnnulments: every registration its client had annulled (作废) is
// closed by the office that decided — exactly one annulment entry, the
// last, by that reviewer's role and account, with that decision's key —
// shows the reason, and its applicant got the e-mail of that step (in the
// outbox once, accepted, arrived); no other registration has any of it;
// and after each annulment of the real person's ID number, the real person
// registered it from another account and completed with a ticket number.
// (Terminal state and closed workflow: the read-model and workflow checks.)
func checkAnnulments(s *snapshot, runs []*run, outbox []outboxRow, copies map[string]int) *Invariant {
	inv := &Invariant{Name: "annulments: by the office that decided (its account recorded), one annulment step, its reason, its e-mail delivered; the ID number free for the real person"}
	mails := map[string][]outboxRow{} // registration id → its "annulled" e-mails
	for _, o := range outbox {
		if o.Kind == string(mail.Annulled) {
			mails[o.RegistrationID] = append(mails[o.RegistrationID], o)
		}
	}
	by := map[string]int{}
	superseded, realPeople := 0, 0
	for _, r := range runs {
		rw, ok := s.rows[r.ID]
		if r.ID == "" || !ok {
			continue // checkTargets reports it
		}
		hist := s.history[r.ID]
		entries := 0
		for _, h := range hist {
			if h.Status == status.Annulled {
				entries++
			}
		}
		if r.Plan.Path.Target != status.Annulled {
			if entries > 0 || rw.AnnulReason != nil || len(mails[r.ID]) > 0 {
				inv.fail("%s registration %s was not annulled by its client, yet has %d annulment entries, reason set %v, %d annulment e-mails",
					r.Plan, r.ID, entries, rw.AnnulReason != nil, len(mails[r.ID]))
			}
			continue
		}
		var d *decision
		for i := range r.Decisions {
			if r.Decisions[i].Update == workflows.UpdateAnnul {
				d = &r.Decisions[i]
			}
		}
		switch {
		case rw.Status != status.Annulled:
			inv.fail("%s registration %s is %s, want annulled", r.Plan, r.ID, rw.Status)
			continue
		case d == nil:
			inv.fail("%s registration %s is annulled, but its client got no success for the annulment (client: %s)", r.Plan, r.ID, orNone(r.Error))
			continue
		case entries != 1:
			inv.fail("%s registration %s has %d annulment entries, want one\n      history: %s", r.Plan, r.ID, entries, historyString(hist))
		}
		last := hist[len(hist)-1] // rw is annulled: checkDecisions compares it with the last entry
		switch {
		case last.Status != status.Annulled:
			inv.fail("%s registration %s: its history ends in %s, not annulled", r.Plan, r.ID, last)
			continue
		case last.ByRole != d.ByRole || last.ByAccountID == nil || *last.ByAccountID != d.AccountID:
			inv.fail("%s registration %s: the annulment entry is %s, want by %s (account %d)", r.Plan, r.ID, last, d.ByRole, d.AccountID)
		case last.UpdateID == nil || !strings.Contains(*last.UpdateID, d.Key):
			inv.fail("%s registration %s: the annulment entry %s is not the decision with key %s", r.Plan, r.ID, last, d.Key)
		}
		if rw.AnnulReason == nil || *rw.AnnulReason != annulReason {
			inv.fail("%s registration %s: annulment_reason is not the reason given (set: %v)", r.Plan, r.ID, rw.AnnulReason != nil)
		}
		found := false
		for _, m := range mails[r.ID] {
			switch {
			case m.Seq != last.Seq && m.Accepted:
				superseded++ // written by a workflow task Temporal never committed, sent before it was replaced
			case m.Seq != last.Seq:
				inv.fail("registration %s: an unsent annulment e-mail of step %d, which is not its annulment (seq %d)", r.ID, m.Seq, last.Seq)
			case !m.Accepted:
				inv.fail("registration %s: the annulment e-mail was never accepted by the SMTP server", r.ID)
				found = true
			case copies[m.ID] == 0:
				inv.fail("registration %s: the annulment e-mail (outbox %s) never arrived", r.ID, m.ID)
				found = true
			default:
				found = true
			}
		}
		if !found {
			inv.fail("registration %s: no annulment e-mail for its annulment (seq %d) in the outbox", r.ID, last.Seq)
		}
		by[d.ByRole]++
		if r.Then != nil {
			if checkRealPerson(inv, s, r, rw) {
				realPeople++
			}
		}
	}
	inv.Figures = fmt.Sprintf("%d annulled (county office %d, provincial office %d), %d annulment e-mails of superseded steps sent as well; %d real people registered the freed ID number and completed",
		by[workflows.ByCountyReviewer]+by[workflows.ByProvincialReviewer], by[workflows.ByCountyReviewer], by[workflows.ByProvincialReviewer], superseded, realPeople)
	return inv
}

// checkRealPerson checks that after the annulment of r, the real person
// registered the same ID number from another account and completed with a
// ticket number (its history and ticket: the other checks).
func checkRealPerson(inv *Invariant, s *snapshot, r *run, annulled row) bool {
	t := r.Then
	tr, ok := s.rows[t.ID]
	switch {
	case t.ID == "":
		inv.fail("%s: the real person made no registration after the annulment of %s (client: %s)", t.Plan, r.ID, orNone(t.Error))
	case !ok:
		inv.fail("%s registration %s: no row in the read model", t.Plan, t.ID)
	case tr.Status != status.Completed || tr.Ticket == nil:
		inv.fail("%s registration %s is %s with ticket %s, want completed with one (client: %s)", t.Plan, t.ID, tr.Status, ticketOf(tr), orNone(t.Error))
	case tr.IDKey != annulled.IDKey:
		inv.fail("%s registration %s does not have the ID number of the annulled %s", t.Plan, t.ID, r.ID)
	case tr.AccountID == annulled.AccountID:
		inv.fail("%s registration %s was made by the account of the annulled %s", t.Plan, t.ID, r.ID)
	default:
		return true
	}
	return false
}
