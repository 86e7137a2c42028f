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

// untilDone is the retry deadline of read-model writes: they wait for
// PostgreSQL to come back, however long it is away. (A zero
// ScheduleToCloseTimeout would not do: the SDK replaces it with
// StartToCloseTimeout.)
const untilDone = 10 * 365 * 24 * time.Hour

// localActivity sets the options of a local activity, retried with backoff
// (at most a minute apart) for scheduleToClose.
func localActivity(ctx workflow.Context, summary string, scheduleToClose time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: scheduleToClose,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
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
	err := workflow.ExecuteLocalActivity(localActivity(checkCtx, "ask the diploma registry", time.Hour),
		a.CheckDiploma, r.in.RegistrationID).Get(checkCtx, &found)
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

// record writes a new status to the read model (a local activity, retried
// until it succeeds), then moves the workflow and its search attribute there.
// byAccount is the account that made the step (0 for the system). Not even
// a cancellation interrupts the write.
func (r *registration) record(ctx workflow.Context, next, byRole string, byAccount int64, note string) error {
	return r.recordStep(ctx, r.step(ctx, next, byRole, byAccount, note))
}

// step is the transition to next, as record writes it.
func (r *registration) step(ctx workflow.Context, next, byRole string, byAccount int64, note string) registrations.Transition {
	return registrations.Transition{
		RegistrationID: r.in.RegistrationID,
		Seq:            r.seq + 1,
		Status:         next,
		At:             workflow.Now(ctx),
		ByRole:         byRole,
		AccountID:      byAccount,
		Note:           note,
		ReasonID:       r.reasonID,
		ReportID:       r.reportID,
		UpdateID:       r.updateID,
		HistoryLength:  workflow.GetInfo(ctx).GetCurrentHistoryLength(),
	}
}

// recordStep writes a transition (record) and moves the workflow there.
func (r *registration) recordStep(ctx workflow.Context, t registrations.Transition) error {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteLocalActivity(localActivity(ctx, "record "+t.Status, untilDone), a.Record, t).Get(ctx, nil); err != nil {
		return fmt.Errorf("record %s: %w", t.Status, err)
	}
	if t.Online != nil {
		r.online = *t.Online
	}
	r.moveTo(ctx, t.Status)
	return nil
}

// complete records the completion (the identity confirmed on site, online
// or by the office's manual check) and issues the admission ticket number.
// The number stays in PostgreSQL: the activity's result is not kept (old
// histories hold it; new ones need not).
func (r *registration) complete(ctx workflow.Context, c registrations.Completion) error {
	c.RegistrationID, c.Seq, c.At = r.in.RegistrationID, r.seq+1, workflow.Now(ctx)
	c.UpdateID, c.HistoryLength = r.updateID, workflow.GetInfo(ctx).GetCurrentHistoryLength()
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteLocalActivity(localActivity(ctx, "issue admission ticket", untilDone), a.Complete, c).Get(ctx, nil); err != nil {
		return fmt.Errorf("complete registration: %w", err)
	}
	if c.Online != nil {
		r.online = *c.Online
	}
	r.moveTo(ctx, status.Completed)
	return nil
}

func (r *registration) moveTo(ctx workflow.Context, next string) {
	r.seq++
	changed := r.status != next // a failed online try stays pre-registered
	r.status = next
	if changed {
		if err := workflow.UpsertTypedSearchAttributes(ctx, StatusKey.ValueSet(next)); err != nil {
			workflow.GetLogger(ctx).Error("Upsert of RegistrationStatus failed", "Error", err)
		}
	}
	workflow.SetCurrentDetails(ctx, r.details())
}

func refuse(code, message string) error {
	return temporal.NewApplicationError(message, code)
}

// whenSettled is a validator's check of the state, made at once unless a
// step is being recorded (or the diploma check runs): the state is then
// about to change — the read model the caller saw may already show the next
// one, e.g. after a worker died between writing it and committing its
// workflow task — so the update is accepted and its handler checks the
// state again once the step is done (transition), refusing with the same
// codes.
func (r *registration) whenSettled(check func() error) error {
	if r.recording.IsLocked() {
		return nil
	}
	return check()
}

// transition runs one decision: it waits for any transition in progress,
// checks again that the decision still applies (a validator saw the state
// before that one finished), then records it.
func (r *registration) transition(ctx workflow.Context, check func() error, apply func() error) (State, error) {
	if err := r.recording.Lock(ctx); err != nil {
		return State{}, err
	}
	defer func() { r.recording.Unlock(); r.updateID = "" }()
	if err := check(); err != nil {
		return State{}, err
	}
	r.updateID = workflow.GetCurrentUpdateInfo(ctx).ID
	if err := apply(); err != nil {
		return State{}, err
	}
	return r.state(), nil
}

func (r *registration) setUpdateHandlers(ctx workflow.Context) error {
	handlers := []struct {
		name        string
		handler     any
		validator   any
		description string
	}{
		{UpdateUploadReport, r.uploadReport, r.validateUpload, "The applicant uploaded a diploma certification report."},
		{UpdateCountyReview, r.countyReview, r.validateCountyReview, "The county office's decision on the report."},
		{UpdateProvincialReview, r.provincialReview, r.validateProvincialReview, "The provincial office's decision on the report."},
		{UpdateOnsiteCheck, r.onsiteCheck, r.validateOnsiteCheck, "The on-site operator confirmed the applicant's identity."},
		{UpdateWithdraw, r.withdraw, r.validateWithdraw, "The applicant withdrew the registration."},
		{UpdateChangeWindow, r.changeWindow, r.validateWindowChange, "An administrator moved the confirmation window."},
		{UpdateAnnul, r.annul, r.validateAnnul, "The county or provincial office annulled the registration (作废)."},
		{UpdateChangeExamArea, r.changeArea, r.validateAreaChange, "The county or provincial office moved the registration to another exam area (考区变更)."},
		{UpdateOnlineTry, r.onlineTry, r.validateOnlineTry, "A try of online identity verification (网上验证), with the identity service's result."},
		{UpdateRequestIdentityReview, r.requestIdentityReview, r.validateIdentityReviewRequest, "The applicant asked for the office's manual check (人工核验) after three failed tries."},
		{UpdateIdentityReview, r.identityReview, r.validateIdentityReview, "The office's manual check of the online verification's materials."},
	}
	err := workflow.SetQueryHandlerWithOptions(ctx, QuerySnapshot, func() (Snapshot, error) {
		return Snapshot{Status: r.status, Seq: r.seq, ReasonID: r.reasonID, ReportID: r.reportID, Online: r.online}, nil
	}, workflow.QueryHandlerOptions{Description: "What the read model should show: status, last step, reason and report ids, online verification."})
	if err != nil {
		return fmt.Errorf("set query handler: %w", err)
	}
	for _, h := range handlers {
		err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler, workflow.UpdateHandlerOptions{
			Validator:   h.validator,
			Description: h.description,
		})
		if err != nil {
			return fmt.Errorf("set update handler %s: %w", h.name, err)
		}
	}
	return nil
}

// Upload of a diploma certification report.

func (r *registration) canUpload() error {
	switch {
	case r.status != status.AwaitingReport:
		return refuse(ErrNotAwaitingReport, "registration is not awaiting a diploma report")
	case r.windowClosed:
		return refuse(ErrOutsideWindow, "the confirmation window has closed")
	}
	return nil
}

func (r *registration) validateUpload(ctx workflow.Context, u ReportUpload) error {
	if u.ReportID == "" {
		return refuse(ErrInvalidDecision, "the report id is missing")
	}
	return r.whenSettled(r.canUpload)
}

func (r *registration) uploadReport(ctx workflow.Context, u ReportUpload) (State, error) {
	return r.transition(ctx, r.canUpload, func() error {
		previous, previousReason := r.reportID, r.reasonID
		r.reportID, r.reasonID = u.ReportID, ""
		if err := r.record(ctx, status.CountyReview, ByApplicant, u.AccountID, "已上传学历认证报告，等待区考办审核"); err != nil {
			r.reportID, r.reasonID = previous, previousReason
			return err
		}
		return nil
	})
}

// Reviews.

func (r *registration) awaitingReview(stage string) func() error {
	return func() error {
		if r.status != stage {
			return refuse(ErrNotAwaitingReview, "registration is not awaiting this review")
		}
		return nil
	}
}

func validateDecision(d Review) error {
	if !d.Approved && d.ReasonID == "" {
		return refuse(ErrInvalidDecision, "a rejection needs a reason")
	}
	return nil
}

func (r *registration) validateCountyReview(ctx workflow.Context, d Review) error {
	if err := validateDecision(d); err != nil {
		return err
	}
	return r.whenSettled(r.inArea(d.OfficeArea, r.awaitingReview(status.CountyReview)))
}

func (r *registration) validateProvincialReview(ctx workflow.Context, d Review) error {
	if err := validateDecision(d); err != nil {
		return err
	}
	return r.whenSettled(r.awaitingReview(status.ProvincialReview))
}

func (r *registration) countyReview(ctx workflow.Context, d Review) (State, error) {
	return r.transition(ctx, r.inArea(d.OfficeArea, r.awaitingReview(status.CountyReview)), func() error {
		if d.Approved {
			return r.record(ctx, status.ProvincialReview, ByCountyReviewer, d.AccountID, "区考办审核通过，等待省考办审核")
		}
		return r.reject(ctx, ByCountyReviewer, d.AccountID, "区考办审核未通过：", d.ReasonID)
	})
}

func (r *registration) provincialReview(ctx workflow.Context, d Review) (State, error) {
	return r.transition(ctx, r.awaitingReview(status.ProvincialReview), func() error {
		if d.Approved {
			return r.record(ctx, status.PreRegistered, ByProvincialReviewer, d.AccountID, "省考办审核通过，请按时到考区现场确认")
		}
		return r.reject(ctx, ByProvincialReviewer, d.AccountID, "省考办审核未通过：", d.ReasonID)
	})
}

// reject sends the registration back for a new report; the note is
// completed with the reason's text in PostgreSQL.
func (r *registration) reject(ctx workflow.Context, byRole string, byAccount int64, note, reasonID string) error {
	r.reasonID = reasonID
	if err := r.record(ctx, status.AwaitingReport, byRole, byAccount, note); err != nil {
		r.reasonID = ""
		return err
	}
	return nil
}

// On-site confirmation.

func (r *registration) canConfirm(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	switch {
	case r.status != status.PreRegistered:
		return refuse(ErrNotPreRegistered, "registration is not pre-registered")
	case r.windowClosed || now.Before(r.in.Window.StartsAt) || !now.Before(r.in.Window.EndsAt):
		return refuse(ErrOutsideWindow, "outside the exam area's confirmation window")
	}
	return nil
}

func (r *registration) validateOnsiteCheck(ctx workflow.Context, c OnsiteCheck) error {
	if c.PhotoFileID == "" {
		return refuse(ErrInvalidDecision, "the on-site check needs a photo")
	}
	return r.whenSettled(r.inArea(c.OfficeArea, func() error { return r.canConfirm(ctx) }))
}

func (r *registration) onsiteCheck(ctx workflow.Context, c OnsiteCheck) (State, error) {
	return r.transition(ctx, r.inArea(c.OfficeArea, func() error { return r.canConfirm(ctx) }), func() error {
		return r.complete(ctx, registrations.Completion{Note: "现场确认通过，注册完成", PhotoFileID: c.PhotoFileID,
			ByRole: ByOnsiteOperator, AccountID: c.AccountID})
	})
}

// Withdrawal.

func (r *registration) notClosed() error {
	if status.Terminal(r.status) {
		return refuse(ErrClosed, "registration is already "+r.status)
	}
	return nil
}

func (r *registration) validateWithdraw(ctx workflow.Context, w Withdrawal) error {
	return r.whenSettled(r.notClosed)
}

func (r *registration) withdraw(ctx workflow.Context, w Withdrawal) (State, error) {
	if r.cancelCheck != nil {
		r.cancelCheck() // no need to wait for the diploma registry
	}
	return r.transition(ctx, r.notClosed, func() error {
		return r.record(ctx, status.Withdrawn, ByApplicant, w.AccountID, "考生已撤销注册")
	})
}

// Annulment (作废) by the county or provincial office.

func (r *registration) validateAnnul(ctx workflow.Context, a Annulment) error {
	switch {
	case a.ReasonID == "":
		return refuse(ErrInvalidDecision, "an annulment needs a reason")
	case a.ByRole != ByCountyReviewer && a.ByRole != ByProvincialReviewer:
		return refuse(ErrInvalidDecision, "only the county or provincial office annuls")
	}
	return r.whenSettled(r.inArea(a.OfficeArea, r.notClosed))
}

// annul ends the registration whatever it waits for, as a withdrawal does:
// the diploma check is stopped, and the final state ends every other wait.
// The reason's text is appended to the history note in PostgreSQL.
func (r *registration) annul(ctx workflow.Context, a Annulment) (State, error) {
	if r.cancelCheck != nil {
		r.cancelCheck() // no need to wait for the diploma registry
	}
	return r.transition(ctx, r.inArea(a.OfficeArea, r.notClosed), func() error {
		note := "区考办已作废本次注册："
		if a.ByRole == ByProvincialReviewer {
			note = "省考办已作废本次注册："
		}
		previous := r.reasonID
		r.reasonID = a.ReasonID
		if err := r.record(ctx, status.Annulled, a.ByRole, a.AccountID, note); err != nil {
			r.reasonID = previous
			return err
		}
		return nil
	})
}

// IsRefusal reports whether err is an update's refusal (one of the Err…
// codes) and returns its code.
func IsRefusal(err error) (string, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return "", false
	}
	switch code := appErr.Type(); code {
	case ErrNotAwaitingReport, ErrNotAwaitingReview, ErrNotPreRegistered, ErrOutsideWindow, ErrClosed, ErrInvalidDecision,
		ErrOnlineClosed, ErrChallengeExpired, ErrNoIdentityReview, ErrOtherArea:
		return code, true
	}
	return "", false
}
