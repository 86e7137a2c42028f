package registering

import (
	"context"
	"errors"
	"strings"

	"zikao/internal/accounts"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// AreaChange is the office's move of a registration to another exam area
// (考区变更), as asked for.
type AreaChange struct {
	ExamAreaCode string `json:"exam_area_code"`
	Reason       string `json:"reason"`
}

// ChangeExamArea moves an open registration to another exam area: the
// county reviewer of its current area or a provincial reviewer, with a
// reason the applicant is shown. The registration takes the new area's
// confirmation window for its sitting and keeps its status (a review keeps
// its place and waiting time); the applicant is told by e-mail and SMS.
// An unknown area, the same area, an area without a window, or no reason
// is *Invalid; a registration that has ended is refused (registration_closed).
func (s *Service) ChangeExamArea(ctx context.Context, who accounts.Account, id, key string, in AreaChange) (registrations.Registration, error) {
	update := workflows.UpdateChangeExamArea
	uid := updateID(update, who, key)
	r, err := s.Get(ctx, who, id)
	made := r.Made(uid) // this very change, asked again
	var refusal *Refusal
	if errors.As(err, &refusal) && refusal.Code == CodeForbidden && made {
		err = nil // a county office's own change, asked again (it has left its area): answered as the first time
	} else if err == nil && !entitled(who, r, status.StepChangeExamArea) {
		err = refuse(CodeForbidden)
	}
	if err != nil {
		return r, err
	}
	f := Fields{}
	code, reason := strings.TrimSpace(in.ExamAreaCode), strings.TrimSpace(in.Reason)
	f.Required("reason", reason, "变更原因", "a reason for the change")
	f.MaxLen("reason", reason, 500)
	f.Text("reason", reason)
	area, err := s.examArea(ctx, f, "exam_area_code", code)
	switch {
	case err != nil:
		return r, err
	case area.Code == "":
		// unknown or missing: examArea said so
	case code == r.ExamAreaCode && !made:
		f.Add("exam_area_code", "新考区与当前考区相同", "the registration is in that exam area already")
	case area.Window == nil:
		f.Add("exam_area_code", "该考区尚未设定本次现场确认时间", "that exam area has no confirmation window for this sitting yet")
	}
	if err := f.Err(); err != nil {
		return r, err
	}
	return s.decideWithReason(ctx, r, update, uid, reason, func(reasonID string) any {
		return workflows.AreaChange{ExamAreaCode: code, ReasonID: reasonID, ByRole: reviewerRole(who), AccountID: who.ID,
			OfficeArea: officeArea(who), Window: workflows.Window{StartsAt: area.Window.StartsAt, EndsAt: area.Window.EndsAt}}
	})
}

// officeArea is the exam area a county office or an on-site desk decides
// for, "" for the provincial office: the workflow refuses the decision
// when the registration has moved elsewhere meanwhile (workflows.ErrOtherArea).
func officeArea(who accounts.Account) string {
	if who.Role == accounts.RoleCountyReviewer || who.Role == accounts.RoleOnsiteOperator {
		return who.Area()
	}
	return ""
}
