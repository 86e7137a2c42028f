package workflows

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/catalog"
	"zikao/internal/identity"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

// Kinds of registration.
const (
	KindNew      = "new"      // 新生注册
	KindEnrolled = "enrolled" // 在籍注册
)

// Update names: the decisions that reach a running registration.
const (
	UpdateUploadReport     = "upload-report"
	UpdateCountyReview     = "county-review"
	UpdateProvincialReview = "provincial-review"
	UpdateOnsiteCheck      = "onsite-check"
	UpdateWithdraw         = "withdraw"
	UpdateChangeWindow     = "change-window"
	UpdateAnnul            = "annul"
	UpdateChangeExamArea   = "change-exam-area" // 考区变更 by the office
	// Online identity verification (网上验证) and the office's manual check (人工核验).
	UpdateOnlineTry             = "online-verification"
	UpdateRequestIdentityReview = "identity-review-request"
	UpdateIdentityReview        = "identity-review"
)

// Types of the application errors an update answers with; the API passes
// them on as the contract's error codes (HTTP 409).
const (
	ErrNotAwaitingReport = "not_awaiting_report"
	ErrNotAwaitingReview = "not_awaiting_review"
	ErrNotPreRegistered  = "not_pre_registered"
	ErrOutsideWindow     = "outside_confirmation_window"
	ErrClosed            = "registration_closed"
	ErrInvalidDecision   = "validation_failed"
	ErrOnlineClosed      = "online_verification_closed"
	ErrChallengeExpired  = "challenge_expired"
	// ErrNoIdentityReview: the manual check was asked for before three failed
	// tries (or after not_in_records), or again after the office decided one.
	ErrNoIdentityReview = "identity_review_not_available"
	// ErrOtherArea: the registration has moved to another exam area (考区变更)
	// since the county office or on-site desk that decides looked at it.
	ErrOtherArea = "other_exam_area"
)

// MaxOnlineTries is how many failed tries of online verification a
// registration has before it closes.
const MaxOnlineTries = 3

// Roles recorded in the history of a registration.
const (
	BySystem             = "system"
	ByApplicant          = "applicant"
	ByCountyReviewer     = "county_reviewer"
	ByProvincialReviewer = "provincial_reviewer"
	ByOnsiteOperator     = "onsite_operator"
	ByAdministrator      = "admin" // a window move
)

// Search attributes the workflow keeps current, so that operators can filter
// registrations in the Temporal UI. None holds personal data.
var (
	StatusKey   = temporal.NewSearchAttributeKeyKeyword("RegistrationStatus")
	ExamAreaKey = temporal.NewSearchAttributeKeyKeyword("ExamArea")
	LevelKey    = temporal.NewSearchAttributeKeyKeyword("RegistrationLevel")
	KindKey     = temporal.NewSearchAttributeKeyKeyword("RegistrationKind")
)

// SearchAttributes are the custom search attributes to register on a
// Temporal server before the workflow runs there.
func SearchAttributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(StatusKey.ValueSet(""), ExamAreaKey.ValueSet(""), LevelKey.ValueSet(""), KindKey.ValueSet(""))
}

// Window is the exam area's confirmation window for the registration's sitting.
type Window struct {
	StartsAt time.Time
	EndsAt   time.Time
}

// Input starts a registration workflow. It carries no personal data: the
// activities read what they need from PostgreSQL by RegistrationID.
type Input struct {
	RegistrationID string
	Kind           string
	Level          string
	ExamAreaCode   string
	Window         Window
}

// NeedsDiplomaCheck: a new 专升本 registration is checked against the
// national diploma registry (学信网) first.
func (in Input) NeedsDiplomaCheck() bool {
	return in.Kind == KindNew && in.Level == catalog.LevelZhuanshengben
}

// FirstStatus is the status the registration is created with.
func (in Input) FirstStatus() string {
	if in.NeedsDiplomaCheck() {
		return status.DiplomaCheck
	}
	return status.PreRegistered
}

// ReportUpload hands a diploma certification report, stored by the API, to
// the workflow. Only its id travels: the verification code and numbers lead
// to personal data and stay in PostgreSQL.
type ReportUpload struct {
	ReportID  string
	AccountID int64 // the applicant's account
}

// Review is a county or provincial reviewer's decision. A rejection's
// reason is free text: it stays in PostgreSQL (decision_reasons) and only
// its id travels.
type Review struct {
	Approved   bool
	ReasonID   string
	AccountID  int64  // the reviewer's account
	OfficeArea string // a county reviewer's exam area (empty: the provincial office's, or an earlier release's)
}

// OnsiteCheck is the on-site operator's confirmation; the API has already
// matched the ID card read against the registration.
type OnsiteCheck struct {
	PhotoFileID string
	AccountID   int64  // the operator's account
	OfficeArea  string // the operator's exam area (empty in an earlier release's)
}

// Withdrawal is the applicant's withdrawal. (Withdrawals of earlier
// releases carried no argument: a zero Withdrawal.)
type Withdrawal struct {
	AccountID int64 // the applicant's account
}

// Annulment ends an open registration by the exam office's decision (作废),
// e.g. when it was made with another person's ID number. The reason stays
// in PostgreSQL (decision_reasons); only its id travels.
type Annulment struct {
	ReasonID   string
	ByRole     string // ByCountyReviewer or ByProvincialReviewer
	AccountID  int64  // the reviewer's account
	OfficeArea string // a county reviewer's exam area (empty: the provincial office's, or an earlier release's)
}

// AreaChange moves an open registration to another exam area (考区变更),
// the county office of its current area's or the provincial office's
// decision: it takes the new area's confirmation window for its sitting,
// and a review in progress keeps its place. The reason stays in PostgreSQL
// (decision_reasons); only its id travels.
type AreaChange struct {
	ExamAreaCode string
	Window       Window // the new area's confirmation window
	ReasonID     string
	ByRole       string // ByCountyReviewer or ByProvincialReviewer
	AccountID    int64
	OfficeArea   string // a county reviewer's exam area (empty: the provincial office's)
}

// OnlineTry is a try of online identity verification (网上验证): the
// challenge the applicant read aloud, the three files (stored by the API;
// only their ids travel) and the identity service's result, which the API
// obtained before sending the try (a service that did not answer is no try).
type OnlineTry struct {
	ChallengeID   string
	IDCardPhotoID string
	VideoID       string
	PortraitID    string
	Result        string // identity.Match, FaceMismatch, LivenessFailed or NotInRecords
	AccountID     int64  // the applicant's account
}

// Online verification results, as the identity service answers.
const (
	ResultMatch          = identity.Match
	ResultFaceMismatch   = identity.FaceMismatch
	ResultLivenessFailed = identity.LivenessFailed
	ResultNotInRecords   = identity.NotInRecords
)

// IdentityReviewRequest is the applicant's request for the office's manual
// check after three failed tries.
type IdentityReviewRequest struct {
	AccountID int64
}

// IdentityReview is the office's manual check of the last try's materials:
// approved completes the registration (the portrait becomes its photo);
// refused closes online verification with a reason (decision_reasons: only
// its id travels) and sends the applicant on site.
type IdentityReview struct {
	Approved   bool
	ReasonID   string
	ByRole     string // ByCountyReviewer or ByProvincialReviewer
	AccountID  int64
	OfficeArea string // a county reviewer's exam area (empty: the provincial office's, or an earlier release's)
}

// State is what a registration looks like after an update, and its
// result: its status and how many history entries it has recorded. The
// ticket number and reasons stay in PostgreSQL.
type State struct {
	Status string
	Seq    int
}

// QuerySnapshot names the query that returns a running registration's Snapshot.
const QuerySnapshot = "snapshot"

// Snapshot is what the read model of a running registration should show,
// for the reconciler: no personal data, only ids.
type Snapshot struct {
	Status   string
	Seq      int
	ReasonID string
	ReportID string
	Online   registrations.Online
}

// WorkflowName is the registered name of the registration workflow type.
const WorkflowName = "Registration"

// WorkflowID is the workflow ID of a registration: opaque, no personal data.
func WorkflowID(registrationID string) string { return "registration-" + registrationID }

// StartOptions are the options to start the workflow of a registration:
// an ID from the registration's opaque id, search attributes and a summary
// for operators, none of them with personal data.
func StartOptions(in Input, taskQueue string) client.StartWorkflowOptions {
	kind := "新生注册"
	if in.Kind == KindEnrolled {
		kind = "在籍注册"
	}
	return client.StartWorkflowOptions{
		ID:                       WorkflowID(in.RegistrationID),
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			StatusKey.ValueSet(in.FirstStatus()), ExamAreaKey.ValueSet(in.ExamAreaCode),
			LevelKey.ValueSet(in.Level), KindKey.ValueSet(in.Kind)),
		StaticSummary: fmt.Sprintf("%s · %s · 考区 %s", kind, catalog.LevelLabel(in.Level), in.ExamAreaCode),
		StaticDetails: fmt.Sprintf("Registration `%s`\n\n- kind: %s\n- level: %s\n- exam area: %s\n- confirmation window: %s – %s",
			in.RegistrationID, in.Kind, in.Level, in.ExamAreaCode,
			in.Window.StartsAt.Format(time.RFC3339), in.Window.EndsAt.Format(time.RFC3339)),
	}
}

// Update sends a decision to a registration's workflow and waits until the
// workflow has applied or refused it. updateID names the decision: sent
// again with the same id, it is applied once and answered as the first time.
func Update(ctx context.Context, c client.Client, registrationID, name, updateID string, arg any) error {
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   WorkflowID(registrationID),
		UpdateID:     updateID,
		UpdateName:   name,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if arg != nil {
		opts.Args = []any{arg}
	}
	h, err := c.UpdateWorkflow(ctx, opts)
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

// ChangeWindow moves a running registration to a new confirmation window
// (an administrator's decision). requestID names the decision: sent again
// with the same requestID, it is applied once.
func ChangeWindow(ctx context.Context, c client.Client, registrationID string, w Window, requestID string) error {
	return Update(ctx, c, registrationID, UpdateChangeWindow, UpdateChangeWindow+"/"+requestID, w)
}
