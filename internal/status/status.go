// Package status names the states of a registration, shared by the
// workflow, the read model and the API.
package status

// The states of a registration (see the domain brief).
const (
	DiplomaCheck     = "diploma_check"
	AwaitingReport   = "awaiting_report"
	CountyReview     = "county_review"
	ProvincialReview = "provincial_review"
	PreRegistered    = "pre_registered"
	IdentityReview   = "identity_review" // the office checks the online verification's materials by eye (人工核验)
	Completed        = "completed"
	Expired          = "expired"
	Withdrawn        = "withdrawn"
	Annulled         = "annulled" // ended by the exam office (e.g. registered with another person's ID number)
)

var labels = map[string]string{
	DiplomaCheck:     "学历校验中",
	AwaitingReport:   "待上传学历认证报告",
	CountyReview:     "区考办审核中",
	ProvincialReview: "省考办审核中",
	PreRegistered:    "预注册",
	IdentityReview:   "人工核验中",
	Completed:        "注册完成",
	Expired:          "已过期",
	Withdrawn:        "已撤销",
	Annulled:         "已作废",
}

// Label is the Chinese label shown to the applicant.
func Label(s string) string { return labels[s] }

// OpenSQL is the SQL condition of a registration that has not ended (not
// Terminal), spelled as the partial indexes of the migrations spell it.
const OpenSQL = "status NOT IN ('completed', 'expired', 'withdrawn', 'annulled')"

// HoldsIDNumberSQL is the SQL condition of a registration that holds its ID
// number (open or completed; not Released): at most one per ID number,
// spelled as the unique index registrations_active_id_number_key spells it
// (migration 00007; a test compares the two).
const HoldsIDNumberSQL = "status NOT IN ('expired', 'withdrawn', 'annulled')"

// Released reports whether a registration in state s has given its ID
// number back: ended without completion, the person may register again.
func Released(s string) bool { return s == Expired || s == Withdrawn || s == Annulled }

// Terminal reports whether s ends a registration.
func Terminal(s string) bool {
	return s == Completed || s == Expired || s == Withdrawn || s == Annulled
}
