package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zikao/internal/registrations"
	"zikao/internal/status"
)

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
	case !status.Takes(r.status, status.StepUploadReport):
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

func (r *registration) awaitingReview(step string) func() error {
	return func() error {
		if !status.Takes(r.status, step) {
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
	return r.whenSettled(r.inArea(d.OfficeArea, r.awaitingReview(status.StepCountyReview)))
}

func (r *registration) validateProvincialReview(ctx workflow.Context, d Review) error {
	if err := validateDecision(d); err != nil {
		return err
	}
	return r.whenSettled(r.awaitingReview(status.StepProvincialReview))
}

func (r *registration) countyReview(ctx workflow.Context, d Review) (State, error) {
	return r.transition(ctx, r.inArea(d.OfficeArea, r.awaitingReview(status.StepCountyReview)), func() error {
		if d.Approved {
			return r.record(ctx, status.ProvincialReview, ByCountyReviewer, d.AccountID, "区考办审核通过，等待省考办审核")
		}
		return r.reject(ctx, ByCountyReviewer, d.AccountID, "区考办审核未通过：", d.ReasonID)
	})
}

func (r *registration) provincialReview(ctx workflow.Context, d Review) (State, error) {
	return r.transition(ctx, r.awaitingReview(status.StepProvincialReview), func() error {
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
	case !status.Takes(r.status, status.StepOnsiteCheck):
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
