package chaos

import (
	"math/rand/v2"
	"slices"
	"testing"

	"zikao/internal/sms"
)

func TestParseAreaNote(t *testing.T) {
	for _, c := range []struct {
		note, from, to string
		ok             bool
	}{
		{"考区由武汉市武昌区（0106）变更为武汉市江汉区（0103），现场确认时间2026年12月1日 10:00 至 2026年12月21日 10:00。变更原因：" + areaReason, "0106", "0103", true},
		{"考区由黄石市（0201）变更为武汉市江岸区（0102），现场确认时间…。变更原因：x", "0201", "0102", true},
		{"考区现场确认时间调整为2026年12月1日 10:00 至 2026年12月21日 10:00", "", "", false},
		{"区考办审核通过，等待省考办审核", "", "", false},
	} {
		from, to, ok := parseAreaNote(c.note)
		if from != c.from || to != c.to || ok != c.ok {
			t.Errorf("%q: %q → %q (%v), want %q → %q (%v)", c.note, from, to, ok, c.from, c.to, c.ok)
		}
	}
}

// Every plan of a moving path goes to another staffed area; no other plan moves.
func TestPlansMoveToAnotherArea(t *testing.T) {
	plans := makePlans(3*len(mix), rand.New(rand.NewPCG(5, 6)), 2027, 1)
	to := map[string]int{}
	for _, p := range plans {
		switch {
		case !p.Path.moves() && p.MoveTo != "":
			t.Errorf("%s moves to %s", p, p.MoveTo)
		case p.Path.moves() && (p.MoveTo == p.Area || !slices.Contains(staffAreas, p.MoveTo)):
			t.Errorf("%s in %s moves to %q", p, p.Area, p.MoveTo)
		case p.Path.moves():
			to[p.MoveTo]++
		}
	}
	if len(to) < 2 {
		t.Errorf("moves go to %v only", to)
	}
}

const moveNote = "考区由武汉市武昌区（0106）变更为武汉市江汉区（0103），现场确认时间2026年12月1日 10:00 至 2026年12月21日 10:00。变更原因：" + areaReason

// areaSnapshot is a made-up run: "m" moved 0106 → 0103 in county review
// and completed in 0103; "w" won its race by the change, "o" by the old
// desk's check.
func areaSnapshot() (*snapshot, []*run) {
	acc := func(n int64) *int64 { return &n }
	uid := func(update, key string) *string { s := update + "/1/" + key; return &s }
	ticket := func(s string) *string { return &s }
	moved := func(id, key string) []historyRow {
		return []historyRow{{RegistrationID: id, Seq: 1, Status: "pre_registered", ByRole: "applicant", ByAccountID: acc(9)},
			{RegistrationID: id, Seq: 2, Status: "pre_registered", ByRole: "county_reviewer", ByAccountID: acc(1), Note: moveNote, UpdateID: uid("change-exam-area", key)},
			{RegistrationID: id, Seq: 3, Status: "completed", ByRole: "onsite_operator", ByAccountID: acc(2), UpdateID: uid("onsite-check", key+"c")}}
	}
	s := &snapshot{
		rows: map[string]row{
			"m": {ID: "m", Status: "completed", ExamArea: "0103", WindowOfArea: true, Ticket: ticket("010327100001"), LastSeq: 3},
			"w": {ID: "w", Status: "completed", ExamArea: "0103", WindowOfArea: true, Ticket: ticket("010327100002"), LastSeq: 3},
			"o": {ID: "o", Status: "completed", ExamArea: "0106", WindowOfArea: true, Ticket: ticket("010627100001"), LastSeq: 2},
		},
		history: map[string][]historyRow{
			"m": moved("m", "k1"),
			"w": moved("w", "k2"),
			"o": {{RegistrationID: "o", Seq: 1, Status: "pre_registered", ByRole: "applicant", ByAccountID: acc(8)},
				{RegistrationID: "o", Seq: 2, Status: "completed", ByRole: "onsite_operator", ByAccountID: acc(2), UpdateID: uid("onsite-check", "k3")}},
		},
		workflows: map[string]workflowState{"m": {Found: true, SearchArea: "0103"}, "w": {Found: true, SearchArea: "0103"}, "o": {Found: true, SearchArea: "0106"}},
		tickets:   map[string]string{"010327100001": "m", "010327100002": "w", "010627100001": "o"},
		areaNames: map[string]string{"0106": "武汉市武昌区", "0102": "武汉市江岸区", "0103": "武汉市江汉区"},
	}
	change := func(key string) decision {
		return decision{Update: "change-exam-area", Key: key, AccountID: 1, ByRole: "county_reviewer", To: "pre_registered", Area: "0103"}
	}
	m := &run{Plan: &plan{Path: pathAreaPre, Area: "0106", MoveTo: "0103"}, ID: "m", Done: true, Decisions: []decision{change("k1")},
		Looks: []look{{What: "desk look-up of 0106", Want: "does not list it", Got: "does not list it"}, {What: "desk look-up of 0103", Want: "lists it", Got: "lists it"}}}
	w := &run{Plan: &plan{Path: pathAreaRace, Area: "0106", MoveTo: "0103"}, ID: "w", Done: true, Decisions: []decision{change("k2")},
		Race: &race{From: "0106", To: "0103", Change: "200", Check: "403 forbidden", Winner: raceChange}}
	o := &run{Plan: &plan{Path: pathAreaRace, Area: "0106", MoveTo: "0103"}, ID: "o", Done: true,
		Race: &race{From: "0106", To: "0103", Change: "409 registration_closed", Check: "200", Winner: raceOnsite}}
	return s, []*run{m, w, o}
}

func TestCheckAreas(t *testing.T) {
	if inv := checkAreas(areaSnapshot()); len(inv.Failed) > 0 {
		t.Fatalf("proper moves break the invariant: %q", inv.Failed)
	}
	breaks := map[string]func(s *snapshot, runs []*run){
		"row in the old area": func(s *snapshot, _ []*run) {
			m := s.rows["m"]
			m.ExamArea, m.Ticket = "0106", nil
			s.rows["m"] = m
		},
		"workflow in the old area": func(s *snapshot, _ []*run) { s.workflows["m"] = workflowState{Found: true, SearchArea: "0106"} },
		"the old area's window": func(s *snapshot, _ []*run) {
			m := s.rows["m"]
			m.WindowOfArea = false
			s.rows["m"] = m
		},
		"ticket of the old area": func(s *snapshot, _ []*run) {
			m, t := s.rows["m"], "010627100009"
			m.Ticket = &t
			s.rows["m"] = m
		},
		"note without the reason": func(s *snapshot, _ []*run) {
			s.history["m"][1].Note = "考区由武汉市武昌区（0106）变更为武汉市江汉区（0103），现场确认时间…。变更原因："
		},
		"moved from another area": func(s *snapshot, _ []*run) {
			s.history["m"][1].Note = "考区由武汉市江岸区（0102）变更为武汉市江汉区（0103），变更原因：" + areaReason
		},
		"moved elsewhere": func(s *snapshot, _ []*run) {
			s.history["m"][1].Note = "考区由武汉市武昌区（0106）变更为武汉市江岸区（0102），变更原因：" + areaReason
		},
		"change lost": func(s *snapshot, _ []*run) { s.history["m"] = slices.Delete(s.history["m"], 1, 2) },
		"old desk lists it": func(_ *snapshot, runs []*run) {
			runs[0].Looks[0].Got = "lists it"
		},
		"race without a winner": func(_ *snapshot, runs []*run) {
			runs[1].Race.Winner, runs[1].Race.Check = "", "200"
		},
		"race never run": func(_ *snapshot, runs []*run) { runs[2].Race = nil },
		"check won, yet moved": func(s *snapshot, _ []*run) {
			o := s.rows["o"]
			o.ExamArea = "0103"
			s.rows["o"] = o
		},
	}
	for name, mutate := range breaks {
		s, runs := areaSnapshot()
		mutate(s, runs)
		if inv := checkAreas(s, runs); len(inv.Failed) == 0 {
			t.Errorf("%s: the invariant held", name)
		}
	}
}

func TestCheckAreaNotices(t *testing.T) {
	good := func() (*snapshot, []outboxRow, map[string]int, []smsRow, []sms.Received) {
		s, _ := areaSnapshot()
		id, seq := func(s string) *string { return &s }, func(n int) *int { return &n }
		outbox := []outboxRow{{ID: "e1", RegistrationID: "m", Kind: "area_changed", Seq: 2, Accepted: true},
			{ID: "e2", RegistrationID: "w", Kind: "area_changed", Seq: 2, Accepted: true},
			{ID: "e3", RegistrationID: "o", Kind: "completed", Seq: 2, Accepted: true}}
		texts := []smsRow{{ID: "s1", RegistrationID: id("m"), Purpose: "area_changed", Seq: seq(2), Accepted: true},
			{ID: "s2", RegistrationID: id("w"), Purpose: "area_changed", Seq: seq(2), Accepted: true}}
		received := []sms.Received{{OutID: "s1", Text: "【湖北自考】您的考区已由考试机构变更为武汉市江汉区，…"},
			{OutID: "s2", Text: "【湖北自考】您的考区已由考试机构变更为武汉市江汉区，…"}}
		return s, outbox, map[string]int{"e1": 1, "e2": 1, "e3": 1}, texts, received
	}
	if inv := checkAreaNotices(good()); len(inv.Failed) > 0 {
		t.Fatalf("proper notices break the invariant: %q", inv.Failed)
	}
	breaks := map[string]func(o []outboxRow, c map[string]int, t []smsRow, r []sms.Received) ([]outboxRow, []smsRow){
		"no e-mail": func(o []outboxRow, _ map[string]int, t []smsRow, _ []sms.Received) ([]outboxRow, []smsRow) {
			return o[1:], t
		},
		"no SMS": func(o []outboxRow, _ map[string]int, t []smsRow, _ []sms.Received) ([]outboxRow, []smsRow) {
			return o, t[1:]
		},
		"two e-mails": func(o []outboxRow, _ map[string]int, t []smsRow, _ []sms.Received) ([]outboxRow, []smsRow) {
			return append(o, outboxRow{ID: "e4", RegistrationID: "m", Kind: "area_changed", Seq: 2, Accepted: true}), t
		},
		"e-mail not arrived": func(o []outboxRow, c map[string]int, t []smsRow, _ []sms.Received) ([]outboxRow, []smsRow) {
			delete(c, "e1")
			return o, t
		},
		"SMS not naming the area": func(o []outboxRow, _ map[string]int, t []smsRow, r []sms.Received) ([]outboxRow, []smsRow) {
			r[0].Text = "【湖北自考】您的考区已由考试机构变更为武汉市武昌区，…"
			return o, t
		},
		"an unsent notice of no change": func(o []outboxRow, _ map[string]int, t []smsRow, _ []sms.Received) ([]outboxRow, []smsRow) {
			return append(o, outboxRow{ID: "e5", RegistrationID: "o", Kind: "area_changed", Seq: 2}), t
		},
		"a window moved": func(o []outboxRow, _ map[string]int, t []smsRow, _ []sms.Received) ([]outboxRow, []smsRow) {
			return append(o, outboxRow{ID: "e6", RegistrationID: "o", Kind: "window_moved", Seq: 3, Accepted: true}), t
		},
	}
	for name, mutate := range breaks {
		s, o, c, texts, r := good()
		o, texts = mutate(o, c, texts, r)
		if inv := checkAreaNotices(s, o, c, texts, r); len(inv.Failed) == 0 {
			t.Errorf("%s: the invariant held", name)
		}
	}
}
