package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"zikao/activities"
	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/chsi"
	"zikao/internal/idcard"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
	"zikao/worker"
	"zikao/workflows"
)

var (
	database *sqlx.DB
	store    *registrations.Store
	registry *httptest.Server
)

// The diploma registry stand-in knows this one person.
const (
	knownIDNumber = "420106199503151234"
	knownName     = "李明"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database, store = db, registrations.NewStore(db)
		registry = httptest.NewServer(chsi.StandIn("u", "k", []chsi.Diploma{{IDNumber: knownIDNumber, Name: knownName}}))
		defer registry.Close()
		return m.Run()
	}, false))
}

// The sitting's confirmation window in these tests: 1 to 31 March 2027.
var (
	windowStart = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	windowEnd   = time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)
	inWindow    = windowStart.Add(24 * time.Hour)
)

type step struct {
	after  time.Duration // since the previous step
	update string
	arg    any
	refuse string // the refusal code expected, "" when the update should succeed
}

type scenario struct {
	t         *testing.T
	env       *testsuite.TestWorkflowEnvironment
	in        workflows.Input
	upload    workflows.ReportUpload // a report stored for this registration
	ended     int                    // steps whose update was answered
	cancelled bool                   // the test cancels the workflow
}

// newScenario creates the registration row the API would have created and
// a test environment running the workflow with the real activities.
func newScenario(t *testing.T, level, idNumber, name string, start time.Time) *scenario {
	t.Helper()
	ctx := context.Background()
	acc, err := accounts.NewStore(database).SignUp(ctx, uuid.NewString()+"@example.com", "secret1", 1, "答案")
	if err != nil {
		t.Fatal(err)
	}
	if idNumber == "" {
		idNumber = testenv.IDNumber()
	}
	n, err := idcard.Parse(idNumber, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	major := "590201"
	if level == "zhuanshengben" {
		major = "120402"
	}
	in := workflows.Input{RegistrationID: uuid.NewString(), Kind: workflows.KindNew, Level: level, ExamAreaCode: "0106",
		Window: workflows.Window{StartsAt: windowStart, EndsAt: windowEnd}}
	reg := &registrations.Registration{ID: in.RegistrationID, AccountID: acc.ID, Kind: in.Kind, Status: in.FirstStatus(),
		Name: name, IDNumber: string(n), Gender: n.Gender(), BirthDate: n.BirthDate(), Phone: "13800000000",
		MajorType: "social", Level: level, MajorCode: major, ExamAreaCode: "0106", Year: 2027, Sitting: 1, TermsAgreedAt: start,
		WindowStartsAt: windowStart, WindowEndsAt: windowEnd}
	if err := catalog.New(database).SetWindow(ctx, "0106", 2027, 1, catalog.Window{StartsAt: windowStart, EndsAt: windowEnd}); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, reg, "提交注册"); err != nil {
		t.Fatal(err)
	}
	storeFiles(t)
	reportID, err := store.AddReport(ctx, in.RegistrationID, "upload-"+in.RegistrationID, reportFile, "ABCDEF123456", "", "")
	if err != nil {
		t.Fatal(err)
	}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	worker.RegisterWorkflow(env)
	env.RegisterActivity(&activities.Activities{Registrations: store, Diplomas: chsi.NewClient(registry.URL, "u", "k", 5*time.Second)})
	return &scenario{t: t, env: env, in: in, upload: workflows.ReportUpload{ReportID: reportID}}
}

// run executes the workflow, sending each step's update after its delay,
// and returns the workflow's result.
func (s *scenario) run(steps ...step) workflows.State {
	s.t.Helper()
	var at time.Duration
	for i, st := range steps {
		at += st.after
		s.env.RegisterDelayedCallback(func() {
			s.env.UpdateWorkflow(st.update, fmt.Sprintf("step-%d", i), &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { s.checkOutcome(i, st, err) },
				OnComplete: func(_ any, err error) {
					if err != nil || st.refuse == "" {
						s.checkOutcome(i, st, err)
					}
				},
			}, argsOf(st.arg)...)
		}, at)
	}
	s.env.ExecuteWorkflow(workflows.Registration, s.in)
	if !s.env.IsWorkflowCompleted() {
		s.t.Fatal("workflow did not complete")
	}
	if s.ended != len(steps) {
		s.t.Fatalf("%d of %d updates were answered", s.ended, len(steps))
	}
	if s.cancelled {
		if err := s.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
			s.t.Fatalf("workflow error %v, want cancelled", err)
		}
		return workflows.State{}
	}
	if err := s.env.GetWorkflowError(); err != nil {
		s.t.Fatalf("workflow failed: %v", err)
	}
	var out workflows.State
	if err := s.env.GetWorkflowResult(&out); err != nil {
		s.t.Fatal(err)
	}
	return out
}

func argsOf(arg any) []any {
	if arg == nil {
		return nil
	}
	return []any{arg}
}

func (s *scenario) checkOutcome(i int, st step, err error) {
	s.ended++
	code, refused := workflows.IsRefusal(err)
	switch {
	case st.refuse == "" && err != nil:
		s.t.Errorf("step %d (%s): unexpected error %v", i, st.update, err)
	case st.refuse != "" && (!refused || code != st.refuse):
		s.t.Errorf("step %d (%s): got %v, want refusal %s", i, st.update, err, st.refuse)
	}
}

// readModel returns the registration as the API would show it.
func (s *scenario) readModel() registrations.Registration {
	s.t.Helper()
	r, err := store.Get(context.Background(), s.in.RegistrationID)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

func (s *scenario) wantHistory(statuses ...string) {
	s.t.Helper()
	r := s.readModel()
	var got []string
	for _, h := range r.History {
		got = append(got, h.Status)
	}
	if fmt.Sprint(got) != fmt.Sprint(statuses) {
		s.t.Errorf("history = %v, want %v", got, statuses)
	}
	if r.Status != statuses[len(statuses)-1] {
		s.t.Errorf("read model status = %s, want %s", r.Status, statuses[len(statuses)-1])
	}
}

var ticketPattern = regexp.MustCompile(`^0106271\d{5}$`)

func (s *scenario) wantTicket(out workflows.State) {
	s.t.Helper()
	if out.Status != status.Completed {
		s.t.Fatalf("result = %+v, want completed", out)
	}
	r := s.readModel()
	if r.TicketNumber == nil || !ticketPattern.MatchString(*r.TicketNumber) || r.PhotoFileID == nil {
		s.t.Errorf("read model ticket = %v photo = %v, want 0106271xxxxx and a photo", r.TicketNumber, r.PhotoFileID)
	}
}

// reason stores a reviewer's reason, as the API does, and returns the
// decision that carries its id.
func (s *scenario) reject(text string) workflows.Review {
	s.t.Helper()
	id, err := store.AddReason(context.Background(), s.in.RegistrationID, uuid.NewString(), text)
	if err != nil {
		s.t.Fatal(err)
	}
	return workflows.Review{ReasonID: id}
}

var (
	reportFile = uuid.NewString()
	approve    = workflows.Review{Approved: true}
	photo      = workflows.OnsiteCheck{PhotoFileID: uuid.NewString()}
)

// Files referred to by updates must exist in the files table.
func storeFiles(t *testing.T) {
	t.Helper()
	for _, id := range []string{reportFile, photo.PhotoFileID} {
		_, err := database.Exec(`INSERT INTO files (id, sha256, content_type, size, data) VALUES ($1::uuid, sha256(convert_to($1::text, 'UTF8')), 'image/jpeg', 1, '\x00')
			ON CONFLICT DO NOTHING`, id)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestZhuankeGoesStraightToOnsiteCheck(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "张三", inWindow)
	out := s.run(step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo})
	s.wantTicket(out)
	s.wantHistory(status.PreRegistered, status.Completed)
}

func TestZhuanshengbenDiplomaFound(t *testing.T) {
	s := newScenario(t, "zhuanshengben", knownIDNumber, knownName, inWindow)
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload, refuse: workflows.ErrNotAwaitingReport},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
	s.wantHistory(status.DiplomaCheck, status.PreRegistered, status.Completed)
}

func TestLongestPath(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "王五", inWindow)
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateProvincialReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.ProvincialReview, status.PreRegistered, status.Completed)
	if r := s.readModel(); r.ReportFileID == nil || *r.ReportFileID != reportFile || *r.ReportVerificationCode != "ABCDEF123456" {
		t.Errorf("report on file = %v, want %s", r.ReportFileID, reportFile)
	}
}

func TestCountyRejectionThenNewReport(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "赵六", inWindow)
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: workflows.Review{}, refuse: workflows.ErrInvalidDecision},
		step{after: time.Minute, update: workflows.UpdateCountyReview, arg: s.reject("报告模糊")},
		step{after: time.Minute, update: workflows.UpdateProvincialReview, arg: approve, refuse: workflows.ErrNotAwaitingReview},
		step{after: time.Hour, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateProvincialReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.AwaitingReport,
		status.CountyReview, status.ProvincialReview, status.PreRegistered, status.Completed)
	if r := s.readModel(); r.RejectionReason != nil {
		t.Errorf("rejection reason after a new report = %q, want none", *r.RejectionReason)
	}
}

func TestProvincialRejectionAwaitsNewReport(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "钱七", inWindow)
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: approve},
		step{after: time.Minute, update: workflows.UpdateCountyReview, arg: approve, refuse: workflows.ErrNotAwaitingReview}, // duplicate decision
		step{after: time.Hour, update: workflows.UpdateProvincialReview, arg: s.reject("证书编号不符")},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo, refuse: workflows.ErrNotPreRegistered},
	)
	// Nobody uploads again: the window closes and the registration expires.
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired after the provincial rejection", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.ProvincialReview, status.AwaitingReport, status.Expired)
	if r := s.readModel(); r.RejectionReason == nil || *r.RejectionReason != "证书编号不符" {
		t.Errorf("read model rejection reason = %v", r.RejectionReason)
	}
}

func TestExpiresWhileAwaitingReport(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "孙八", inWindow)
	out := s.run()
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.Expired)
}

func TestExpiresWhilePreRegistered(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "周九", inWindow)
	out := s.run()
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired", out)
	}
	s.wantHistory(status.PreRegistered, status.Expired)
	if r := s.readModel(); !r.UpdatedAt.Equal(windowEnd) {
		t.Errorf("expired at %s, want the end of the window %s", r.UpdatedAt, windowEnd)
	}
}

func TestReviewOutlastingTheWindowStillDecides(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "吴十", inWindow)
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: 45 * 24 * time.Hour, update: workflows.UpdateCountyReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateProvincialReview, arg: approve},
	)
	// Approved after the window closed: nothing left to confirm on site.
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.ProvincialReview, status.PreRegistered, status.Expired)
}

func TestWithdraw(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "郑十一", inWindow)
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateWithdraw},
	)
	if out.Status != status.Withdrawn {
		t.Fatalf("result = %+v, want withdrawn", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.Withdrawn)
}

func TestOnsiteCheckOnlyWithinWindow(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "冯十二", windowStart.Add(-48*time.Hour))
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo, refuse: workflows.ErrOutsideWindow},
		step{after: 48 * time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
}

func TestCompleteIsIdempotent(t *testing.T) {
	storeFiles(t)
	ctx := context.Background()
	var tickets []string
	for i := 0; i < 2; i++ {
		s := newScenario(t, "zhuanke", "", "陈十三", inWindow)
		done := registrations.Completion{RegistrationID: s.in.RegistrationID, Seq: 2, At: inWindow, PhotoFileID: photo.PhotoFileID, ByRole: workflows.ByOnsiteOperator}
		first, err := store.Complete(ctx, done)
		if err != nil {
			t.Fatal(err)
		}
		again, err := store.Complete(ctx, done)
		if err != nil {
			t.Fatal(err)
		}
		if first != again || !ticketPattern.MatchString(first) {
			t.Fatalf("retried Complete = %s then %s, want the same 0106271xxxxx number", first, again)
		}
		tickets = append(tickets, first)
	}
	if tickets[0] == tickets[1] {
		t.Errorf("two registrations got the same ticket number %s", tickets[0])
	}
}

func TestRefusalCodes(t *testing.T) {
	if _, ok := workflows.IsRefusal(errors.New("plain")); ok {
		t.Error("a plain error is no refusal")
	}
}

// A withdrawal that meets the end of the window is answered, and the
// workflow ends, whichever comes first.
func TestWithdrawalAtTheEndOfTheWindow(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "褚十四", inWindow)
	answered := false
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateWithdraw, "w", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { answered = true },
			OnComplete: func(_ any, err error) {
				answered = true
				if code, _ := workflows.IsRefusal(err); err != nil && code != workflows.ErrClosed {
					t.Errorf("withdrawal: %v", err)
				}
			},
		})
	}, windowEnd.Sub(inWindow))
	s.env.ExecuteWorkflow(workflows.Registration, s.in)
	if !s.env.IsWorkflowCompleted() || s.env.GetWorkflowError() != nil {
		t.Fatalf("workflow completed %v, error %v", s.env.IsWorkflowCompleted(), s.env.GetWorkflowError())
	}
	var out workflows.State
	if err := s.env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if !answered || (out.Status != status.Expired && out.Status != status.Withdrawn) {
		t.Fatalf("answered %v, result %+v", answered, out)
	}
}

// A withdrawal does not wait for a diploma registry that does not answer.
func TestWithdrawalStopsTheDiplomaCheck(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "卫十五", inWindow)
	s.registryDown()
	out := s.run(step{after: time.Minute, update: workflows.UpdateWithdraw})
	if out.Status != status.Withdrawn {
		t.Fatalf("result %+v, want withdrawn", out)
	}
	s.wantHistory(status.DiplomaCheck, status.Withdrawn)
}

// An operator who cancels a workflow closes the registration as withdrawn,
// so that the applicant may register again.
func TestOperatorCancelClosesTheRegistration(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "蒋十六", inWindow)
	s.cancelled = true
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.run(step{after: time.Hour, update: workflows.UpdateUploadReport, arg: s.upload})
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.Withdrawn)
}

// An administrator extends the window: the registration keeps to the new one.
func TestWindowExtended(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanke", "", "何廿一", inWindow)
	longer := workflows.Window{StartsAt: windowStart, EndsAt: windowEnd.Add(10 * 24 * time.Hour)}
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: workflows.Window{StartsAt: windowEnd, EndsAt: windowStart}, refuse: workflows.ErrInvalidDecision},
		step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: longer},
		step{after: windowEnd.Sub(inWindow) + 3*24*time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
	if r := s.readModel(); !r.WindowEndsAt.Equal(longer.EndsAt) {
		t.Errorf("read model window ends %s, want %s", r.WindowEndsAt, longer.EndsAt)
	}
}

// An administrator shortens the window: the registration expires at the new end.
func TestWindowShortened(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "吕廿二", inWindow)
	shorter := workflows.Window{StartsAt: windowStart, EndsAt: inWindow.Add(48 * time.Hour)}
	out := s.run(step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: shorter})
	if out.Status != status.Expired {
		t.Fatalf("result %+v, want expired", out)
	}
	if r := s.readModel(); !r.UpdatedAt.Equal(shorter.EndsAt) {
		t.Errorf("expired at %s, want the new end %s", r.UpdatedAt, shorter.EndsAt)
	}
}

// A window extended after it closed, while the report was under review,
// lets the approved applicant come on site after all.
func TestWindowReopenedDuringReview(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanshengben", "", "施廿三", inWindow)
	reopened := workflows.Window{StartsAt: windowStart, EndsAt: windowEnd.Add(20 * 24 * time.Hour)}
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: windowEnd.Sub(inWindow) + 24*time.Hour, update: workflows.UpdateChangeWindow, arg: reopened},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateProvincialReview, arg: approve},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
}

// A window change that is still being recorded when the old end passes
// must not expire the registration it extends. (The write is made slow with
// a mock: the only way to make PostgreSQL take two minutes here.)
func TestWindowExtendedAcrossTheOldEnd(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanke", "", "曹廿五", inWindow)
	moving := mock.MatchedBy(func(t registrations.Transition) bool { return t.Window != nil })
	s.env.OnActivity("Record", mock.Anything, moving).Return(nil).After(2 * time.Minute)
	longer := workflows.Window{StartsAt: windowStart, EndsAt: windowEnd.Add(10 * 24 * time.Hour)}
	out := s.run(
		step{after: windowEnd.Sub(inWindow) - time.Minute, update: workflows.UpdateChangeWindow, arg: longer},
		step{after: 24 * time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
	s.env.AssertExpectations(t) // the slow write did happen
}

// Moving the window cancels the old timer: one timer runs at a time.
func TestWindowMovesKeepOneTimer(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanke", "", "严廿六", inWindow)
	fired, cancelled := 0, 0
	s.env.SetOnTimerFiredListener(func(string) { fired++ })
	s.env.SetOnTimerCanceledListener(func(string) { cancelled++ })
	w := func(d time.Duration) workflows.Window {
		return workflows.Window{StartsAt: windowStart, EndsAt: windowEnd.Add(d)}
	}
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: w(10 * 24 * time.Hour)},
		step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: w(5 * 24 * time.Hour)},
		step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: w(0)},
	)
	if out.Status != status.Expired {
		t.Fatalf("result %+v, want expired at the end of the last window", out)
	}
	// Each move cancels the timer of the window it replaces; only the last fires.
	if fired != 1 || cancelled != 3 {
		t.Errorf("%d timers fired and %d were cancelled, want 1 and 3", fired, cancelled)
	}
}

// An operator's cancel that arrives while the on-site check is being
// recorded does not interrupt it: the registration completes with its
// ticket, and history, read model and workflow agree.
func TestCancelDuringCompletionKeepsTheCompletion(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanke", "", "韩二二", inWindow)
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateOnsiteCheck, "onsite", &testsuite.TestUpdateCallback{
			OnAccept: func() { s.env.CancelWorkflow() }, // while the completion is being written
			OnReject: func(err error) { t.Errorf("on-site check refused: %v", err) },
			OnComplete: func(_ any, err error) {
				if err != nil {
					t.Errorf("on-site check: %v", err)
				}
			},
		}, photo)
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.Registration, s.in)
	if !s.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var out workflows.State
	if err := s.env.GetWorkflowResult(&out); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	s.wantTicket(out)
	s.wantHistory(status.PreRegistered, status.Completed)
}

// A withdrawal that arrives with the workflow's first task, before the
// diploma check has started, stops the check: one withdrawal, nothing after
// it (the fault-injection run found the check's outcome recorded over it).
func TestWithdrawalBeforeTheDiplomaCheckStarts(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "秦二三", inWindow)
	out := s.run(step{update: workflows.UpdateWithdraw})
	if out.Status != status.Withdrawn {
		t.Fatalf("result %+v, want withdrawn", out)
	}
	s.wantHistory(status.DiplomaCheck, status.Withdrawn)
}

// annulment stores the office's reason, as the service does, and returns
// the county reviewer's annulment that carries its id.
func (s *scenario) annulment(text string) workflows.Annulment {
	s.t.Helper()
	id, err := store.AddReason(context.Background(), s.in.RegistrationID, "annul/"+uuid.NewString(), text)
	if err != nil {
		s.t.Fatal(err)
	}
	return workflows.Annulment{ReasonID: id, ByRole: workflows.ByCountyReviewer, AccountID: reviewerID(s.t)}
}

// reviewerID creates a county reviewer of 0106 and returns its account id.
func reviewerID(t *testing.T) int64 {
	t.Helper()
	a, err := accounts.NewStore(database).CreateStaff(context.Background(), "county-"+uuid.NewString()[:8]+"@example.com",
		"password", accounts.RoleCountyReviewer, "0106")
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// wantAnnulled checks the workflow's result and the read model of an
// annulled registration: its reason, shown in the history too.
func (s *scenario) wantAnnulled(out workflows.State, reason string, statuses ...string) {
	s.t.Helper()
	if out.Status != status.Annulled {
		s.t.Fatalf("result = %+v, want annulled", out)
	}
	s.wantHistory(append(statuses, status.Annulled)...)
	r := s.readModel()
	last := r.History[len(r.History)-1]
	if r.AnnulmentReason == nil || *r.AnnulmentReason != reason || r.RejectionReason != nil {
		s.t.Errorf("annulment reason %v, rejection reason %v, want %q and none", r.AnnulmentReason, r.RejectionReason, reason)
	}
	if last.ByRole != workflows.ByCountyReviewer || last.Note != "区考办已作废本次注册："+reason {
		s.t.Errorf("last step by %s: %q", last.ByRole, last.Note)
	}
}

// The office annuls a registration in each state it may wait in: the
// annulment ends the wait, and the registration (whose workflow ends, so
// that no later decision reaches it).
func TestAnnulEndsEveryWait(t *testing.T) {
	const reason = "冒用他人身份证号"
	t.Run("diploma check", func(t *testing.T) {
		s := newScenario(t, "zhuanshengben", "", "秦三一", inWindow)
		s.registryDown()
		out := s.run(step{after: time.Minute, update: workflows.UpdateAnnul, arg: s.annulment(reason)})
		s.wantAnnulled(out, reason, status.DiplomaCheck)
	})
	t.Run("awaiting report", func(t *testing.T) {
		s := newScenario(t, "zhuanshengben", "", "秦三二", inWindow)
		out := s.run(
			step{after: time.Hour, update: workflows.UpdateCountyReview, arg: s.reject("报告模糊"), refuse: workflows.ErrNotAwaitingReview},
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: s.annulment(reason)},
		)
		s.wantAnnulled(out, reason, status.DiplomaCheck, status.AwaitingReport)
	})
	t.Run("county review", func(t *testing.T) {
		s := newScenario(t, "zhuanshengben", "", "秦三三", inWindow)
		out := s.run(
			step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: s.annulment(reason)},
		)
		s.wantAnnulled(out, reason, status.DiplomaCheck, status.AwaitingReport, status.CountyReview)
	})
	t.Run("provincial review after a rejection", func(t *testing.T) {
		s := newScenario(t, "zhuanshengben", "", "秦三四", inWindow)
		out := s.run(
			step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
			step{after: time.Hour, update: workflows.UpdateCountyReview, arg: s.reject("报告模糊")},
			step{after: time.Hour, update: workflows.UpdateUploadReport, arg: s.upload},
			step{after: time.Hour, update: workflows.UpdateCountyReview, arg: approve},
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: s.annulment(reason)},
		)
		s.wantAnnulled(out, reason, status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.AwaitingReport,
			status.CountyReview, status.ProvincialReview)
	})
	t.Run("pre-registered", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "秦三五", inWindow)
		out := s.run(
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: workflows.Annulment{ByRole: workflows.ByCountyReviewer}, refuse: workflows.ErrInvalidDecision},
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: workflows.Annulment{ReasonID: uuid.NewString(), ByRole: workflows.ByOnsiteOperator}, refuse: workflows.ErrInvalidDecision},
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: s.annulment(reason)},
		)
		s.wantAnnulled(out, reason, status.PreRegistered)
	})
}

// A completed registration cannot be annulled: its ticket is issued. The
// annulment arrives while the completion is being recorded (passing the
// validator, which still sees pre_registered), and is refused when its turn
// comes. (Once the workflow has ended, the service answers the same code.)
func TestAnnulAfterCompletionIsRefused(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanke", "", "秦三六", inWindow)
	annul, refused := s.annulment("冒用他人身份证号"), false
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateOnsiteCheck, "onsite", &testsuite.TestUpdateCallback{
			OnAccept: func() {
				s.env.UpdateWorkflow(workflows.UpdateAnnul, "annul", &testsuite.TestUpdateCallback{
					OnAccept: func() {},
					OnReject: func(err error) { t.Errorf("annulment rejected by the validator: %v", err) },
					OnComplete: func(_ any, err error) {
						code, _ := workflows.IsRefusal(err)
						refused = code == workflows.ErrClosed
					},
				}, annul)
			},
			OnReject:   func(err error) { t.Errorf("on-site check refused: %v", err) },
			OnComplete: func(_ any, err error) {},
		}, photo)
	}, time.Hour)
	s.env.ExecuteWorkflow(workflows.Registration, s.in)
	var out workflows.State
	if err := s.env.GetWorkflowResult(&out); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if !refused {
		t.Error("the annulment of a completed registration was not refused with registration_closed")
	}
	s.wantTicket(out)
	s.wantHistory(status.PreRegistered, status.Completed)
	if r := s.readModel(); r.AnnulmentReason != nil {
		t.Errorf("annulment reason %q on a completed registration", *r.AnnulmentReason)
	}
}

// Each step records the account that made it; system steps none.
func TestStepsRecordTheirAccount(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "秦三七", inWindow)
	upload := s.upload
	upload.AccountID = s.readModel().AccountID
	reviewer := reviewerID(t)
	county := workflows.Review{Approved: true, AccountID: reviewer}
	s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: upload},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: county},
		step{after: time.Hour, update: workflows.UpdateWithdraw, arg: workflows.Withdrawal{AccountID: upload.AccountID}},
	)
	r := s.readModel()
	want := []int64{r.AccountID, 0, r.AccountID, reviewer, r.AccountID} // submitted, diploma check, upload, county, withdrawal
	for i, h := range r.History {
		var got int64
		if h.ByAccountID != nil {
			got = *h.ByAccountID
		}
		if i >= len(want) || got != want[i] {
			t.Errorf("step %d (%s by %s): account %d, want %v", i+1, h.Status, h.ByRole, got, want)
		}
	}
}

// registryDown makes the scenario's diploma registry answer 503 to every
// question.
func (s *scenario) registryDown() {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	s.t.Cleanup(down.Close)
	s.env.RegisterActivity(&activities.Activities{Registrations: store, Diplomas: chsi.NewClient(down.URL, "u", "k", time.Second)})
}
