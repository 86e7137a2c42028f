package chaos

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"zikao/internal/mail"
	"zikao/internal/sms"
	"zikao/internal/status"
	"zikao/workflows"
)

// The invariants of exam-area changes (考区变更).

// areaNote reads the codes of both areas from an area change's history
// note: 考区由<full name>（<code>）变更为<full name>（<code>），… 变更原因：<reason>.
var areaNote = regexp.MustCompile(`^考区由[^（]*（(\d{4})）变更为[^（]*（(\d{4})）`)

// parseAreaNote returns the areas an area change's note names.
func parseAreaNote(note string) (from, to string, ok bool) {
	m := areaNote.FindStringSubmatch(note)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// areaChanges are the registration's area-change entries, in order.
func areaChanges(hist []historyRow) []historyRow {
	var out []historyRow
	for _, h := range hist {
		if byUpdate(h, workflows.UpdateChangeExamArea) {
			out = append(out, h)
		}
	}
	return out
}

// checkAreas: one exam area per registration at any time — the read
// model's exam_area_code is the area of its last area-change entry, else
// the one it was submitted with, the area its client drove it to, and its
// workflow's ExamArea; each change entry moves it from the area it was in
// to the area asked for, and names both and the reason; its window is its
// area's; a completed one's ticket number begins with that area's code;
// what the client saw after a change — the county inbox, the desks'
// look-ups, the old office's decision refused — was as it must be; and
// each race had exactly one winner, the registration ending as that
// winner leaves it.
func checkAreas(s *snapshot, runs []*run) *Invariant {
	inv := &Invariant{Name: "exam areas: one area per registration (the row's, its workflow's, its last area-change entry's), that area's window, inbox and desk only; tickets of the final area; each race won by one side"}
	moved, changes, looks := 0, 0, 0
	races := map[string][]int64{} // winner → the change's leads

	for id, rw := range s.rows {
		if w := s.workflows[id]; w.Found && w.Err == nil && w.SearchArea != rw.ExamArea {
			inv.fail("registration %s is in exam area %s, its workflow's ExamArea %q", id, rw.ExamArea, w.SearchArea)
		}
		if !rw.WindowOfArea {
			inv.fail("registration %s (exam area %s): its confirmation window is not its area's", id, rw.ExamArea)
		}
		if rw.Ticket != nil && !strings.HasPrefix(*rw.Ticket, rw.ExamArea) {
			inv.fail("registration %s (exam area %s) holds ticket %s, of another area", id, rw.ExamArea, *rw.Ticket)
		}
	}
	for _, r := range runs {
		rw, ok := s.rows[r.ID]
		if r.ID == "" || !ok {
			continue // checkTargets reports it
		}
		var asked []decision
		for _, d := range r.Decisions {
			if d.Update == workflows.UpdateChangeExamArea {
				asked = append(asked, d)
			}
		}
		area := r.Plan.Area
		entries := areaChanges(s.history[r.ID])
		for i, h := range entries {
			from, to, ok := parseAreaNote(h.Note)
			switch {
			case !ok:
				inv.fail("%s registration %s: the area change %s does not name both areas", r.Plan, r.ID, h)
				continue
			case from != area:
				inv.fail("%s registration %s: the area change %s moves it from %s, it was in %s", r.Plan, r.ID, h, from, area)
			case i < len(asked) && to != asked[i].Area:
				inv.fail("%s registration %s: the area change %s moves it to %s, its client asked for %s", r.Plan, r.ID, h, to, asked[i].Area)
			case !strings.HasSuffix(h.Note, "变更原因："+areaReason):
				inv.fail("%s registration %s: the area change %s does not give the reason", r.Plan, r.ID, h)
			}
			area = to
		}
		want := r.Plan.Area
		if len(asked) > 0 {
			want = asked[len(asked)-1].Area
		}
		switch {
		case len(entries) != len(asked):
			inv.fail("%s registration %s: %d area-change entries, its client was answered 200 for %d changes", r.Plan, r.ID, len(entries), len(asked))
		case rw.ExamArea != area || rw.ExamArea != want:
			inv.fail("%s registration %s is in exam area %s; its last area-change entry (or its submission) says %s, its client drove it to %s",
				r.Plan, r.ID, rw.ExamArea, area, want)
		}
		for _, l := range r.Looks {
			looks++
			if !l.ok() {
				inv.fail("%s registration %s after its move to %s: %s %s, want %s", r.Plan, r.ID, r.Plan.MoveTo, l.What, l.Got, l.Want)
			}
		}
		if len(asked) > 0 {
			moved++
			changes += len(asked)
		}
		if r.Plan.Path.Name == pathAreaRace.Name {
			checkRace(inv, r, rw, len(asked))
			if r.Race != nil {
				races[r.Race.Winner] = append(races[r.Race.Winner], r.Race.LeadMS)
			}
		}
	}
	inv.Figures = fmt.Sprintf("%d registrations moved (%d changes), %d looks at inboxes, desks and the old office after a move; races: the change won %s, the old desk's check won %s; %d registrations in the read model, each with its area's window and workflow area, %d tickets of their area",
		moved, changes, looks, leads(races[raceChange]), leads(races[raceOnsite]), len(s.rows), len(s.tickets))
	return inv
}

// leads tells how many races a side won, and how far ahead of the check
// the change was sent in them.
func leads(ms []int64) string {
	if len(ms) == 0 {
		return "0"
	}
	slices.Sort(ms)
	return fmt.Sprintf("%d (the change sent %+d to %+d ms ahead of the check)", len(ms), ms[0], ms[len(ms)-1])
}

// checkRace: the race ended with one of the two allowed pairs of answers,
// and the registration as its winner leaves it: moved, then completed at
// the new area's desk; or completed at the old one's, never moved.
func checkRace(inv *Invariant, r *run, rw row, changes int) {
	rc := r.Race
	if rc == nil {
		inv.fail("%s registration %s: the race was never run (client: %s)", r.Plan, r.ID, orNone(r.Error))
		return
	}
	wantArea, wantChanges := rc.From, 0
	switch rc.Winner {
	case raceChange:
		wantArea, wantChanges = rc.To, 1
	case raceOnsite:
	default:
		inv.fail("%s registration %s: the race had no single winner: the change answered %s, the old desk's check %s", r.Plan, r.ID, rc.Change, rc.Check)
		return
	}
	if rw.Status != status.Completed || rw.ExamArea != wantArea || changes != wantChanges {
		inv.fail("%s registration %s: the %s won the race, yet it is %s in exam area %s with %d changes (want completed in %s)",
			r.Plan, r.ID, rc.Winner, rw.Status, rw.ExamArea, changes, wantArea)
	}
}

// checkAreaNotices: every area change — each area-change entry of the
// history — sent its area_changed e-mail and SMS exactly once: the e-mail
// in the outbox at that step, accepted by the SMTP server and arrived, the
// SMS accepted by the provider, naming the new area; no other
// registration or step has one (but a step Temporal never committed, whose
// message went before it was replaced: counted). No window was moved in
// the run: no window_moved e-mail or SMS.
func checkAreaNotices(s *snapshot, outbox []outboxRow, copies map[string]int, texts []smsRow, received []sms.Received) *Invariant {
	inv := &Invariant{Name: "area changes' notices: one area_changed e-mail and one SMS per change (naming the new area), delivered; none else, no window_moved"}
	type stepKey struct {
		id  string
		seq int
	}
	changes := map[stepKey]string{} // the change's step → its new area
	for id, hist := range s.history {
		for _, h := range areaChanges(hist) {
			_, to, _ := parseAreaNote(h.Note)
			changes[stepKey{id, h.Seq}] = to
		}
	}
	mails, smsAt := map[stepKey]int{}, map[stepKey]int{}
	superseded, twice := 0, 0
	for _, m := range outbox {
		k := stepKey{m.RegistrationID, m.Seq}
		switch {
		case m.Kind == string(mail.WindowMoved):
			inv.fail("registration %s: a window_moved e-mail of step %d, though no window was moved", m.RegistrationID, m.Seq)
		case m.Kind != string(mail.AreaChanged):
		case changes[k] == "" && m.Accepted:
			superseded++ // written by a workflow task Temporal never committed, sent before it was replaced
		case changes[k] == "":
			inv.fail("registration %s: an area_changed e-mail of step %d, which is no area change", m.RegistrationID, m.Seq)
		default:
			mails[k]++
			switch {
			case !m.Accepted:
				inv.fail("registration %s: the area_changed e-mail of step %d was never accepted by the SMTP server", m.RegistrationID, m.Seq)
			case copies[m.ID] == 0:
				inv.fail("registration %s: the area_changed e-mail of step %d (outbox %s) never arrived", m.RegistrationID, m.Seq, m.ID)
			case copies[m.ID] > 1:
				twice++
			}
		}
	}
	text := map[string]string{}
	for _, m := range received {
		text[m.OutID] = m.Text
	}
	for _, t := range texts {
		if t.Purpose == string(sms.WindowMoved) {
			inv.fail("an SMS window_moved (%s), though no window was moved", t.ID)
		}
		if t.Purpose != string(sms.AreaChanged) {
			continue
		}
		if !t.notice() {
			inv.fail("an SMS area_changed (%s) of no registration's step", t.ID)
			continue
		}
		k := stepKey{*t.RegistrationID, *t.Seq}
		switch to := changes[k]; {
		case to == "" && t.Accepted:
			superseded++
		case to == "":
			inv.fail("registration %s: an area_changed SMS of step %d, which is no area change", k.id, k.seq)
		default:
			smsAt[k]++
			switch name := s.areaNames[to]; {
			case !t.Accepted:
				inv.fail("registration %s: the area_changed SMS of step %d was never accepted by the provider", k.id, k.seq)
			case name == "" || !strings.Contains(text[t.ID], name):
				inv.fail("registration %s: the area_changed SMS of step %d does not name the new area %s", k.id, k.seq, to)
			}
		}
	}
	for k := range changes {
		if mails[k] != 1 || smsAt[k] != 1 {
			inv.fail("registration %s: the area change of step %d has %d area_changed e-mails and %d SMS, want one each", k.id, k.seq, mails[k], smsAt[k])
		}
	}
	inv.Figures = fmt.Sprintf("%d area changes, %d area_changed e-mails and %d SMS at them (%d e-mails arrived twice, same Message-ID); %d of superseded steps sent as well; no window_moved",
		len(changes), len(mails), len(smsAt), twice, superseded)
	return inv
}
