package registering

import (
	"time"

	"zikao/internal/accounts"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

// May answers what an account may do to a registration now: whether it may
// take step (status.Step…) on r as the read model shows it. The pages offer
// a step only when May says so; the service refuses a step the account is
// not entitled to (403) and leaves the registration's state to the workflow,
// which checks it with the same status.Takes, at the moment of the step.
func May(who accounts.Account, r registrations.Registration, step string, now time.Time) bool {
	return entitled(who, r, step) && Open(r, step, now)
}

// Open is May's second half: r, as the read model shows it, takes step now
// (for whoever is entitled to it).
func Open(r registrations.Registration, step string, now time.Time) bool {
	return status.Takes(r.Status, step) && ready(r, step, now)
}

// entitled: the account may take step on r whatever its state: its owner
// the applicant's steps, the county office of its area (and the provincial
// office) the office's steps, an on-site desk of its area the on-site check.
func entitled(who accounts.Account, r registrations.Registration, step string) bool {
	if !visible(who, r) {
		return false
	}
	switch step {
	case status.StepUploadReport, status.StepWithdraw, status.StepOnlineTry, status.StepAskIdentityReview:
		return who.Role == accounts.RoleApplicant
	case status.StepCountyReview:
		return who.Role == accounts.RoleCountyReviewer
	case status.StepProvincialReview:
		return who.Role == accounts.RoleProvincialReviewer
	case status.StepOnsiteCheck:
		return who.Role == accounts.RoleOnsiteOperator
	case status.StepAnnul, status.StepChangeExamArea, status.StepIdentityReview:
		return who.Role == accounts.RoleCountyReviewer || who.Role == accounts.RoleProvincialReviewer
	}
	return false
}

// ready: what the workflow checks beside the state, as the read model shows
// it (the on-site check's window is left to the workflow, whose refusal
// names the window).
func ready(r registrations.Registration, step string, now time.Time) bool {
	switch step {
	case status.StepOnlineTry:
		return OnlineOpen(r, now) == nil
	case status.StepAskIdentityReview: // after three failed tries, once, within the window
		return r.OnlineTriesLeft <= 0 && !r.IdentityReviewAsked && now.Before(r.WindowEndsAt)
	}
	return true
}
