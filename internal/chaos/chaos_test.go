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

// TestShortRun is the short fault-injection run of the test command: 24
// registrations through every path, one fault of each kind, every
// invariant checked. ZIKAO_CHAOS_SEED picks the seed (to reproduce a run).
func TestShortRun(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "zikao-chaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildZikao(t, dir)
	year, sitting := config.DefaultSitting(time.Now())
	o := Options{
		Registrations: 24, Concurrency: 8, Seed: seed(t), Dir: filepath.Join(dir, "run"), Binary: bin,
		Year: year, Sitting: sitting,
		Faults:      FaultCounts{WorkerKills: 1, APIKills: 1, TemporalRestarts: 1, PostgresRestarts: 1},
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
	plans := makePlans(24, rand.New(rand.NewPCG(3, 4)), 2027, 1)
	got := map[string]bool{}
	for _, p := range plans {
		got[p.Path.Name] = true
	}
	for _, p := range allPaths() {
		if !got[p.Name] {
			t.Errorf("24 registrations do not cover path %s", p.Name)
		}
	}
}

func TestCompareHistory(t *testing.T) {
	key := "k-1"
	uid := "withdraw/7/" + key
	withdraw := &run{Plan: &plan{Path: pathWithdrawCheck}, Decisions: []decision{{Update: "withdraw", Key: key, ByRole: "applicant", To: "withdrawn"}}}
	entry := func(seq int, st, by string, update *string) historyRow {
		return historyRow{Seq: seq, Status: st, ByRole: by, UpdateID: update}
	}
	first := entry(1, "diploma_check", "applicant", nil)
	cases := []struct {
		name string
		hist []historyRow
		ok   bool
	}{
		{"check stopped by the withdrawal", []historyRow{first, entry(2, "withdrawn", "applicant", &uid)}, true},
		{"check recorded first", []historyRow{first, entry(2, "awaiting_report", "system", nil), entry(3, "withdrawn", "applicant", &uid)}, true},
		{"withdrawal lost", []historyRow{first, entry(2, "awaiting_report", "system", nil)}, false},
		{"check after the withdrawal", []historyRow{first, entry(2, "withdrawn", "applicant", &uid), entry(3, "awaiting_report", "system", nil)}, false},
		{"withdrawal twice", []historyRow{first, entry(2, "withdrawn", "applicant", &uid), entry(3, "withdrawn", "applicant", nil)}, false},
		{"gap", []historyRow{first, entry(3, "withdrawn", "applicant", &uid)}, false},
		{"key on the wrong entry", []historyRow{first, entry(2, "awaiting_report", "system", &uid)}, false},
	}
	for _, c := range cases {
		problem := compareHistory(expectedHistory(withdraw), c.hist)
		if (problem == "") != c.ok {
			t.Errorf("%s: problem %q, want ok=%v", c.name, problem, c.ok)
		}
	}
}
