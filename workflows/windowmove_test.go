package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/internal/catalog"
	"zikao/internal/idcard"
	"zikao/internal/registrations"
	"zikao/internal/testenv"
	"zikao/workflows"
)

// The window move workflow with its real activities on PostgreSQL, and a
// fake in place of the registrations' workflows: it applies each update id
// once per registration, as Temporal does, and records what it was sent.

// fakeChanger stands in for the registrations' workflows.
type fakeChanger struct {
	mu      sync.Mutex
	calls   map[string]int             // registration → updates received (resent ones included)
	applied map[string]map[string]bool // registration → update ids applied
	changes map[string]int             // registration → times its window changed
	// answer, when set, decides a call (the n-th to that registration)
	// before the update is applied: a non-nil error refuses it.
	answer func(id string, n int) error
	// sent is called after each update that was applied or deduplicated.
	sent    func()
	running func(moveID string) bool // MoveRunning's answer
}

func newFakeChanger() *fakeChanger {
	return &fakeChanger{calls: map[string]int{}, applied: map[string]map[string]bool{}, changes: map[string]int{}}
}

func (f *fakeChanger) ChangeWindow(ctx context.Context, id string, startsAt, endsAt time.Time, moveID string) error {
	if err := ctx.Err(); err != nil {
		return err // never sent
	}
	f.mu.Lock()
	f.calls[id]++
	n := f.calls[id]
	f.mu.Unlock()
	if f.answer != nil {
		if err := f.answer(id, n); err != nil {
			return err
		}
	}
	updateID := workflows.UpdateChangeWindow + "/" + moveID
	f.mu.Lock()
	if f.applied[id] == nil {
		f.applied[id] = map[string]bool{}
	}
	first := !f.applied[id][updateID]
	if first {
		f.applied[id][updateID] = true
		f.changes[id]++
	}
	sent := f.sent
	f.mu.Unlock()
	if first { // what the registration's workflow records
		if err := store.ChangeWindow(ctx, registrations.WindowChange{RegistrationID: id, StartsAt: startsAt, EndsAt: endsAt}); err != nil {
			return err
		}
	}
	if sent != nil {
		sent()
	}
	return nil
}

func (f *fakeChanger) MoveRunning(ctx context.Context, moveID string) (bool, error) {
	return f.running != nil && f.running(moveID), nil
}

// moveArea writes n open registrations of an exam area (sitting 2027-1)
// on its current window, as the registration service would, and returns
// their ids, sorted.
func moveArea(t *testing.T, area string, n int) []string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := catalog.New(database).SetWindow(ctx, area, 2027, 1, catalog.Window{StartsAt: now.Add(-time.Hour), EndsAt: now.AddDate(0, 0, 30)}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		var account int64
		err := database.GetContext(ctx, &account, `INSERT INTO accounts (login_name, password_hash, security_question_id, security_answer_hash, role)
			VALUES ($1, 'x', 1, 'x', 'applicant') RETURNING id`, "wm-"+uuid.NewString()[:12]+"@example.com")
		if err != nil {
			t.Fatal(err)
		}
		p, _ := idcard.Parse(testenv.IDNumber(), now)
		r := &registrations.Registration{ID: uuid.NewString(), AccountID: account, Kind: workflows.KindNew, Status: "pre_registered",
			Name: "测试", IDNumber: string(p), Gender: p.Gender(), BirthDate: p.BirthDate(), Phone: "13800000000",
			MajorType: "social", Level: "zhuanke", MajorCode: "590201", ExamAreaCode: area, Year: 2027, Sitting: 1, TermsAgreedAt: now}
		if err := store.Create(ctx, r, "提交注册"); err != nil {
			t.Fatal(err)
		}
		ids[i] = r.ID
	}
	sort.Strings(ids)
	return ids
}

// newMove writes a window move of an area to a new window, as the
// registration service does before it starts the workflow.
func newMove(t *testing.T, area string, batch, continueAfter int) workflows.WindowMoveInput {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	in := workflows.WindowMoveInput{MoveID: uuid.NewString(), ExamAreaCode: area, Year: 2027, Sitting: 1,
		Window:    workflows.Window{StartsAt: now.Add(-2 * time.Hour), EndsAt: now.AddDate(0, 0, 40)},
		BatchSize: batch, ContinueAfter: continueAfter}
	err := store.CreateWindowMove(context.Background(), registrations.WindowMove{ID: in.MoveID, ExamAreaCode: area, Year: 2027, Sitting: 1,
		StartsAt: in.Window.StartsAt, EndsAt: in.Window.EndsAt})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// runMove runs a window move to its end, a run after another as it
// continues as new; register adds the activities to each run's
// environment. It returns the result and the number of runs.
func runMove(t *testing.T, in workflows.WindowMoveInput, register func(*testsuite.TestWorkflowEnvironment)) (workflows.WindowMoveResult, int) {
	t.Helper()
	for runs := 1; runs <= 50; runs++ {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(workflows.WindowMove, workflow.RegisterOptions{Name: workflows.WindowMoveWorkflowName})
		register(env)
		env.ExecuteWorkflow(workflows.WindowMoveWorkflowName, in)
		if !env.IsWorkflowCompleted() {
			t.Fatal("the window move did not complete")
		}
		err := env.GetWorkflowError()
		var next *workflow.ContinueAsNewError
		if errors.As(err, &next) {
			in = workflows.WindowMoveInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(next.Input, &in); err != nil {
				t.Fatal(err)
			}
			if in.Runs != runs {
				t.Fatalf("run %d continued as run %d", runs, in.Runs+1)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.WindowMoveResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		return res, runs
	}
	t.Fatal("the window move did not end in 50 runs")
	return workflows.WindowMoveResult{}, 0
}

func registerAll(acts *activities.WindowMoves) func(*testsuite.TestWorkflowEnvironment) {
	return func(env *testsuite.TestWorkflowEnvironment) { env.RegisterActivity(acts) }
}

// checkOnce fails unless every registration's window changed exactly once
// and it was only ever sent this move's update id.
func checkOnce(t *testing.T, f *fakeChanger, ids []string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.changes[id] != 1 || len(f.applied[id]) != 1 {
			t.Errorf("registration %s: window changed %d time(s) by %d update id(s)", id, f.changes[id], len(f.applied[id]))
		}
	}
}

// A move of 23 registrations in batches of 4 continues as new after every
// 8 and keeps its progress in PostgreSQL across the runs: each
// registration is moved once, the move ends done with all moved.
func TestWindowMoveContinuesAsNew(t *testing.T) {
	ids := moveArea(t, "0900", 23)
	in := newMove(t, "0900", 4, 8)
	f := newFakeChanger()
	acts := &activities.WindowMoves{Registrations: store, Changer: f}
	var progress []int // moved, as GET would show it, at the start of each later run
	res, runs := runMove(t, in, func(env *testsuite.TestWorkflowEnvironment) {
		m, err := store.WindowMove(context.Background(), in.MoveID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Moved > 0 {
			if m.State != registrations.MoveRunning || m.Total != 23 {
				t.Errorf("between runs: %+v", m)
			}
			progress = append(progress, m.Moved)
		}
		env.RegisterActivity(acts)
	})
	if runs != 3 || fmt.Sprint(progress) != "[8 16]" {
		t.Errorf("%d runs, progress %v; want 3 runs, [8 16]", runs, progress)
	}
	if res != (workflows.WindowMoveResult{Total: 23, Moved: 23}) {
		t.Errorf("result %+v", res)
	}
	checkOnce(t, f, ids)
	m, err := store.WindowMove(context.Background(), in.MoveID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != registrations.MoveDone || m.Total != 23 || m.Moved != 23 || len(m.NotMoved) != 0 || m.FinishedAt == nil {
		t.Errorf("the move: %+v", m)
	}
	for _, id := range ids {
		r, err := store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !r.WindowEndsAt.Equal(in.Window.EndsAt) {
			t.Errorf("registration %s ends %v, want %v", id, r.WindowEndsAt, in.Window.EndsAt)
		}
	}
}

// A batch whose worker dies half-way (here: its activity fails after three
// updates were applied) is retried with the same registrations and update
// ids: nobody is moved twice, and the progress counts each once.
func TestWindowMoveBatchRetriedMovesNobodyTwice(t *testing.T) {
	ids := moveArea(t, "0800", 12)
	in := newMove(t, "0800", 5, 0)
	f := newFakeChanger()
	acts := &activities.WindowMoves{Registrations: store, Changer: f, Parallel: 1}
	register := func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterActivity(acts)
		// The second batch's first attempt: three updates, then the crash.
		env.RegisterActivityWithOptions(func(ctx context.Context, b activities.WindowMoveBatch) (activities.WindowMoveBatchResult, error) {
			if b.RegistrationIDs[0] != ids[5] || activity.GetInfo(ctx).Attempt > 1 {
				return acts.WindowMoveBatch(ctx, b)
			}
			crash, cancel := context.WithCancel(ctx)
			defer cancel()
			var sent atomic.Int32
			f.mu.Lock()
			f.sent = func() {
				if sent.Add(1) == 3 {
					cancel()
				}
			}
			f.mu.Unlock()
			_, err := acts.WindowMoveBatch(crash, b)
			f.mu.Lock()
			f.sent = nil
			f.mu.Unlock()
			if err == nil {
				t.Error("the crashed batch succeeded")
			}
			return activities.WindowMoveBatchResult{}, errors.New("worker lost")
		}, activity.RegisterOptions{Name: "WindowMoveBatch", DisableAlreadyRegisteredCheck: true})
	}
	res, _ := runMove(t, in, register)
	if res != (workflows.WindowMoveResult{Total: 12, Moved: 12}) {
		t.Errorf("result %+v", res)
	}
	checkOnce(t, f, ids)
	resent := 0
	for _, id := range ids[5:10] {
		if f.calls[id] > 1 {
			resent++
		}
	}
	if resent != 3 {
		t.Errorf("%d registrations of the crashed batch were sent their update again, want 3", resent)
	}
	if m, _ := store.WindowMove(context.Background(), in.MoveID); m.Moved != 12 || m.Total != 12 {
		t.Errorf("the move: %+v", m)
	}
}

// One registration's workflow is still starting on the first look (moved
// on the second, 2 s later), one has ended meanwhile (neither moved nor not
// moved), one always refuses (listed as not moved after three looks).
func TestWindowMoveLooksAgain(t *testing.T) {
	ids := moveArea(t, "0700", 6)
	starting, ended, stuck := ids[1], ids[2], ids[4]
	in := newMove(t, "0700", 0, 0)
	f := newFakeChanger()
	f.answer = func(id string, n int) error {
		switch {
		case id == starting && n == 1:
			return fmt.Errorf("no workflow runs registration %s (yet): not found", id)
		case id == ended:
			if _, err := database.Exec(`UPDATE registrations SET status = 'withdrawn' WHERE id = $1`, id); err != nil {
				return err
			}
			return fmt.Errorf("%w: registration is already withdrawn", activities.ErrRegistrationEnded)
		case id == stuck:
			return errors.New("temporarily unavailable")
		}
		return nil
	}
	res, _ := runMove(t, in, registerAll(&activities.WindowMoves{Registrations: store, Changer: f}))
	if res != (workflows.WindowMoveResult{Total: 6, Moved: 4, NotMoved: 1}) {
		t.Errorf("result %+v", res)
	}
	if f.calls[starting] != 2 || f.calls[ended] != 1 || f.calls[stuck] != 3 {
		t.Errorf("calls: starting %d, ended %d, stuck %d; want 2, 1, 3", f.calls[starting], f.calls[ended], f.calls[stuck])
	}
	m, err := store.WindowMove(context.Background(), in.MoveID)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.NotMoved) != 1 || m.NotMoved[0].RegistrationID != stuck || m.NotMoved[0].Reason != "temporarily unavailable" || m.Moved != 4 {
		t.Errorf("the move: %+v", m)
	}
}

// A later move of the same area stops a running one at its next batch; a
// move waits for an earlier one still running, and takes over one whose
// workflow no longer runs.
func TestWindowMoveSupersededAndWaiting(t *testing.T) {
	moveArea(t, "0600", 3)
	first := newMove(t, "0600", 0, 0)
	second := newMove(t, "0600", 0, 0)
	f := newFakeChanger()
	acts := &activities.WindowMoves{Registrations: store, Changer: f, Poll: 10 * time.Millisecond}
	res, _ := runMove(t, first, registerAll(acts))
	if res.SupersededBy != second.MoveID || res.Moved != 0 || len(f.calls) != 0 {
		t.Fatalf("the superseded move: %+v, %d registrations sent an update", res, len(f.calls))
	}

	// The second waits while a third, earlier than it, still runs.
	third := newMove(t, "0600", 0, 0)
	_, err := database.Exec(`UPDATE window_moves SET seq = (SELECT min(seq) - 1 FROM window_moves) WHERE id = $1`, third.MoveID)
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	f.running = func(id string) bool {
		if id != third.MoveID {
			t.Errorf("asked whether %s runs", id)
		}
		asked++
		return asked < 3
	}
	res, _ = runMove(t, second, registerAll(acts))
	if asked != 3 || res != (workflows.WindowMoveResult{Total: 3, Moved: 3}) {
		t.Errorf("asked %d times; result %+v", asked, res)
	}
	m, err := store.WindowMove(context.Background(), third.MoveID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != registrations.MoveDone || m.SupersededBy == nil || *m.SupersededBy != second.MoveID {
		t.Errorf("the move whose workflow stopped: %+v", m)
	}
}
