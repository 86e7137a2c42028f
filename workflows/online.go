package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"zikao/internal/registrations"
	"zikao/internal/status"
)

// Online identity verification (网上验证): a pre-registered applicant may
// confirm the identity online before the window ends instead of going on
// site. A match completes the registration as the on-site check does (the
// portrait becomes its photo); a face mismatch or failed liveness uses one
// of three tries; not_in_records closes online verification at once (the
// records do not know the person: on site). After three failed tries the
// applicant may ask the office for a manual check once (identity_review,
// which does not expire with the window): approved completes, refused sends
// the applicant on site.

// canTryOnline: a try with this challenge may be made now.
func (r *registration) canTryOnline(ctx workflow.Context, challengeID string) error {
	switch {
	case r.status == status.Expired: // a try that waited for the step before it, across the window's end
		return refuse(ErrOutsideWindow, "the confirmation window has ended")
	case !status.Takes(r.status, status.StepOnlineTry):
		return refuse(ErrNotPreRegistered, "registration is not pre-registered")
	case r.online.Closed || r.online.TriesLeft <= 0:
		return refuse(ErrOnlineClosed, "online verification is closed")
	case r.windowClosed || !workflow.Now(ctx).Before(r.in.Window.EndsAt):
		return refuse(ErrOutsideWindow, "the confirmation window has ended")
	case slices.Contains(r.challenges, challengeID):
		return refuse(ErrChallengeExpired, "the challenge was used by another try")
	}
	return nil
}

func (r *registration) validateOnlineTry(ctx workflow.Context, t OnlineTry) error {
	if err := r.whenSettled(func() error { return r.canTryOnline(ctx, t.ChallengeID) }); err != nil {
		return err
	}
	switch {
	case t.ChallengeID == "" || t.IDCardPhotoID == "" || t.VideoID == "" || t.PortraitID == "":
		return refuse(ErrInvalidDecision, "a try needs its challenge and three files")
	case !slices.Contains([]string{ResultMatch, ResultFaceMismatch, ResultLivenessFailed, ResultNotInRecords}, t.Result):
		return refuse(ErrInvalidDecision, "unknown result "+t.Result)
	}
	return nil
}

// tryNotes are the history notes of failed tries, by result.
var tryNotes = map[string]string{
	ResultFaceMismatch:   "网上验证未通过：人脸比对不一致",
	ResultLivenessFailed: "网上验证未通过：朗读视频未通过活体检测",
	ResultNotInRecords:   "网上验证未通过：公民身份信息库中无您的记录（如新办证件、户口迁移或军人证件），请到考区现场确认",
}

func (r *registration) onlineTry(ctx workflow.Context, t OnlineTry) (State, error) {
	return r.transition(ctx, func() error { return r.canTryOnline(ctx, t.ChallengeID) }, func() error {
		try := registrations.Try{ChallengeID: t.ChallengeID, Result: t.Result,
			IDCardPhotoID: t.IDCardPhotoID, VideoID: t.VideoID, PortraitID: t.PortraitID}
		next := r.online
		next.LastResult = t.Result
		var err error
		switch t.Result {
		case ResultMatch:
			err = r.complete(ctx, registrations.Completion{Note: "网上验证通过，注册完成", PhotoFileID: t.PortraitID,
				ByRole: ByApplicant, AccountID: t.AccountID, Online: &next, Try: &try})
		case ResultNotInRecords:
			next.Closed = true
			err = r.recordTry(ctx, t.AccountID, next, try, tryNotes[t.Result])
		default:
			next.TriesLeft--
			note := fmt.Sprintf("%s，剩余 %d 次", tryNotes[t.Result], next.TriesLeft)
			if next.TriesLeft == 0 {
				next.Closed = true
				note = tryNotes[t.Result] + "。三次网上验证均未通过，可申请人工核验或到考区现场确认"
			}
			err = r.recordTry(ctx, t.AccountID, next, try, note)
		}
		if err != nil {
			return err
		}
		r.challenges = append(r.challenges, t.ChallengeID)
		r.portraitID = t.PortraitID
		return nil
	})
}

// recordTry records a failed try: the registration stays pre-registered.
func (r *registration) recordTry(ctx workflow.Context, byAccount int64, next registrations.Online, try registrations.Try, note string) error {
	step := r.step(ctx, status.PreRegistered, ByApplicant, byAccount, note)
	step.Try = &try
	return r.recordOnline(ctx, step, next)
}

// recordOnline records a step that changes the online verification to next.
func (r *registration) recordOnline(ctx workflow.Context, step registrations.Transition, next registrations.Online) error {
	step.Online = &next
	return r.recordStep(ctx, step)
}

// The manual check (人工核验), asked for by the applicant.

func (r *registration) canAskIdentityReview(ctx workflow.Context) error {
	switch {
	case !status.Takes(r.status, status.StepAskIdentityReview):
		return refuse(ErrNotPreRegistered, "registration is not pre-registered")
	case r.online.TriesLeft > 0 || r.online.ReviewAsked: // not_in_records leaves tries: it closes without using one
		return refuse(ErrNoIdentityReview, "a manual check follows three failed tries, once")
	case r.windowClosed || !workflow.Now(ctx).Before(r.in.Window.EndsAt):
		return refuse(ErrOutsideWindow, "the confirmation window has ended")
	}
	return nil
}

func (r *registration) validateIdentityReviewRequest(ctx workflow.Context, q IdentityReviewRequest) error {
	return r.whenSettled(func() error { return r.canAskIdentityReview(ctx) })
}

func (r *registration) requestIdentityReview(ctx workflow.Context, q IdentityReviewRequest) (State, error) {
	return r.transition(ctx, func() error { return r.canAskIdentityReview(ctx) }, func() error {
		step := r.step(ctx, status.IdentityReview, ByApplicant, q.AccountID, "已申请人工核验，等待考区办公室核验网上验证材料")
		next := r.online
		next.ReviewAsked = true
		return r.recordOnline(ctx, step, next)
	})
}

// The office's decision.

func (r *registration) validateIdentityReview(ctx workflow.Context, d IdentityReview) error {
	switch {
	case !d.Approved && d.ReasonID == "":
		return refuse(ErrInvalidDecision, "a refusal needs a reason")
	case d.ByRole != ByCountyReviewer && d.ByRole != ByProvincialReviewer:
		return refuse(ErrInvalidDecision, "only the county or provincial office checks by eye")
	}
	return r.whenSettled(r.inArea(d.OfficeArea, r.awaitingReview(status.StepIdentityReview)))
}

func (r *registration) identityReview(ctx workflow.Context, d IdentityReview) (State, error) {
	return r.transition(ctx, r.inArea(d.OfficeArea, r.awaitingReview(status.StepIdentityReview)), func() error {
		if d.Approved {
			return r.complete(ctx, registrations.Completion{Note: "人工核验通过，注册完成", PhotoFileID: r.portraitID,
				ByRole: d.ByRole, AccountID: d.AccountID})
		}
		step := r.step(ctx, status.PreRegistered, d.ByRole, d.AccountID, "人工核验未通过，请到考区现场确认：")
		step.ReasonID = d.ReasonID
		next := r.online
		next.Closed, next.ReviewReasonID = true, d.ReasonID
		return r.recordOnline(ctx, step, next)
	})
}
