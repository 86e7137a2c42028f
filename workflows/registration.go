// Package workflows holds the registration workflow: one execution per
// registration, from submission to the admission ticket (准考证号).
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

// a is only used to name activity methods; the worker registers the real one.
var a *activities.Activities

// registration is the state of one running registration.
type registration struct {
	in           Input
	status       string
	seq          int    // history entries recorded so far (the API wrote the first)
	reasonID     string // the last rejection's reason (its text stays in PostgreSQL)
	reportID     string
	windowClosed bool
	recording    workflow.Mutex      // held while a transition is being recorded
	updateID     string              // the update whose transition it is
	cancelCheck  workflow.CancelFunc // stops the diploma check (a withdrawal)
	online       registrations.Online
	challenges   []string // the challenges tries have used (at most MaxOnlineTries)
	portraitID   string   // the last try's portrait, the photo of a manual check's approval
}

// Registration runs one registration (新生注册 or 在籍注册):
//
//	新生 专升本: diploma check → found: pre-registered
//	                           → not found: awaiting report → county review → provincial review → pre-registered
//	                             (a rejection at either review returns to awaiting report)
//	新生 专科, 在籍: pre-registered
//	pre-registered → on-site check within the window → completed, with an admission ticket number
//	               → online verification (网上验证) before the window ends: a match → completed;
//	                 three failed tries → manual check asked for → identity review (人工核验)
//	                   → approved: completed; refused: pre-registered, on site only
//
// Waiting for a report or for the on-site check when the exam area's
// confirmation window closes ends it as expired (a manual check in progress
// does not expire: the office decides it); the applicant may withdraw,
// and the county or provincial office annul it (作废), at any time before
// completion. The office may also move it to another exam area (考区变更),
// and an administrator move its area's window: it keeps its status and
// follows the new window (area.go). Decisions arrive as Workflow Updates whose
// validators refuse what is not allowed in the current state.
func Registration(ctx workflow.Context, in Input) (State, error) {
	r := &registration{in: in, status: in.FirstStatus(), seq: 1, online: registrations.Online{TriesLeft: MaxOnlineTries},
		recording: workflow.NewMutex(ctx)}
	// The diploma check holds the registration from the very start, so that
	// a decision that arrives with the first workflow task waits for its
	// outcome (a withdrawal stops it instead).
	checkCtx := ctx
	if in.NeedsDiplomaCheck() {
		r.recording.TryLock(ctx) // free: nothing else has run
		checkCtx, r.cancelCheck = workflow.WithCancel(ctx)
	}
	if err := r.setUpdateHandlers(ctx); err != nil {
		return State{}, err
	}
	workflow.SetCurrentDetails(ctx, r.details())
	err := r.run(ctx, checkCtx)
	if errors.Is(ctx.Err(), workflow.ErrCanceled) {
		return r.cancelled(ctx)
	}
	if err != nil {
		return State{}, err
	}
	return r.state(), nil
}

// run takes the registration through its steps to its end.
func (r *registration) run(ctx, checkCtx workflow.Context) error {
	if r.in.NeedsDiplomaCheck() {
		if err := r.checkDiploma(ctx, checkCtx); err != nil {
			return err
		}
	}

	// One durable timer for the end of the confirmation window.
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	workflow.Go(timerCtx, r.watchWindow)

	expirable := func() bool { return r.status == status.AwaitingReport || r.status == status.PreRegistered }
	if err := workflow.Await(ctx, func() bool {
		return !r.recording.IsLocked() && (status.Terminal(r.status) || (r.windowClosed && expirable()))
	}); err != nil {
		return err
	}
	cancelTimer()
	if !status.Terminal(r.status) {
		r.recording.TryLock(ctx) // free: the condition above saw it so
		err := r.record(ctx, status.Expired, BySystem, 0, "现场确认期已结束，未完成确认")
		r.recording.Unlock()
		if err != nil {
			return err
		}
	}
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// watchWindow keeps windowClosed current with one timer for the end of the
// confirmation window; when an administrator moves the window, the timer is
// cancelled and another started for the new end.
func (r *registration) watchWindow(ctx workflow.Context) {
	for {
		end := r.in.Window.EndsAt
		moved := func() bool { return !r.in.Window.EndsAt.Equal(end) }
		if d := end.Sub(workflow.Now(ctx)); d > 0 {
			r.windowClosed = false
			timerCtx, cancel := workflow.WithCancel(ctx)
			timer := workflow.NewTimerWithOptions(timerCtx, d, workflow.TimerOptions{Summary: "confirmation window closes"})
			err := workflow.Await(ctx, func() bool { return timer.IsReady() || moved() })
			cancel() // nothing to cancel once it fired
			if err != nil {
				return // the registration has ended
			}
			if !timer.IsReady() {
				continue // moved before the end
			}
		}
		r.windowClosed = true
		if err := workflow.Await(ctx, moved); err != nil {
			return
		}
	}
}

// cancelled closes the registration of a workflow an operator cancelled, so
// that the applicant may register again, and ends the workflow as cancelled.
func (r *registration) cancelled(ctx workflow.Context) (State, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	// A decision being recorded was cancelled too: let its handler finish,
	// and hold the registration from then on.
	if err := r.recording.Lock(ctx); err != nil {
		return State{}, err
	}
	if r.status == status.Completed {
		return r.state(), nil // too late to cancel: the ticket is issued
	}
	if !status.Terminal(r.status) {
		r.updateID = ""
		if err := r.record(ctx, status.Withdrawn, BySystem, 0, "运维人员已取消本次注册"); err != nil {
			return State{}, err
		}
	}
	return r.state(), workflow.ErrCanceled
}

// checkDiploma asks the national diploma registry (学信网) whether the
// applicant holds an associate diploma or higher. The registry gets an hour
// of retries; if it stays down, the applicant can still prove the diploma
// with a certification report. A withdrawal stops the check (cancels
// checkCtx). The registration is held (recording) until the outcome is
// recorded.
func (r *registration) checkDiploma(ctx, checkCtx workflow.Context) error {
	defer func() { r.recording.Unlock(); r.cancelCheck = nil }()

	var found bool
	err := run(checkCtx, versionLongAsk, "ask the diploma registry", time.Hour, a.CheckDiploma, r.in.RegistrationID, &found)
	next, note := status.AwaitingReport, "学信网未查到专科及以上学历，请上传学历认证报告"
	switch {
	case temporal.IsCanceledError(err):
		return nil // withdrawn meanwhile: the withdrawal records the next step
	case err != nil:
		note = "学信网暂时无法查询，请上传学历认证报告"
		workflow.GetLogger(ctx).Warn("Diploma registry unavailable; asking for a report", "Error", err)
	case found:
		next, note = status.PreRegistered, "学信网学历校验通过"
	}
	return r.record(ctx, next, BySystem, 0, note)
}

func (r *registration) state() State {
	return State{Status: r.status, Seq: r.seq}
}

func (r *registration) details() string {
	s := fmt.Sprintf("**%s** (%s)\n\nExam area %s, confirmation window: %s – %s", status.Label(r.status), r.status,
		r.in.ExamAreaCode, r.in.Window.StartsAt.Format(time.RFC3339), r.in.Window.EndsAt.Format(time.RFC3339))
	switch {
	case r.status == status.Annulled:
		s += "\n\nAnnulled by the exam office (reason " + r.reasonID + " in PostgreSQL)."
	case r.reasonID != "":
		s += "\n\nThe last report was rejected (reason " + r.reasonID + " in PostgreSQL)."
	}
	if o := r.online; o.LastResult != "" || o.ReviewAsked {
		s += fmt.Sprintf("\n\nOnline verification: %d tries left, closed %v, last result %q, manual check asked %v.",
			o.TriesLeft, o.Closed, o.LastResult, o.ReviewAsked)
	}
	return s
}
