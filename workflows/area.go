package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"zikao/internal/catalog"
	"zikao/internal/registrations"
)

// The exam area and its confirmation window: an administrator moves the
// window of an area, the office moves a registration to another area
// (考区变更). Either is a history entry of its own with a notice to the
// applicant; the registration keeps its status, and a review keeps its
// waiting time.

// versionWindowNotice: from this version on, a window move is a history
// entry with a notice (earlier releases only changed the window).
const versionWindowNotice = "window-move-notice"

// inArea is check, preceded by the rule that a county office or an on-site
// desk decides only for its own exam area (office; empty for the
// provincial office): a registration moved to another area since the
// office looked at it is no longer the office's.
func (r *registration) inArea(office string, check func() error) func() error {
	return func() error {
		if office != "" && office != r.in.ExamAreaCode {
			return refuse(ErrOtherArea, "the registration has moved to another exam area")
		}
		return check()
	}
}

// follow puts the registration on a new window: decided here, not later by
// watchWindow, because the end may have passed while the change waited its
// turn (a registration waiting for a report or the on-site check then
// expires at once).
func (r *registration) follow(ctx workflow.Context, w Window) {
	r.in.Window = w
	r.windowClosed = !workflow.Now(ctx).Before(w.EndsAt)
	workflow.SetCurrentDetails(ctx, r.details())
}

func validWindow(w Window) error {
	if !w.EndsAt.After(w.StartsAt) {
		return refuse(ErrInvalidDecision, "a window ends after it starts")
	}
	return nil
}

// A new confirmation window, set by an administrator for the whole area.

func (r *registration) validateWindowChange(ctx workflow.Context, w Window) error {
	if err := validWindow(w); err != nil || !w.EndsAt.After(workflow.Now(ctx)) {
		return refuse(ErrInvalidDecision, "a new window ends after it starts, and in the future")
	}
	return r.whenSettled(r.notClosed)
}

func (r *registration) changeWindow(ctx workflow.Context, w Window) (State, error) {
	return r.transition(ctx, r.notClosed, func() error {
		if workflow.GetVersion(ctx, versionWindowNotice, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			change := registrations.WindowChange{RegistrationID: r.in.RegistrationID, StartsAt: w.StartsAt, EndsAt: w.EndsAt}
			ctx, _ := workflow.NewDisconnectedContext(ctx)
			if err := workflow.ExecuteLocalActivity(localActivity(ctx, "record new window", untilDone), a.ChangeWindow, change).Get(ctx, nil); err != nil {
				return fmt.Errorf("record new window: %w", err)
			}
		} else {
			step := r.step(ctx, r.status, ByAdministrator, 0, "考区现场确认时间已调整")
			step.Window = &catalog.Window{StartsAt: w.StartsAt, EndsAt: w.EndsAt}
			if err := r.recordStep(ctx, step); err != nil {
				return err
			}
		}
		r.follow(ctx, w)
		return nil
	})
}

// An exam-area change (考区变更) by the county office of the current area or
// the provincial office.

func (r *registration) validateAreaChange(ctx workflow.Context, c AreaChange) error {
	switch {
	case c.ExamAreaCode == "" || c.ReasonID == "":
		return refuse(ErrInvalidDecision, "an area change needs the new area and a reason")
	case c.ByRole != ByCountyReviewer && c.ByRole != ByProvincialReviewer:
		return refuse(ErrInvalidDecision, "only the county or provincial office changes the exam area")
	}
	if err := validWindow(c.Window); err != nil {
		return err
	}
	return r.whenSettled(r.inArea(c.OfficeArea, r.canChangeArea(c)))
}

func (r *registration) canChangeArea(c AreaChange) func() error {
	return func() error {
		if err := r.notClosed(); err != nil {
			return err
		}
		if c.ExamAreaCode == r.in.ExamAreaCode {
			return refuse(ErrInvalidDecision, "the registration is in that exam area already")
		}
		return nil
	}
}

// changeArea records the change (the read model's area, window and history,
// with the notice), then follows the new area: its search attribute and
// its window. The status stays: a review in progress keeps its place and
// waiting time, in the new area's inbox.
func (r *registration) changeArea(ctx workflow.Context, c AreaChange) (State, error) {
	return r.transition(ctx, r.inArea(c.OfficeArea, r.canChangeArea(c)), func() error {
		step := r.step(ctx, r.status, c.ByRole, c.AccountID, "")
		step.Window = &catalog.Window{StartsAt: c.Window.StartsAt, EndsAt: c.Window.EndsAt}
		step.Area = &registrations.AreaChange{From: r.in.ExamAreaCode, To: c.ExamAreaCode, ReasonID: c.ReasonID}
		if err := r.recordStep(ctx, step); err != nil {
			return err
		}
		r.in.ExamAreaCode = c.ExamAreaCode
		if err := workflow.UpsertTypedSearchAttributes(ctx, ExamAreaKey.ValueSet(c.ExamAreaCode)); err != nil {
			workflow.GetLogger(ctx).Error("Upsert of ExamArea failed", "Error", err)
		}
		r.follow(ctx, c.Window)
		return nil
	})
}
