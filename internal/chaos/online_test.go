package chaos

import (
	"bytes"
	"context"
	"image/jpeg"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"zikao/internal/identity"
	"zikao/internal/mail"
	"zikao/internal/status"
	"zikao/workflows"
)

// TestTryFiles checks that the files of each kind of try lead the identity
// service stand-in to the result the path wants, that they pass the API's
// rules (sizes, a 480×640 portrait), and that no two tries send the same bytes.
func TestTryFiles(t *testing.T) {
	srv := httptest.NewServer(identity.StandIn("u", "k"))
	defer srv.Close()
	client := identity.NewClient(srv.URL, "u", "k", 10*time.Second)
	folk := newPeople(rand.New(rand.NewPCG(5, 6)))
	known, unknown := folk.next("420106"), folk.notInRecords("420102")
	if unknown.IDNumber[14:17] != "999" || known.IDNumber[14:17] == "999" {
		t.Fatalf("sequences: %s, %s", known.IDNumber[14:17], unknown.IDNumber[14:17])
	}
	seen := map[string]bool{}
	for _, tc := range []struct {
		person person
		result string
	}{
		{known, workflows.ResultFaceMismatch}, {known, workflows.ResultLivenessFailed}, {known, workflows.ResultFaceMismatch},
		{known, workflows.ResultMatch}, {unknown, workflows.ResultNotInRecords},
	} {
		c := &agent{d: &driver{run: "t"}, run: &run{Plan: &plan{Index: 3, Face: 1023, Path: pathOnlineReviewOK, Person: tc.person}}}
		c.tries = len(seen) / 3
		f := c.tryFiles(tc.result)
		got, err := client.Verify(context.Background(), identity.Request{IDNumber: tc.person.IDNumber, Name: tc.person.Name, Digits: "1234",
			IDCardPhoto: f.idCard, Video: f.video, Portrait: f.portrait})
		if err != nil || got != tc.result {
			t.Fatalf("try %d (%s): the stand-in answered %q, %v", c.tries+1, tc.result, got, err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(f.portrait))
		if err != nil || cfg.Width != 480 || cfg.Height != 640 || len(f.portrait) > 102400 {
			t.Fatalf("portrait: %v, %dx%d, %d bytes", err, cfg.Width, cfg.Height, len(f.portrait))
		}
		for _, b := range [][]byte{f.idCard, f.video, f.portrait} {
			if sum := sha256Hex(b); seen[sum] {
				t.Fatalf("try %d (%s) sends bytes an earlier try sent", c.tries+1, tc.result)
			} else {
				seen[sum] = true
			}
		}
	}
}

func TestShortRunCoversOnlinePaths(t *testing.T) {
	n := 0
	for _, p := range mix {
		if p.online() {
			n++
		}
	}
	if n != 7 {
		t.Fatalf("%d online paths in the mix, want 7", n)
	}
	plans := makePlans(len(mix), rand.New(rand.NewPCG(7, 8)), 2027, 1)
	for _, p := range plans {
		if p.Path.notInRecords() != (p.Person.IDNumber[14:17] == "999") {
			t.Errorf("plan %s: ID sequence %s", p, p.Person.IDNumber[14:17])
		}
	}
}

// TestCheckOnline runs the online invariants over a made-up snapshot: a
// registration completed by the manual check after three failed tries. They
// hold, and break on each way it can go wrong.
func TestCheckOnline(t *testing.T) {
	const applicant, county = 21, 4
	ticket := "010627100007"
	good := func() (*snapshot, []*run, []outboxRow, map[string]int) {
		p := &plan{Index: 1, Path: pathOnlineReviewOK}
		keys := []string{"k1", "k2", "k3", "k4", "k5"}
		results := []string{workflows.ResultFaceMismatch, workflows.ResultLivenessFailed, workflows.ResultFaceMismatch}
		r := &run{Plan: p, ID: "r", AccountID: applicant, Done: true}
		acc := func(n int64) *int64 { return &n }
		uid := func(update, key string, account int) *string {
			s := update + "/" + string(rune('0'+account%10)) + "/" + key
			return &s
		}
		hist := []historyRow{{RegistrationID: "r", Seq: 1, Status: status.PreRegistered, ByRole: "applicant", ByAccountID: acc(applicant)}}
		var tries []tryRow
		for i, res := range results {
			r.Decisions = append(r.Decisions, decision{Update: workflows.UpdateOnlineTry, Key: keys[i], AccountID: applicant, ByRole: "applicant",
				To: status.PreRegistered, Result: res, Portrait: "sum" + keys[i]})
			hist = append(hist, historyRow{RegistrationID: "r", Seq: i + 2, Status: status.PreRegistered, ByRole: "applicant",
				ByAccountID: acc(applicant), UpdateID: uid(workflows.UpdateOnlineTry, keys[i], applicant)})
			tries = append(tries, tryRow{RegistrationID: "r", Seq: i + 2, ChallengeID: "c" + keys[i], Result: res, PortraitFileID: "p" + keys[i]})
		}
		r.Decisions = append(r.Decisions,
			decision{Update: workflows.UpdateRequestIdentityReview, Key: keys[3], AccountID: applicant, ByRole: "applicant", To: status.IdentityReview},
			decision{Update: workflows.UpdateIdentityReview, Key: keys[4], AccountID: county, ByRole: "county_reviewer", To: status.Completed})
		hist = append(hist,
			historyRow{RegistrationID: "r", Seq: 5, Status: status.IdentityReview, ByRole: "applicant", ByAccountID: acc(applicant),
				UpdateID: uid(workflows.UpdateRequestIdentityReview, keys[3], applicant)},
			historyRow{RegistrationID: "r", Seq: 6, Status: status.Completed, ByRole: "county_reviewer", ByAccountID: acc(county),
				UpdateID: uid(workflows.UpdateIdentityReview, keys[4], county)})
		photo, last := "pk3", workflows.ResultFaceMismatch
		s := &snapshot{
			rows: map[string]row{"r": {ID: "r", AccountID: applicant, Kind: workflows.KindNew, Status: status.Completed, Ticket: &ticket, LastSeq: 6,
				PhotoFileID: &photo, TriesLeft: 0, OnlineClosed: true, LastResult: &last, ReviewAsked: true}},
			history:  map[string][]historyRow{"r": hist},
			tickets:  map[string]string{ticket: "r"},
			tries:    map[string][]tryRow{"r": tries},
			fileSums: map[string]string{"pk3": "sumk3"},
		}
		outbox := []outboxRow{{ID: "m1", RegistrationID: "r", Kind: string(mail.PreRegistered), Seq: 1, Accepted: true},
			{ID: "m2", RegistrationID: "r", Kind: string(mail.Completed), Seq: 6, Accepted: true}}
		return s, []*run{r}, outbox, map[string]int{"m1": 1, "m2": 1}
	}
	check := func(s *snapshot, runs []*run, outbox []outboxRow, copies map[string]int) []string {
		var failed []string
		for _, inv := range checkOnline(s, runs, outbox, copies, newStats()) {
			failed = append(failed, inv.Failed...)
		}
		return failed
	}
	if failed := check(good()); len(failed) > 0 {
		t.Fatalf("a proper manual check breaks the invariants: %q", failed)
	}
	breaks := map[string]func(s *snapshot, runs []*run, outbox []outboxRow, copies map[string]int) []outboxRow{
		"a try counted twice in the read model": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			rw := s.rows["r"]
			rw.TriesLeft = -1
			s.rows["r"] = rw
			return o
		},
		"a try lost": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			rw := s.rows["r"]
			rw.TriesLeft = 1
			s.rows["r"] = rw
			s.tries["r"] = s.tries["r"][1:]
			return o
		},
		"a try row without its entry": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.tries["r"] = append(s.tries["r"], tryRow{RegistrationID: "r", Seq: 5, ChallengeID: "cx", Result: workflows.ResultFaceMismatch})
			return o
		},
		"a try recorded with another result": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.tries["r"][1].Result = workflows.ResultFaceMismatch
			return o
		},
		"a challenge used twice": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.tries["r"][1].ChallengeID = s.tries["r"][0].ChallengeID
			return o
		},
		"tries on a registration not online": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.tries["other"] = []tryRow{{RegistrationID: "other", Seq: 2}}
			return o
		},
		"a second ticket": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.tickets["010627100008"] = "r"
			return o
		},
		"no ticket row": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			delete(s.tickets, ticket)
			return o
		},
		"the photo another portrait": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			rw := s.rows["r"]
			other := "pk1"
			rw.PhotoFileID = &other
			s.rows["r"] = rw
			return o
		},
		"the portrait not the one sent": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.fileSums["pk3"] = "something else"
			return o
		},
		"approved by the other office": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.history["r"][5].ByRole = "provincial_reviewer"
			return o
		},
		"two manual-check entries": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.history["r"][4].Status = status.IdentityReview
			s.history["r"] = append(s.history["r"][:5], historyRow{RegistrationID: "r", Seq: 6, Status: status.IdentityReview, ByRole: "applicant"}, s.history["r"][5])
			return o
		},
		"no completion e-mail": func(_ *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow { return o[:1] },
		"the completion e-mail never arrived": func(_ *snapshot, _ []*run, o []outboxRow, c map[string]int) []outboxRow {
			delete(c, "m2")
			return o
		},
		"the completion e-mail twice in the outbox": func(_ *snapshot, _ []*run, o []outboxRow, c map[string]int) []outboxRow {
			c["m3"] = 1
			return append(o, outboxRow{ID: "m3", RegistrationID: "r", Kind: string(mail.Completed), Seq: 6, Accepted: true})
		},
		"an e-mail for a try": func(_ *snapshot, _ []*run, o []outboxRow, c map[string]int) []outboxRow {
			c["m4"] = 1
			return append(o, outboxRow{ID: "m4", RegistrationID: "r", Kind: string(mail.PreRegistered), Seq: 3, Accepted: true})
		},
	}
	for name, mutate := range breaks {
		s, runs, outbox, copies := good()
		outbox = mutate(s, runs, outbox, copies)
		if failed := check(s, runs, outbox, copies); len(failed) == 0 {
			t.Errorf("%s: the invariants held", name)
		}
	}
}
