package chaos

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"zikao/internal/config"
	"zikao/internal/devstack"
	"zikao/internal/idcard"
)

// TestChaosShortRun is the short fault-injection run of the test command:
// 37 registrations through every path (annulments included, and the real
// person's registration after one; online verification and the manual
// check; exam-area changes, the race with the old desk twice), one fault
// of each kind (the SMS gateway's restart too), every invariant checked,
// the SMS delivered beside the e-mails among them.
// ZIKAO_CHAOS_SEED picks the seed (to reproduce a run).
func TestChaosShortRun(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "zikao-chaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildZikao(t, dir)
	year, sitting := config.DefaultSitting(time.Now())
	o := Options{
		Registrations: len(mix), Concurrency: 8, Seed: seed(t), Dir: filepath.Join(dir, "run"), Binary: bin,
		Year: year, Sitting: sitting,
		Faults:      FaultCounts{WorkerKills: 1, APIKills: 1, TemporalRestarts: 1, PostgresRestarts: 1, IdentityRestarts: 1, SMSRestarts: 1, S3Kills: 1},
		StepTimeout: 90 * time.Second, SettleTimeout: 150 * time.Second, Timeout: 10 * time.Minute,
		Out: os.Stdout,
	}
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("the run could not be made: %v (folder %s)", err, o.Dir)
	}
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("seed %d: %d invariant(s) failed: %q (report above; logs in %s)", res.Seed, len(failed), failed, res.Dir)
	}
	os.RemoveAll(dir)
}

// buildZikao builds the zikao binary the API and workers run from.
func buildZikao(t *testing.T, dir string) string {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "zikao")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/zikao")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build zikao: %v\n%s", err, out)
	}
	return bin
}

func seed(t *testing.T) uint64 {
	if s := os.Getenv("ZIKAO_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ZIKAO_CHAOS_SEED: %v", err)
		}
		return n
	}
	return 0 // a new one, printed
}

func TestPeopleAreValidAndUnique(t *testing.T) {
	folk := newPeople(rand.New(rand.NewPCG(1, 2)))
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		p := folk.next("420106")
		n, err := idcard.Parse(p.IDNumber, time.Now())
		if err != nil {
			t.Fatalf("ID number %d invalid: %v", i, err)
		}
		if n.Gender() != p.Gender || !n.BirthDate().Equal(p.Birth) {
			t.Fatalf("ID number %d: gender or birth date disagree", i)
		}
		if !idcard.ValidName(idcard.NormalizeName(p.Name)) || idcard.NormalizeName(p.Name) != p.Name {
			t.Fatalf("name %d is not a normalised Chinese name", i)
		}
		if seen[p.IDNumber] {
			t.Fatalf("ID number %d repeats", i)
		}
		seen[p.IDNumber] = true
	}
}

func TestShortRunCoversEveryPath(t *testing.T) {
	plans := makePlans(len(mix), rand.New(rand.NewPCG(3, 4)), 2027, 1)
	got := map[string]bool{}
	for _, p := range plans {
		for q := p; q != nil; q = q.Then {
			got[q.Path.Name] = true
		}
	}
	for _, p := range allPaths() {
		if !got[p.Name] {
			t.Errorf("%d registrations do not cover path %s", len(mix), p.Name)
		}
	}
	if !got[pathRealPerson.Name] {
		t.Errorf("no real person registers after an annulment")
	}
}

func TestCompareHistory(t *testing.T) {
	const applicant, reviewer = 7, 3
	key := "k-1"
	uid := "withdraw/7/" + key
	withdraw := &run{Plan: &plan{Path: pathWithdrawCheck}, AccountID: applicant,
		Decisions: []decision{{Update: "withdraw", Key: key, AccountID: applicant, ByRole: "applicant", To: "withdrawn"}}}
	annulUID := "annul/3/" + key
	annul := &run{Plan: &plan{Path: pathAnnulCheck}, AccountID: applicant,
		Decisions: []decision{{Update: "annul", Key: key, AccountID: reviewer, ByRole: "county_reviewer", To: "annulled"}}}
	entry := func(seq int, st, by string, account int64, update *string) historyRow {
		h := historyRow{Seq: seq, Status: st, ByRole: by, UpdateID: update}
		if account != 0 {
			h.ByAccountID = &account
		}
		return h
	}
	first := entry(1, "diploma_check", "applicant", applicant, nil)
	checked := entry(2, "awaiting_report", "system", 0, nil)
	cases := []struct {
		name string
		run  *run
		hist []historyRow
		ok   bool
	}{
		{"check stopped by the withdrawal", withdraw, []historyRow{first, entry(2, "withdrawn", "applicant", applicant, &uid)}, true},
		{"check recorded first", withdraw, []historyRow{first, checked, entry(3, "withdrawn", "applicant", applicant, &uid)}, true},
		{"withdrawal lost", withdraw, []historyRow{first, checked}, false},
		{"check after the withdrawal", withdraw, []historyRow{first, entry(2, "withdrawn", "applicant", applicant, &uid), entry(3, "awaiting_report", "system", 0, nil)}, false},
		{"withdrawal twice", withdraw, []historyRow{first, entry(2, "withdrawn", "applicant", applicant, &uid), entry(3, "withdrawn", "applicant", applicant, nil)}, false},
		{"gap", withdraw, []historyRow{first, entry(3, "withdrawn", "applicant", applicant, &uid)}, false},
		{"key on the wrong entry", withdraw, []historyRow{first, entry(2, "awaiting_report", "system", 0, &uid)}, false},
		{"submission without its account", withdraw, []historyRow{entry(1, "diploma_check", "applicant", 0, nil), entry(2, "withdrawn", "applicant", applicant, &uid)}, false},
		{"check with an account", withdraw, []historyRow{first, entry(2, "awaiting_report", "system", applicant, nil), entry(3, "withdrawn", "applicant", applicant, &uid)}, false},
		{"check stopped by the annulment", annul, []historyRow{first, entry(2, "annulled", "county_reviewer", reviewer, &annulUID)}, true},
		{"check recorded before the annulment", annul, []historyRow{first, checked, entry(3, "annulled", "county_reviewer", reviewer, &annulUID)}, true},
		{"annulment by the applicant's account", annul, []historyRow{first, entry(2, "annulled", "county_reviewer", applicant, &annulUID)}, false},
		{"annulment without an account", annul, []historyRow{first, entry(2, "annulled", "county_reviewer", 0, &annulUID)}, false},
		{"annulment by the other office", annul, []historyRow{first, entry(2, "annulled", "provincial_reviewer", reviewer, &annulUID)}, false},
		{"annulment twice", annul, []historyRow{first, entry(2, "annulled", "county_reviewer", reviewer, &annulUID), entry(3, "annulled", "county_reviewer", reviewer, &annulUID)}, false},
	}
	for _, c := range cases {
		problem := compareHistory(expectedHistory(c.run), c.hist)
		if (problem == "") != c.ok {
			t.Errorf("%s: problem %q, want ok=%v", c.name, problem, c.ok)
		}
	}
}

// TestCheckAnnulments runs the annulment invariant over made-up snapshots:
// it holds for a proper annulment followed by the real person's completed
// registration, and breaks on each way it can go wrong.
func TestCheckAnnulments(t *testing.T) {
	const impostor, realPerson, province = 11, 12, 2
	reason, other, ticket := annulReason, "另一个原因", "010627100001"
	uid := "annul/2/k-9"
	good := func() (*snapshot, []*run, []outboxRow, map[string]int) {
		p := &plan{Path: pathAnnulRealPerson}
		p.Then = &plan{Path: pathRealPerson, Second: true}
		r := &run{Plan: p, ID: "a", AccountID: impostor, Done: true,
			Decisions: []decision{{Update: "annul", Key: "k-9", AccountID: province, ByRole: "provincial_reviewer", To: "annulled"}}}
		r.Then = &run{Plan: p.Then, ID: "b", AccountID: realPerson, Done: true}
		acc := func(n int64) *int64 { return &n }
		s := &snapshot{
			rows: map[string]row{
				"a": {ID: "a", AccountID: impostor, Status: "annulled", LastSeq: 2, AnnulReason: &reason, IDKey: "x"},
				"b": {ID: "b", AccountID: realPerson, Status: "completed", LastSeq: 2, Ticket: &ticket, IDKey: "x"},
			},
			history: map[string][]historyRow{
				"a": {{Seq: 1, Status: "pre_registered", ByRole: "applicant", ByAccountID: acc(impostor)},
					{Seq: 2, Status: "annulled", ByRole: "provincial_reviewer", ByAccountID: acc(province), UpdateID: &uid}},
			},
		}
		outbox := []outboxRow{{ID: "m1", RegistrationID: "a", Kind: "pre_registered", Seq: 1, Accepted: true},
			{ID: "m2", RegistrationID: "a", Kind: "annulled", Seq: 2, Accepted: true}}
		return s, []*run{r, r.Then}, outbox, map[string]int{"m1": 1, "m2": 1}
	}
	if inv := checkAnnulments(good()); len(inv.Failed) > 0 {
		t.Fatalf("a proper annulment breaks the invariant: %q", inv.Failed)
	}
	breaks := map[string]func(s *snapshot, runs []*run, outbox []outboxRow, copies map[string]int) []outboxRow{
		"no reason": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			a := s.rows["a"]
			a.AnnulReason = nil
			s.rows["a"] = a
			return o
		},
		"another reason": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			a := s.rows["a"]
			a.AnnulReason = &other
			s.rows["a"] = a
			return o
		},
		"the county's role": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.history["a"][1].ByRole = "county_reviewer"
			return o
		},
		"no account": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			s.history["a"][1].ByAccountID = nil
			return o
		},
		"no e-mail": func(_ *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow { return o[:1] },
		"e-mail not arrived": func(_ *snapshot, _ []*run, o []outboxRow, c map[string]int) []outboxRow {
			delete(c, "m2")
			return o
		},
		"two annulment entries": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			h := s.history["a"]
			s.history["a"] = []historyRow{h[0], {Seq: 2, Status: "annulled", ByRole: "county_reviewer"}, h[1]}
			s.history["a"][2].Seq = 3
			return o
		},
		"real person not completed": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			b := s.rows["b"]
			b.Status, b.Ticket = "pre_registered", nil
			s.rows["b"] = b
			return o
		},
		"real person with another ID number": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			b := s.rows["b"]
			b.IDKey = "y"
			s.rows["b"] = b
			return o
		},
		"real person never registered": func(_ *snapshot, runs []*run, o []outboxRow, _ map[string]int) []outboxRow {
			runs[0].Then.ID = ""
			return o
		},
		"an annulment of a registration not annulled": func(s *snapshot, _ []*run, o []outboxRow, _ map[string]int) []outboxRow {
			return append(o, outboxRow{ID: "m3", RegistrationID: "b", Kind: "annulled", Seq: 2, Accepted: true})
		},
	}
	for name, mutate := range breaks {
		s, runs, outbox, copies := good()
		outbox = mutate(s, runs, outbox, copies)
		if inv := checkAnnulments(s, runs, outbox, copies); len(inv.Failed) == 0 {
			t.Errorf("%s: the invariant held", name)
		}
	}
}
