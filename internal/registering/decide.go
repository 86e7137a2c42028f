package registering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/files"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// A decision is sent to the registration's workflow as a Workflow Update
// whose id is the request's idempotency key (scoped to the update and the
// caller): Temporal applies the same id once and answers a repeat with the
// first outcome, even after the workflow has ended. So a decision is sent
// every time it is asked for, and answered from what the workflow says.

// updateID names a decision: key is the request's Idempotency-Key, or empty
// for a request that is not to be repeated.
func updateID(update string, who accounts.Account, key string) string {
	if key == "" {
		key = uuid.NewString()
	}
	return fmt.Sprintf("%s/%d/%s", update, who.ID, key)
}

// decide sends a decision to the registration's workflow and waits until
// the workflow has applied or refused it; then it reads the registration
// again (the read model is written before the workflow answers).
func (s *Service) decide(ctx context.Context, r registrations.Registration, update, id string, arg any) (registrations.Registration, error) {
	uctx, cancel := context.WithTimeout(ctx, s.UpdateTimeout)
	defer cancel()
	err := workflows.Update(uctx, s.Temporal, r.ID, update, id, arg)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		// The workflow ended, perhaps while this decision was on its way
		// (another decision closed it): the read model says how.
		if now, gerr := s.Registrations.Get(ctx, r.ID); gerr == nil {
			r = now
		}
	}
	if err != nil {
		return r, s.updateFailed(r, update, err)
	}
	now, err := s.Registrations.Get(ctx, r.ID)
	return now, unavailable(err)
}

// updateFailed turns a failed update into the service's errors.
func (s *Service) updateFailed(r registrations.Registration, update string, err error) error {
	var notFound *serviceerror.NotFound
	code, refused := workflows.IsRefusal(err)
	switch {
	case refused && code == workflows.ErrOtherArea:
		return refuse(CodeForbidden) // moved to another area (考区变更) since the office looked
	case refused:
	case errors.As(err, &notFound) && !status.Terminal(r.Status):
		// Open, but no workflow runs it: its start failed (the reconciler
		// starts it) or it was terminated (the reconciler closes it).
		return fmt.Errorf("%w: no workflow runs registration %s: %w", ErrUnavailable, r.ID, err)
	case errors.As(err, &notFound), temporal.IsCanceledError(err):
		// The workflow has ended (or an operator cancelled it) and never
		// applied this decision.
		code = workflows.ErrClosed
	case Unavailable(err):
		return fmt.Errorf("%w: update %s of %s: %w", ErrUnavailable, update, r.ID, err)
	default:
		return fmt.Errorf("update %s of %s: %w", update, r.ID, err)
	}
	if code == workflows.ErrClosed {
		// A closed registration answers with the code of the step asked for.
		code = map[string]string{
			workflows.UpdateUploadReport:          workflows.ErrNotAwaitingReport,
			workflows.UpdateCountyReview:          workflows.ErrNotAwaitingReview,
			workflows.UpdateProvincialReview:      workflows.ErrNotAwaitingReview,
			workflows.UpdateOnsiteCheck:           workflows.ErrNotPreRegistered,
			workflows.UpdateWithdraw:              workflows.ErrClosed,
			workflows.UpdateChangeWindow:          workflows.ErrClosed,
			workflows.UpdateAnnul:                 workflows.ErrClosed,
			workflows.UpdateChangeExamArea:        workflows.ErrClosed,
			workflows.UpdateOnlineTry:             workflows.ErrNotPreRegistered,
			workflows.UpdateRequestIdentityReview: workflows.ErrNotPreRegistered,
			workflows.UpdateIdentityReview:        workflows.ErrNotAwaitingReview,
		}[update]
	}
	return &Refusal{Code: code, Window: catalog.Window{StartsAt: r.WindowStartsAt, EndsAt: r.WindowEndsAt}}
}

// decision loads the registration a decision is about and checks that the
// caller is entitled to take its step (May's first half; the workflow checks
// the state).
func (s *Service) decision(ctx context.Context, who accounts.Account, id, step string) (registrations.Registration, error) {
	r, err := s.Get(ctx, who, id)
	if err == nil && !entitled(who, r, step) {
		err = refuse(CodeForbidden)
	}
	return r, err
}

// Report is a diploma certification report (学历认证报告) as uploaded: the
// file, and its verification code or its report and certificate numbers.
type Report struct {
	File              io.Reader // nil when none was sent
	VerificationCode  string
	ReportNumber      string
	CertificateNumber string
}

// UploadReport hands the applicant's report to the workflow. The report is
// stored first (once per request: the same key stores it once) and only its
// id travels; a refused report is removed again.
func (s *Service) UploadReport(ctx context.Context, who accounts.Account, id, key string, rep Report) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepUploadReport)
	if err != nil {
		return r, err
	}
	f := Fields{}
	code := strings.ToUpper(strings.TrimSpace(rep.VerificationCode))
	reportNo, certNo := strings.TrimSpace(rep.ReportNumber), strings.TrimSpace(rep.CertificateNumber)
	switch {
	case code != "":
		if !codePattern.MatchString(code) {
			f.Add("verification_code", "在线验证码须为12位字母或数字", "verification code must be 12 letters or digits")
		}
		reportNo, certNo = "", ""
	case reportNo != "" || certNo != "":
		f.Required("report_number", reportNo, "报告编号", "report number")
		f.Required("certificate_number", certNo, "证书编号", "certificate number")
		f.MaxLen("report_number", reportNo, 50)
		f.MaxLen("certificate_number", certNo, 50)
		f.Text("report_number", reportNo)
		f.Text("certificate_number", certNo)
	default:
		f.Add("verification_code", "请填写在线验证码，或报告编号和证书编号", "give the verification code, or the report and certificate numbers")
	}
	fileID, err := s.storeFile(ctx, f, "file", rep.File, files.PDF, files.JPEG, files.PNG)
	if err != nil {
		return r, err
	}
	update := updateID(workflows.UpdateUploadReport, who, key)
	reportID, err := s.Registrations.AddReport(ctx, r.ID, update, fileID, code, reportNo, certNo)
	if err != nil {
		return r, unavailable(err)
	}
	now, err := s.decide(ctx, r, workflows.UpdateUploadReport, update, workflows.ReportUpload{ReportID: reportID, AccountID: who.ID})
	if _, refused := err.(*Refusal); refused {
		s.discard(ctx, func(ctx context.Context) error { return s.Registrations.DiscardReport(ctx, reportID) }, fileID)
	}
	return now, err
}

// storeFile checks the other fields (f), then reads, checks and stores a
// file, returning its id.
func (s *Service) storeFile(ctx context.Context, f Fields, field string, file io.Reader, accepted ...string) (string, error) {
	if file == nil {
		f.Add(field, "请上传文件", "a file is required")
	}
	if err := f.Err(); err != nil {
		return "", err
	}
	data, ct, err := files.Read(file, accepted...)
	switch {
	case errors.Is(err, files.ErrTooLarge):
		return "", refuse(CodeFileTooLarge)
	case errors.Is(err, files.ErrType):
		return "", refuse(CodeFileType)
	case errors.Is(err, files.ErrEmpty):
		return "", Fields{field: "文件为空 / the file is empty"}.Err()
	case err != nil:
		return "", err
	}
	id, err := s.Files.Put(ctx, data, ct)
	return id, unavailable(err)
}

// discard removes what a refused decision stored (best effort: the
// reconciler removes what is left over): first (nil for nothing), then the
// files it uploaded.
func (s *Service) discard(ctx context.Context, first func(context.Context) error, fileIDs ...string) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if first != nil {
		err = first(ctx)
	}
	for _, id := range fileIDs {
		if err == nil && id != "" {
			err = s.Files.Discard(ctx, id)
		}
	}
	if err != nil {
		slog.WarnContext(ctx, "discard the upload of a refused decision", "error", err)
	}
}

// decideWithReason sends a decision that may carry a reason typed by a
// reviewer: the reason (when there is one) is stored in PostgreSQL first and
// only its id travels, in the argument arg makes of it; a refused decision's
// reason is removed again.
func (s *Service) decideWithReason(ctx context.Context, r registrations.Registration, update, uid, reason string,
	arg func(reasonID string) any) (registrations.Registration, error) {
	var reasonID string
	if reason != "" {
		var err error
		if reasonID, err = s.Registrations.AddReason(ctx, r.ID, uid, reason); err != nil {
			return r, unavailable(err)
		}
	}
	now, err := s.decide(ctx, r, update, uid, arg(reasonID))
	if _, refused := err.(*Refusal); refused && reasonID != "" {
		s.discard(ctx, func(ctx context.Context) error { return s.Registrations.DiscardReason(ctx, reasonID) })
	}
	return now, err
}

// Stages of review.
const (
	StageCounty     = "county"
	StageProvincial = "provincial"
	StageIdentity   = "identity" // the manual check of an online verification (人工核验)
)

// ReviewStage is the stage of report review a role decides, the default
// of its inbox: the county reviewer's the county stage (区考办), the
// provincial reviewer's the provincial one (省考办); "" for other roles.
func ReviewStage(role string) string {
	switch role {
	case accounts.RoleCountyReviewer:
		return StageCounty
	case accounts.RoleProvincialReviewer:
		return StageProvincial
	}
	return ""
}

// Decision is a reviewer's decision on a report.
type Decision struct {
	Approved *bool  `json:"approved"`
	Reason   string `json:"reason"`
}

// Review applies a county (区考办) or provincial (省考办) reviewer's decision.
// A rejection's reason is stored in PostgreSQL; only its id travels.
func (s *Service) Review(ctx context.Context, who accounts.Account, id, key, stage string, d Decision) (registrations.Registration, error) {
	update, step := workflows.UpdateCountyReview, status.StepCountyReview
	if stage == StageProvincial {
		update, step = workflows.UpdateProvincialReview, status.StepProvincialReview
	}
	r, err := s.decision(ctx, who, id, step)
	if err != nil {
		return r, err
	}
	if err := decisionFields(&d); err != nil {
		return r, err
	}
	return s.decideWithReason(ctx, r, update, updateID(update, who, key), d.rejection(), func(reasonID string) any {
		return workflows.Review{Approved: *d.Approved, ReasonID: reasonID, AccountID: who.ID, OfficeArea: officeArea(who)}
	})
}

// rejection is the reason a decision stores: a rejection's, none for an approval.
func (d Decision) rejection() string {
	if *d.Approved {
		return ""
	}
	return d.Reason
}

// decisionFields checks a reviewer's decision (its reason trimmed).
func decisionFields(d *Decision) error {
	f := Fields{}
	d.Reason = strings.TrimSpace(d.Reason)
	if d.Approved == nil {
		f.Add("approved", "请填写审核结论", "approved is required")
	} else if !*d.Approved {
		f.Required("reason", d.Reason, "不通过的原因", "a reason for the rejection")
	}
	f.MaxLen("reason", d.Reason, 500)
	f.Text("reason", d.Reason)
	return f.Err()
}

// Onsite is the on-site check (现场确认) as the operator sends it: the ID
// card as read, and the photo taken (a JPEG).
type Onsite struct {
	IDCardNumber string
	Name         string
	Photo        io.Reader // nil when none was sent
}

// OnsiteCheck confirms the applicant on site: the ID card read must match
// the registration; the photo is stored and the workflow completes the
// registration with its admission ticket number.
func (s *Service) OnsiteCheck(ctx context.Context, who accounts.Account, id, key string, in Onsite) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepOnsiteCheck)
	if err != nil {
		return r, err
	}
	f := Fields{}
	card := f.IDNumber("id_card_number", in.IDCardNumber)
	name := f.Name("name", in.Name)
	if err := f.Err(); err != nil {
		return r, err
	}
	if r.Status != status.PreRegistered && r.Status != status.Completed {
		// Never confirmed (a confirmed one stays completed): nothing to repeat.
		return r, refuse(workflows.ErrNotPreRegistered)
	}
	switch {
	case card.String() != r.IDNumber:
		return r, &Refusal{Code: CodeIdentityMismatch, Detail: DetailIDNumber}
	case name != r.Name:
		return r, &Refusal{Code: CodeIdentityMismatch, Detail: DetailName}
	}
	photoID, err := s.storeFile(ctx, f, "photo", in.Photo, files.JPEG)
	if err != nil {
		return r, err
	}
	now, err := s.decide(ctx, r, workflows.UpdateOnsiteCheck, updateID(workflows.UpdateOnsiteCheck, who, key),
		workflows.OnsiteCheck{PhotoFileID: photoID, AccountID: who.ID, OfficeArea: officeArea(who)})
	if _, refused := err.(*Refusal); refused {
		s.discard(ctx, nil, photoID)
	}
	return now, err
}

// Withdraw ends the applicant's registration before completion.
func (s *Service) Withdraw(ctx context.Context, who accounts.Account, id, key string) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepWithdraw)
	if err != nil {
		return r, err
	}
	return s.decide(ctx, r, workflows.UpdateWithdraw, updateID(workflows.UpdateWithdraw, who, key), workflows.Withdrawal{AccountID: who.ID})
}

// Annul ends an open registration by the exam office's decision (作废), for
// example one made with another person's ID number: the county reviewer of
// the registration's exam area or a provincial reviewer, with a reason that
// the applicant is shown. The ID number is free again at once. The reason
// is stored in PostgreSQL; only its id travels.
func (s *Service) Annul(ctx context.Context, who accounts.Account, id, key, reason string) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepAnnul)
	if err != nil {
		return r, err
	}
	f := Fields{}
	reason = strings.TrimSpace(reason)
	f.Required("reason", reason, "作废的原因", "a reason for the annulment")
	f.MaxLen("reason", reason, 500)
	f.Text("reason", reason)
	if err := f.Err(); err != nil {
		return r, err
	}
	return s.decideWithReason(ctx, r, workflows.UpdateAnnul, updateID(workflows.UpdateAnnul, who, key), reason, func(reasonID string) any {
		return workflows.Annulment{ReasonID: reasonID, ByRole: reviewerRole(who), AccountID: who.ID, OfficeArea: officeArea(who)}
	})
}

// ReportFile returns the report on file, for the applicant and reviewers in scope.
func (s *Service) ReportFile(ctx context.Context, who accounts.Account, id string) (registrations.Registration, files.File, error) {
	r, err := s.Get(ctx, who, id)
	if err != nil {
		return r, files.File{}, err
	}
	if who.Role == accounts.RoleOnsiteOperator || who.Role == accounts.RoleAdmin {
		return r, files.File{}, refuse(CodeForbidden)
	}
	if r.ReportFileID == nil {
		return r, files.File{}, refuse(CodeNoReport)
	}
	f, err := s.fetch(ctx, who, r.ID, files.KindReport, *r.ReportFileID)
	return r, f, err
}

// AwaitingOnsite finds the pre-registered registrations of an ID number in
// the on-site operator's exam area.
func (s *Service) AwaitingOnsite(ctx context.Context, who accounts.Account, idNumber string) ([]registrations.Registration, error) {
	f := Fields{}
	id := f.IDNumber("id_number", idNumber)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if who.Role != accounts.RoleOnsiteOperator {
		return nil, refuse(CodeForbidden)
	}
	regs, err := s.Registrations.PreRegistered(ctx, who.Area(), id.String())
	return regs, unavailable(err)
}
