package chaos

import (
	"fmt"
	"slices"
	"strings"

	"zikao/internal/mail"
	"zikao/internal/status"
	"zikao/workflows"
)

// The invariants of online identity verification (网上验证) and of the
// office's manual check (人工核验).

// checkOnline checks the online registrations: their tries, their end and
// their e-mails.
func checkOnline(s *snapshot, runs []*run, outbox []outboxRow, copies map[string]int, st *stats) []*Invariant {
	st.mu.Lock()
	unavailable, renewed := st.retries[retryIdentity], st.retries[retryChallenge]
	st.mu.Unlock()
	return []*Invariant{
		checkTries(s, runs, unavailable, renewed),
		checkOnlineEnds(s, runs),
		checkOnlineMail(s, runs, outbox, copies),
	}
}

// isTry tells a history entry that records an online try.
func isTry(h historyRow) bool {
	return h.UpdateID != nil && strings.HasPrefix(*h.UpdateID, workflows.UpdateOnlineTry+"/")
}

// byUpdate tells a history entry made by an update of that name.
func byUpdate(h historyRow, update string) bool {
	return h.UpdateID != nil && strings.HasPrefix(*h.UpdateID, update+"/")
}

// loggedTries are the tries a client was answered 200 for (or inferred), in order.
func loggedTries(r *run) []decision {
	var out []decision
	for _, d := range r.Decisions {
		if d.Update == workflows.UpdateOnlineTry {
			out = append(out, d)
		}
	}
	return out
}

// checkTries: for every online registration, the tries used in the read
// model (3 − online_tries_left) are the failed tries its client was
// answered 200 for; every try the client logged is recorded once — one
// history entry with its key, one online_tries row at that entry with its
// result — and nothing else is; each try used its own challenge; the last
// result is the last try's. No other registration has any try.
func checkTries(s *snapshot, runs []*run, unavailable, renewed int) *Invariant {
	inv := &Invariant{Name: "online tries: tries used (3 − online_tries_left) = failed tries answered 200; online_tries = the history's try entries = the clients' tries"}
	online, recorded, used, failedLogged := 0, 0, 0, 0
	results := map[string]int{}
	onlineIDs := map[string]bool{}
	for _, r := range runs {
		rw, ok := s.rows[r.ID]
		if r.ID == "" || !ok || !r.Plan.Path.online() {
			continue // checkTargets reports a missing registration
		}
		onlineIDs[r.ID] = true
		online++
		logged := loggedTries(r)
		failed := 0
		for _, d := range logged {
			if usesATry(d.Result) {
				failed++
			}
		}
		failedLogged += failed
		used += workflows.MaxOnlineTries - rw.TriesLeft
		if got := workflows.MaxOnlineTries - rw.TriesLeft; got != failed {
			inv.fail("%s registration %s: %d tries used in the read model (online_tries_left %d), its client was answered 200 for %d failed tries",
				r.Plan, r.ID, got, rw.TriesLeft, failed)
		}
		tries := s.tries[r.ID]
		recorded += len(tries)
		for _, t := range tries {
			results[t.Result]++
		}
		if problem := compareTries(logged, s.history[r.ID], tries); problem != "" {
			inv.fail("%s registration %s: %s\n      history: %s\n      client:  %s", r.Plan, r.ID, problem, historyString(s.history[r.ID]), decisionsString(r.Decisions))
		}
		if len(tries) > 0 && deref(rw.LastResult) != tries[len(tries)-1].Result {
			inv.fail("%s registration %s: online_last_result %s, its last try's result %s", r.Plan, r.ID, orNone(deref(rw.LastResult)), tries[len(tries)-1].Result)
		}
		closed := failed == workflows.MaxOnlineTries || slices.ContainsFunc(logged, func(d decision) bool { return d.Result == workflows.ResultNotInRecords })
		if closed && !rw.OnlineClosed {
			inv.fail("%s registration %s: online verification open after %d failed tries (not_in_records: %v)", r.Plan, r.ID, failed, r.Plan.Path.notInRecords())
		}
	}
	for id, tries := range s.tries {
		if !onlineIDs[id] {
			inv.fail("registration %s (%s) has %d online tries its client never made", id, rowStatus(s, id), len(tries))
		}
	}
	for id, rw := range s.rows {
		if !onlineIDs[id] && (rw.TriesLeft != workflows.MaxOnlineTries || rw.LastResult != nil || rw.ReviewAsked) {
			inv.fail("registration %s (%s): no online try was made, yet online_tries_left %d, last result %s, manual check asked %v",
				id, rw.Status, rw.TriesLeft, orNone(deref(rw.LastResult)), rw.ReviewAsked)
		}
	}
	inv.Figures = fmt.Sprintf("%d online registrations: %d tries recorded (match %d, face_mismatch %d, liveness_failed %d, not_in_records %d); %d tries used in the read model = %d failed tries answered 200; %d answers 503 verification_unavailable sent again with the same challenge and key, %d new challenges after 409 challenge_expired",
		online, recorded, results[workflows.ResultMatch], results[workflows.ResultFaceMismatch], results[workflows.ResultLivenessFailed],
		results[workflows.ResultNotInRecords], used, failedLogged, unavailable, renewed)
	return inv
}

// compareTries says how the recorded tries differ from the client's ("" if
// they do not): each logged try has exactly one history entry with its key
// and one online_tries row at that entry's seq with its result; every try
// entry of the history has its row and every row its try entry; no
// challenge serves two tries.
func compareTries(logged []decision, hist []historyRow, tries []tryRow) string {
	rowAt := map[int]tryRow{}
	challenges := map[string]int{}
	for _, t := range tries {
		rowAt[t.Seq] = t
		challenges[t.ChallengeID]++
	}
	entries := map[int]historyRow{}
	for _, h := range hist {
		if isTry(h) {
			entries[h.Seq] = h
		}
	}
	for _, t := range tries {
		if _, ok := entries[t.Seq]; !ok {
			return fmt.Sprintf("online_tries row at seq %d (%s) without a try entry in the history", t.Seq, t.Result)
		}
	}
	for seq := range entries {
		if _, ok := rowAt[seq]; !ok {
			return fmt.Sprintf("the history's try entry seq %d has no online_tries row", seq)
		}
	}
	for c, n := range challenges {
		if n > 1 {
			return fmt.Sprintf("challenge %s used by %d tries", c, n)
		}
	}
	for _, d := range logged {
		var seqs []int
		for seq, h := range entries {
			if strings.Contains(*h.UpdateID, d.Key) {
				seqs = append(seqs, seq)
			}
		}
		switch {
		case len(seqs) == 0:
			return fmt.Sprintf("the try with key %s (%s) is not in the history (lost)", d.Key, d.Result)
		case len(seqs) > 1:
			return fmt.Sprintf("the try with key %s is recorded %d times", d.Key, len(seqs))
		case rowAt[seqs[0]].Result != d.Result:
			return fmt.Sprintf("the try with key %s was answered %s, recorded %s", d.Key, d.Result, rowAt[seqs[0]].Result)
		}
	}
	if len(entries) != len(logged) {
		return fmt.Sprintf("%d tries recorded, the client made %d", len(entries), len(logged))
	}
	return ""
}

// completedBy tells how the client completed a registration: "online" (a
// match), "manual" (the office's manual check approved), "onsite", or ""
// when it did not.
func completedBy(r *run) string {
	for _, d := range r.Decisions {
		if d.To != status.Completed {
			continue
		}
		switch d.Update {
		case workflows.UpdateOnlineTry:
			return "online"
		case workflows.UpdateIdentityReview:
			return "manual"
		case workflows.UpdateOnsiteCheck:
			return "onsite"
		}
	}
	return ""
}

// checkOnlineEnds: no registration holds two tickets; an online
// registration completed has exactly one ticket (a new one: one row in
// tickets, its own) and the others none; completed online or by the manual
// check, its photo is the last try's portrait — the very bytes the client
// sent — and on site, the on-site photo; a manual check asked for once
// ends as driven: completed by the deciding office, refused (online closed,
// the reason shown, then on site), withdrawn or annulled.
func checkOnlineEnds(s *snapshot, runs []*run) *Invariant {
	inv := &Invariant{Name: "online verification's end: one ticket per registration (none unless completed), the photo the last try's portrait, manual checks ended as driven"}
	held := map[string]int{} // registration id → tickets issued to it
	for _, id := range s.tickets {
		held[id]++
	}
	for id, n := range held {
		if n > 1 {
			inv.fail("registration %s holds %d rows in tickets", id, n)
		}
	}
	by := map[string]int{}
	ends := map[string]int{} // of manual checks
	for _, r := range runs {
		rw, ok := s.rows[r.ID]
		if r.ID == "" || !ok || !r.Plan.Path.online() {
			continue
		}
		how := completedBy(r)
		by[how]++
		switch {
		case rw.Status == status.Completed && rw.Kind == workflows.KindNew && (held[r.ID] != 1 || rw.Ticket == nil || s.tickets[*rw.Ticket] != r.ID):
			inv.fail("%s registration %s completed with %d rows in tickets, holding %s", r.Plan, r.ID, held[r.ID], ticketOf(rw))
		case rw.Status != status.Completed && (held[r.ID] != 0 || rw.Ticket != nil):
			inv.fail("%s registration %s is %s with %d rows in tickets, holding %s", r.Plan, r.ID, rw.Status, held[r.ID], ticketOf(rw))
		}
		checkPhoto(inv, s, r, rw, how)
		checkManual(inv, s, r, rw, ends)
	}
	inv.Figures = fmt.Sprintf("%d completed online, %d by the manual check, %d on site after online verification closed; manual checks: %d approved, %d refused then on site, %d withdrawn, %d annulled; %d tickets issued in all, none twice to a registration",
		by["online"], by["manual"], by["onsite"], ends[status.Completed], ends[status.PreRegistered], ends[status.Withdrawn], ends[status.Annulled], len(s.tickets))
	return inv
}

// checkPhoto: a registration completed online or by the manual check has
// the last try's portrait as its photo, the bytes its client sent last.
func checkPhoto(inv *Invariant, s *snapshot, r *run, rw row, how string) {
	if rw.Status != status.Completed {
		if rw.PhotoFileID != nil {
			inv.fail("%s registration %s is %s, yet has a photo", r.Plan, r.ID, rw.Status)
		}
		return
	}
	tries, logged := s.tries[r.ID], loggedTries(r)
	if len(tries) == 0 || len(logged) == 0 || rw.PhotoFileID == nil {
		inv.fail("%s registration %s completed (%s) with %d tries recorded, %d logged, photo set %v", r.Plan, r.ID, orNone(how), len(tries), len(logged), rw.PhotoFileID != nil)
		return
	}
	last, photo := tries[len(tries)-1], *rw.PhotoFileID
	switch how {
	case "online", "manual":
		if photo != last.PortraitFileID {
			inv.fail("%s registration %s completed (%s) with photo %s, not the last try's portrait %s", r.Plan, r.ID, how, photo, last.PortraitFileID)
		} else if sum := s.fileSums[photo]; sum != logged[len(logged)-1].Portrait {
			inv.fail("%s registration %s: its photo (the last try's portrait) is not the portrait its client sent last (SHA-256 %s, sent %s)",
				r.Plan, r.ID, orNone(sum), logged[len(logged)-1].Portrait)
		}
	case "onsite":
		if photo == last.PortraitFileID {
			inv.fail("%s registration %s completed on site, but its photo is the last try's portrait", r.Plan, r.ID)
		}
	}
}

// checkManual: a manual check was asked for exactly when the path asks
// for it, once, and ended as the client drove it.
func checkManual(inv *Invariant, s *snapshot, r *run, rw row, ends map[string]int) {
	hist := s.history[r.ID]
	asked := slices.ContainsFunc(r.Plan.Path.Steps, func(st step) bool { return st.Act == actAskReview })
	entries := 0
	var decided *historyRow
	for i, h := range hist {
		if h.Status == status.IdentityReview {
			entries++
		}
		if byUpdate(h, workflows.UpdateIdentityReview) {
			decided = &hist[i]
		}
	}
	if !asked {
		if entries > 0 || rw.ReviewAsked || decided != nil {
			inv.fail("%s registration %s: no manual check asked for, yet %d identity_review entries, asked %v", r.Plan, r.ID, entries, rw.ReviewAsked)
		}
		return
	}
	if entries != 1 || !rw.ReviewAsked {
		inv.fail("%s registration %s: %d identity_review entries (want one), identity_review_asked %v", r.Plan, r.ID, entries, rw.ReviewAsked)
	}
	if rw.Status != r.Plan.Path.Target {
		inv.fail("%s registration %s ended %s after the manual check, want %s (client: %s)", r.Plan, r.ID, rw.Status, r.Plan.Path.Target, orNone(r.Error))
		return
	}
	var review *step
	for i, st := range r.Plan.Path.Steps {
		if st.Act == actIdentityReview {
			review = &r.Plan.Path.Steps[i]
		}
	}
	if review == nil { // withdrawn or annulled while the office had it
		if decided != nil {
			inv.fail("%s registration %s: withdrawn or annulled in the manual check, yet the office decided it (%s)", r.Plan, r.ID, *decided)
		}
		ends[rw.Status]++
		return
	}
	role := workflows.ByCountyReviewer
	if review.Provincial {
		role = workflows.ByProvincialReviewer
	}
	switch {
	case decided == nil:
		inv.fail("%s registration %s: no decision of the manual check in its history", r.Plan, r.ID)
	case decided.Status != review.To || decided.ByRole != role:
		inv.fail("%s registration %s: the manual check's entry is %s, want %s by %s", r.Plan, r.ID, *decided, review.To, role)
	case !review.Approve && (!rw.OnlineClosed || deref(rw.ReviewReason) != identityRefusal):
		inv.fail("%s registration %s: refused by the manual check, online_closed %v, the reason shown %v", r.Plan, r.ID, rw.OnlineClosed,
			deref(rw.ReviewReason) == identityRefusal)
	}
	ends[review.To]++
}

// onlineMail is the e-mail a step of an online registration sends, if any.
func onlineMail(h historyRow) (mail.Kind, bool) {
	switch {
	case h.Status == status.Completed:
		return mail.Completed, true
	case h.Status == status.PreRegistered && byUpdate(h, workflows.UpdateIdentityReview):
		return mail.IdentityRefused, true
	case h.Status == status.Withdrawn:
		return mail.Withdrawn, true
	case h.Status == status.Annulled:
		return mail.Annulled, true
	}
	return "", false
}

// checkOnlineMail: every online registration got, for its completion, its
// refused manual check, its withdrawal or annulment, exactly one e-mail of
// that step in the outbox, accepted by the SMTP server and arrived (again
// only with the same Message-ID); none for its tries or its request of a
// manual check. An accepted e-mail of a step Temporal never committed (a
// worker killed after writing it) is counted, not failed.
func checkOnlineMail(s *snapshot, runs []*run, outbox []outboxRow, copies map[string]int) *Invariant {
	inv := &Invariant{Name: "online verification's e-mails (completion, identity_refused, …): each once, delivered; none for a try or a manual-check request"}
	mails := map[string][]outboxRow{}
	for _, o := range outbox {
		mails[o.RegistrationID] = append(mails[o.RegistrationID], o)
	}
	sent := map[mail.Kind]int{}
	twice, superseded, silent := 0, 0, 0
	for _, r := range runs {
		if _, ok := s.rows[r.ID]; r.ID == "" || !ok || !r.Plan.Path.online() {
			continue
		}
		want := map[int]mail.Kind{} // seq → the e-mail of that step
		quiet := map[int]bool{}     // seqs of tries and of the request of a manual check
		for _, h := range s.history[r.ID] {
			if k, ok := onlineMail(h); ok {
				want[h.Seq] = k
			}
			if isTry(h) && h.Status != status.Completed || h.Status == status.IdentityReview {
				quiet[h.Seq] = true
				silent++
			}
		}
		found := map[int]int{}
		for _, m := range mails[r.ID] {
			k := mail.Kind(m.Kind)
			switch {
			case quiet[m.Seq]:
				inv.fail("registration %s: a %s e-mail for step %d, a try or a manual-check request", r.ID, m.Kind, m.Seq)
			case want[m.Seq] == k:
				found[m.Seq]++
				switch {
				case !m.Accepted:
					inv.fail("registration %s: the %s e-mail of step %d was never accepted by the SMTP server", r.ID, k, m.Seq)
				case copies[m.ID] == 0:
					inv.fail("registration %s: the %s e-mail of step %d (outbox %s) never arrived", r.ID, k, m.Seq, m.ID)
				case copies[m.ID] > 1:
					twice++
				}
			case slices.Contains([]mail.Kind{mail.Completed, mail.IdentityRefused, mail.Withdrawn, mail.Annulled}, k) && m.Accepted:
				superseded++ // written by a workflow task Temporal never committed, sent before it was replaced
			case slices.Contains([]mail.Kind{mail.Completed, mail.IdentityRefused, mail.Withdrawn, mail.Annulled}, k):
				inv.fail("registration %s: an unsent %s e-mail of step %d, which is not that step", r.ID, k, m.Seq)
			}
		}
		for seq, k := range want {
			switch n := found[seq]; {
			case n == 0:
				inv.fail("registration %s: no %s e-mail for step %d in the outbox", r.ID, k, seq)
			case n > 1:
				inv.fail("registration %s: %d %s e-mails for step %d in the outbox", r.ID, n, k, seq)
			default:
				sent[k]++
			}
		}
	}
	inv.Figures = fmt.Sprintf("%d completion, %d identity_refused, %d withdrawn, %d annulled e-mails of online registrations, each once, delivered (%d arrived twice, same Message-ID); none for %d tries and manual-check requests; %d e-mails of superseded steps sent as well",
		sent[mail.Completed], sent[mail.IdentityRefused], sent[mail.Withdrawn], sent[mail.Annulled], twice, silent, superseded)
	return inv
}
