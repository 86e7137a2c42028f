package status

// The steps people take on a registration. Each needs its registration in
// a given state: the workflow refuses a step in any other (its validators),
// and registering.May offers it only there, so that a page shows a button
// exactly when the workflow would take its step.
const (
	StepUploadReport      = "upload_report"
	StepCountyReview      = "county_review"
	StepProvincialReview  = "provincial_review"
	StepOnsiteCheck       = "onsite_check"
	StepOnlineTry         = "online_try"
	StepAskIdentityReview = "ask_identity_review"
	StepIdentityReview    = "identity_review"
	StepWithdraw          = "withdraw"
	StepAnnul             = "annul"
	StepChangeExamArea    = "change_exam_area"
)

// Takes reports whether a registration in state s takes step (as far as
// its state goes: the window, the tries left and the office's area are
// checked beside it).
func Takes(s, step string) bool {
	switch step {
	case StepUploadReport:
		return s == AwaitingReport
	case StepCountyReview:
		return s == CountyReview
	case StepProvincialReview:
		return s == ProvincialReview
	case StepIdentityReview:
		return s == IdentityReview
	case StepOnsiteCheck, StepOnlineTry, StepAskIdentityReview:
		return s == PreRegistered
	case StepWithdraw, StepAnnul, StepChangeExamArea:
		return !Terminal(s)
	}
	return false
}
