package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/enrolled"
	"zikao/internal/files"
	"zikao/internal/idcard"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

type personalIn struct {
	Name      string `json:"name"`
	IDNumber  string `json:"id_number"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birth_date"`
	Ethnicity string `json:"ethnicity"`
	Phone     string `json:"phone"`
	Address   string `json:"address"`
	Education string `json:"education"`
}

type applicationIn struct {
	MajorType          string `json:"major_type"`
	Level              string `json:"level"`
	MajorCode          string `json:"major_code"`
	ExamAreaCode       string `json:"exam_area_code"`
	PriorSchool        string `json:"prior_school"`
	PriorDiplomaNumber string `json:"prior_diploma_number"`
}

type submitIn struct {
	Kind        string        `json:"kind"`
	AgreeTerms  *bool         `json:"agree_terms"`
	Personal    personalIn    `json:"personal"`
	Application applicationIn `json:"application"`

	// 在籍注册
	Name                 string `json:"name"`
	IDNumber             string `json:"id_number"`
	VerifyTicketNumber   string `json:"verify_ticket_number"`
	SelectedTicketNumber string `json:"selected_ticket_number"`
}

// submit starts a registration (POST /registrations).
func (s *Server) submit(c *gin.Context) {
	var in submitIn
	if !bindJSON(c, &in) {
		return
	}
	if s.resubmitted(c) {
		return
	}
	var reg *registrations.Registration
	switch in.Kind {
	case workflows.KindNew:
		reg = s.newApplicant(c, in)
	case workflows.KindEnrolled:
		reg = s.enrolledApplicant(c, in)
	default:
		invalid(c, fieldErrors{"kind": "注册类型须为新生注册（new）或在籍注册（enrolled） / kind must be new or enrolled"})
	}
	if reg == nil {
		return
	}
	s.start(c, reg)
}

// resubmitted answers a submission retried with the Idempotency-Key of one
// already made, with that registration as it is now.
func (s *Server) resubmitted(c *gin.Context) bool {
	key := idempotencyKey(c)
	if key == "" {
		return false
	}
	r, err := s.Registrations.ByKey(c, account(c).ID, key)
	if errors.Is(err, registrations.ErrNotFound) {
		return false
	}
	if err != nil {
		failErr(c, err)
		return true
	}
	s.respondWith(c, http.StatusAccepted, r)
	return true
}

// idempotencyKey is the request's Idempotency-Key header, if usable.
func idempotencyKey(c *gin.Context) string {
	key := strings.TrimSpace(c.GetHeader("Idempotency-Key"))
	if len(key) > 100 {
		return ""
	}
	return key
}

// newApplicant validates a 新生注册 and returns the registration to create,
// or nil after answering with the reason it cannot be.
func (s *Server) newApplicant(c *gin.Context, in submitIn) *registrations.Registration {
	f := fieldErrors{}
	f.agreed(in.AgreeTerms)
	p, a := in.Personal, in.Application
	p.Name = f.name("personal.name", p.Name)
	id := f.idNumber("personal.id_number", p.IDNumber)
	if p.Gender != "male" && p.Gender != "female" {
		f.add("personal.gender", "性别须为男（male）或女（female）", "gender must be male or female")
	} else if id != "" && id.Gender() != p.Gender {
		f.add("personal.gender", "性别与身份证号不符", "gender does not agree with the ID number")
	}
	birth, err := time.Parse(time.DateOnly, p.BirthDate)
	if err != nil {
		f.add("personal.birth_date", "出生日期格式须为 YYYY-MM-DD", "birth date must be YYYY-MM-DD")
	} else if id != "" && !birth.Equal(id.BirthDate()) {
		f.add("personal.birth_date", "出生日期与身份证号不符", "birth date does not agree with the ID number")
	}
	f.phone("personal.phone", p.Phone)
	f.optionalPersonal(p)
	if a.MajorType != "social" {
		f.add("application.major_type", "专业类型须为面向社会开考（social）", "major type must be social")
	}
	var major catalog.Major
	switch a.Level {
	case catalog.LevelZhuanke, catalog.LevelZhuanshengben:
		if f.required("application.major_code", a.MajorCode, "专业", "major") {
			major, err = s.Catalog.Major(c, a.MajorCode)
			if errors.Is(err, catalog.ErrNotFound) || (err == nil && major.Level != a.Level) {
				f.add("application.major_code", "该层次下没有此专业", "no such major at this level")
			} else if err != nil {
				failErr(c, err)
				return nil
			}
		}
	default:
		f.add("application.level", "层次须为专科（zhuanke）或本科(专升本)（zhuanshengben）", "level must be zhuanke or zhuanshengben")
	}
	if a.Level == catalog.LevelZhuanshengben {
		if f.required("application.prior_school", a.PriorSchool, "专科毕业学校", "prior school") {
			f.maxLen("application.prior_school", a.PriorSchool, 100)
		}
		if f.required("application.prior_diploma_number", a.PriorDiplomaNumber, "毕业证号", "prior diploma number") &&
			!diplomaPattern.MatchString(a.PriorDiplomaNumber) {
			f.add("application.prior_diploma_number", "毕业证号须为18位数字（2002年前为17位）", "diploma number must be 18 digits (17 before 2002)")
		}
	}
	area, ok := s.examArea(c, f, "application.exam_area_code", a.ExamAreaCode)
	if !ok {
		return nil
	}
	if len(f) > 0 {
		invalid(c, f)
		return nil
	}
	r := &registrations.Registration{
		Kind: workflows.KindNew, Name: p.Name, IDNumber: string(id), Gender: p.Gender, BirthDate: birth,
		Ethnicity: p.Ethnicity, Phone: p.Phone, Address: p.Address, Education: p.Education,
		MajorType: a.MajorType, Level: a.Level, MajorCode: major.Code, ExamAreaCode: area.Code,
	}
	if a.Level == catalog.LevelZhuanshengben {
		r.PriorSchool, r.PriorDiplomaNumber = a.PriorSchool, a.PriorDiplomaNumber
	}
	if !s.checkWindow(c, area, r) || !s.checkNotEnrolled(c, id) {
		return nil
	}
	return r
}

// examArea looks up an exam area with its window for the current sitting.
func (s *Server) examArea(c *gin.Context, f fieldErrors, field, code string) (catalog.ExamArea, bool) {
	if !f.required(field, code, "考区", "exam area") {
		return catalog.ExamArea{}, true
	}
	area, err := s.Catalog.ExamArea(c, code, s.Year, s.Sitting)
	if errors.Is(err, catalog.ErrNotFound) {
		f.add(field, "没有此考区", "no such exam area")
		return area, true
	}
	if err != nil {
		failErr(c, err)
		return area, false
	}
	return area, true
}

// checkWindow refuses a registration when the exam area's confirmation
// window of this sitting is not set or already over; else it gives r that
// window.
func (s *Server) checkWindow(c *gin.Context, area catalog.ExamArea, r *registrations.Registration) bool {
	if area.Window == nil || !time.Now().Before(area.Window.EndsAt) {
		fail(c, errNotOpen)
		return false
	}
	r.WindowStartsAt, r.WindowEndsAt = area.Window.StartsAt, area.Window.EndsAt
	return true
}

// checkNotEnrolled refuses a 新生注册 for an ID number with enrolment
// records: that person registers as enrolled. (An ID number already
// registered and confirmed is refused by Create, whichever the kind.)
func (s *Server) checkNotEnrolled(c *gin.Context, id idcard.Number) bool {
	has, err := s.Enrolled.HasRecords(c, id.String())
	if err != nil {
		failErr(c, err)
		return false
	}
	if has {
		fail(c, errIDEnrolled)
		return false
	}
	return true
}

// enrolledApplicant validates a 在籍注册: the enrolment is verified again and
// the application data comes from the selected record.
func (s *Server) enrolledApplicant(c *gin.Context, in submitIn) *registrations.Registration {
	f := fieldErrors{}
	f.agreed(in.AgreeTerms)
	in.Name = f.name("name", in.Name)
	id := f.idNumber("id_number", in.IDNumber)
	f.ticket("verify_ticket_number", in.VerifyTicketNumber)
	f.ticket("selected_ticket_number", in.SelectedTicketNumber)
	f.phone("personal.phone", in.Personal.Phone)
	f.optionalPersonal(in.Personal)
	if len(f) > 0 {
		invalid(c, f)
		return nil
	}
	records, ok := s.verifyEnrolment(c, in.Name, id.String(), in.VerifyTicketNumber)
	if !ok {
		return nil
	}
	var rec *enrolled.Record
	for i := range records {
		if records[i].TicketNumber == in.SelectedTicketNumber {
			rec = &records[i]
		}
	}
	if rec == nil {
		invalid(c, fieldErrors{"selected_ticket_number": "所选准考证号不属于您的在籍信息 / the selected ticket number is not one of your records"})
		return nil
	}
	area, err := s.Catalog.ExamArea(c, rec.ExamAreaCode, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return nil
	}
	p := in.Personal
	r := &registrations.Registration{
		Kind: workflows.KindEnrolled, Name: rec.Name, IDNumber: rec.IDNumber, Gender: id.Gender(), BirthDate: id.BirthDate(),
		Ethnicity: p.Ethnicity, Phone: p.Phone, Address: p.Address, Education: p.Education,
		MajorType: "social", Level: rec.Level, MajorCode: rec.MajorCode, ExamAreaCode: rec.ExamAreaCode,
		SelectedTicketNumber: &rec.TicketNumber,
	}
	if !s.checkWindow(c, area, r) {
		return nil
	}
	return r
}

// verifyEnrolment checks name, ID number and ticket number against the
// enrolment records (its callers are throttled by limitProbes).
func (s *Server) verifyEnrolment(c *gin.Context, name, idNumber, ticket string) ([]enrolled.Record, bool) {
	records, err := s.Enrolled.Lookup(c, name, idNumber, ticket)
	if errors.Is(err, enrolled.ErrNotFound) {
		fail(c, errEnrolmentNotFound)
		return nil, false
	}
	if err != nil {
		failErr(c, err)
		return nil, false
	}
	return records, true
}

// lookupEnrolment answers POST /enrolled-records/lookup.
func (s *Server) lookupEnrolment(c *gin.Context) {
	var in struct {
		Name         string `json:"name"`
		IDNumber     string `json:"id_number"`
		TicketNumber string `json:"ticket_number"`
	}
	if !bindJSON(c, &in) {
		return
	}
	f := fieldErrors{}
	in.Name = f.name("name", in.Name)
	id := f.idNumber("id_number", in.IDNumber)
	f.ticket("ticket_number", in.TicketNumber)
	if len(f) > 0 {
		invalid(c, f)
		return
	}
	records, ok := s.verifyEnrolment(c, in.Name, id.String(), in.TicketNumber)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{"records": records})
}

// start creates the registration row, then its workflow. The row's unique
// indexes refuse a second open registration of the account or the ID
// number. The registration keeps the window it was made in (set by the
// caller): the workflow's deadline is its end.
func (s *Server) start(c *gin.Context, r *registrations.Registration) {
	r.ID, r.AccountID, r.Year, r.Sitting, r.TermsAgreedAt = uuid.NewString(), account(c).ID, s.Year, s.Sitting, time.Now()
	if key := idempotencyKey(c); key != "" {
		r.IdempotencyKey = &key
	}
	in := workflows.Input{RegistrationID: r.ID, Kind: r.Kind, Level: r.Level, ExamAreaCode: r.ExamAreaCode,
		Window: workflows.Window{StartsAt: r.WindowStartsAt, EndsAt: r.WindowEndsAt}}
	r.Status = in.FirstStatus()
	const note = "考生提交注册申请"
	err := s.Registrations.Create(c, r, note)
	inProgress := func() bool {
		return errors.Is(err, registrations.ErrInProgress) || errors.Is(err, registrations.ErrIDInProgress)
	}
	if inProgress() && s.repairStale(c, r) {
		err = s.Registrations.Create(c, r, note)
	}
	if inProgress() && s.resubmitted(c) {
		return // the same request, racing itself
	}
	switch {
	case errors.Is(err, registrations.ErrInProgress):
		fail(c, errInProgress)
		return
	case errors.Is(err, registrations.ErrIDInProgress):
		fail(c, errIDInProgress)
		return
	case errors.Is(err, registrations.ErrRegistered):
		fail(c, errIDRegistered)
		return
	case err != nil:
		failErr(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c, 10*time.Second)
	defer cancel()
	if _, err := s.Temporal.ExecuteWorkflow(ctx, workflows.StartOptions(in, s.TaskQueue), workflows.WorkflowName, in); err != nil {
		// The start may have happened though its answer was lost. If not, the
		// row is cleared by repairStale when the applicant submits again.
		if s.workflowState(context.WithoutCancel(c), r.ID) != workflowRunning {
			slog.ErrorContext(c, "start registration workflow", "registration_id", r.ID, "error", err)
			fail(c, errUnavailable)
			return
		}
	}
	s.respondWith(c, http.StatusAccepted, *r)
}

type workflowStatus int

const (
	workflowUnknown workflowStatus = iota // Temporal did not answer
	workflowMissing
	workflowRunning
	workflowClosed
)

// workflowState tells whether a registration's workflow exists and runs.
func (s *Server) workflowState(ctx context.Context, registrationID string) workflowStatus {
	d, err := s.Temporal.DescribeWorkflow(ctx, workflows.WorkflowID(registrationID), "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return workflowMissing
	case err != nil:
		return workflowUnknown
	case d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return workflowRunning
	}
	return workflowClosed
}

// repairStale clears the open registrations in the way of r that can no
// longer move: a row whose workflow never started (the API stopped between
// writing it and starting the workflow) is removed; one whose workflow an
// operator terminated is closed as withdrawn. It reports whether it cleared any.
func (s *Server) repairStale(c *gin.Context, r *registrations.Registration) bool {
	stale, err := s.Registrations.OpenBefore(c, r.AccountID, r.IDNumber, time.Now().Add(-time.Minute))
	if err != nil {
		slog.ErrorContext(c, "look for stale registrations", "error", err)
		return false
	}
	cleared := false
	for _, old := range stale {
		state := s.workflowState(c, old.ID)
		switch {
		case state == workflowMissing && old.LastSeq == 1:
			// Never started: a minute is far longer than a start may take.
			err = s.Registrations.Delete(c, old.ID)
		case state == workflowMissing || state == workflowClosed:
			// Terminated by an operator (and perhaps deleted since).
			err = s.Registrations.Record(c, registrations.Transition{RegistrationID: old.ID, Seq: old.LastSeq + 1,
				Status: status.Withdrawn, At: time.Now(), ByRole: workflows.BySystem, Note: "注册流程已被终止，本次注册关闭",
				RejectionReason: deref(old.RejectionReason), ReportID: deref(old.ReportID)})
		default:
			continue
		}
		if err != nil {
			slog.ErrorContext(c, "repair stale registration", "registration_id", old.ID, "error", err)
			continue
		}
		slog.WarnContext(c, "cleared a registration whose workflow is gone", "registration_id", old.ID)
		cleared = true
	}
	return cleared
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *Server) mine(c *gin.Context) {
	r, err := s.Registrations.Latest(c, account(c).ID)
	if errors.Is(err, registrations.ErrNotFound) {
		fail(c, errNoRegistration)
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	s.respondWith(c, http.StatusOK, r)
}

// registration loads the registration of the :id parameter and checks the
// caller may see it: its owner, or staff whose scope covers it.
func (s *Server) registration(c *gin.Context) (registrations.Registration, bool) {
	r, err := s.Registrations.Get(c, c.Param("id"))
	if errors.Is(err, registrations.ErrNotFound) {
		fail(c, errNoRegistration)
		return r, false
	}
	if err != nil {
		failErr(c, err)
		return r, false
	}
	a := account(c)
	var visible bool
	switch a.Role {
	case accounts.RoleApplicant:
		visible = r.AccountID == a.ID
	case accounts.RoleCountyReviewer, accounts.RoleOnsiteOperator:
		visible = r.ExamAreaCode == a.Area()
	case accounts.RoleProvincialReviewer, accounts.RoleAdmin:
		visible = true
	}
	if !visible {
		fail(c, errForbidden)
		return r, false
	}
	return r, true
}

func (s *Server) getRegistration(c *gin.Context) {
	if r, ok := s.registration(c); ok {
		s.respondWith(c, http.StatusOK, r)
	}
}

// uploadReport takes the diploma certification report (学历认证报告).
func (s *Server) uploadReport(c *gin.Context) {
	r, updateID, ok := s.decision(c, workflows.UpdateUploadReport, http.StatusAccepted)
	if !ok {
		return
	}
	if r.Status != status.AwaitingReport {
		fail(c, errNotAwaitingReport)
		return
	}
	if !parseMultipart(c) {
		return
	}
	f := fieldErrors{}
	code := strings.ToUpper(strings.TrimSpace(c.PostForm("verification_code")))
	reportNo, certNo := strings.TrimSpace(c.PostForm("report_number")), strings.TrimSpace(c.PostForm("certificate_number"))
	switch {
	case code != "":
		if !codePattern.MatchString(code) {
			f.add("verification_code", "在线验证码须为12位字母或数字", "verification code must be 12 letters or digits")
		}
	case reportNo != "" || certNo != "":
		f.required("report_number", reportNo, "报告编号", "report number")
		f.required("certificate_number", certNo, "证书编号", "certificate number")
		f.maxLen("report_number", reportNo, 50)
		f.maxLen("certificate_number", certNo, 50)
	default:
		f.add("verification_code", "请填写在线验证码，或报告编号和证书编号", "give the verification code, or the report and certificate numbers")
	}
	fileID, ok := s.storeUpload(c, "file", f, files.PDF, files.JPEG, files.PNG)
	if !ok {
		return
	}
	if code != "" {
		reportNo, certNo = "", ""
	}
	reportID, err := s.Registrations.AddReport(c, r.ID, fileID, code, reportNo, certNo)
	if err != nil {
		failErr(c, err)
		return
	}
	s.decide(c, r, updateID, workflows.ReportUpload{ReportID: reportID}, http.StatusAccepted)
}

// parseMultipart reads a multipart form (fields and files, within the body
// limit) before any field is looked at: 413 when it is too large, 400 when
// it is no multipart form.
func parseMultipart(c *gin.Context) bool {
	err := c.Request.ParseMultipartForm(1 << 20)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		fail(c, errTooLarge)
	case err != nil:
		p := errMalformed
		p.Message, p.MessageEN = "请以 multipart/form-data 提交表单和文件", "send a multipart/form-data form with the file"
		fail(c, p)
	default:
		return true
	}
	return false
}

// storeUpload checks the other fields (f), then reads, checks and stores
// the file of a multipart field. It answers and returns false on failure.
func (s *Server) storeUpload(c *gin.Context, field string, f fieldErrors, accepted ...string) (string, bool) {
	fh, err := c.FormFile(field) // the form is parsed already (parseMultipart)
	if err != nil {
		f.add(field, "请上传文件", "a file is required")
	}
	if len(f) > 0 {
		invalid(c, f)
		return "", false
	}
	file, err := fh.Open()
	if err != nil {
		failErr(c, fmt.Errorf("open upload: %w", err))
		return "", false
	}
	defer file.Close()
	data, ct, err := files.Read(file, accepted...)
	switch {
	case errors.Is(err, files.ErrTooLarge):
		fail(c, errTooLarge)
	case errors.Is(err, files.ErrType):
		fail(c, errFileType)
	case errors.Is(err, files.ErrEmpty):
		invalid(c, fieldErrors{field: "文件为空 / the file is empty"})
	case err != nil:
		failErr(c, err)
	default:
		id, err := s.Files.Put(c, data, ct)
		if err != nil {
			failErr(c, err)
			return "", false
		}
		return id, true
	}
	return "", false
}

func (s *Server) withdraw(c *gin.Context) {
	r, updateID, ok := s.decision(c, workflows.UpdateWithdraw, http.StatusAccepted)
	if !ok {
		return
	}
	s.decide(c, r, updateID, nil, http.StatusAccepted)
}

func (s *Server) downloadReport(c *gin.Context) {
	r, ok := s.registration(c)
	if !ok {
		return
	}
	if a := account(c); a.Role == accounts.RoleOnsiteOperator || a.Role == accounts.RoleAdmin {
		fail(c, errForbidden)
		return
	}
	if r.ReportFileID == nil {
		fail(c, errNotFound)
		return
	}
	file, err := s.Files.Get(c, *r.ReportFileID)
	if err != nil {
		failErr(c, err)
		return
	}
	ext := map[string]string{files.PDF: "pdf", files.JPEG: "jpg", files.PNG: "png"}[file.ContentType]
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="diploma-report-%s.%s"`, r.ID, ext))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, file.ContentType, file.Data)
}

// updateID names a decision's Workflow Update: the request's
// Idempotency-Key (or a fresh id), scoped to the update and the caller.
type updateID struct{ name, id string }

// decision starts handling a decision on the registration of :id: it loads
// and authorizes the registration and names the update. A retried request
// (same Idempotency-Key) whose step was already made is answered here, with
// the registration as it is now, and ok is false.
func (s *Server) decision(c *gin.Context, update string, okStatus int) (r registrations.Registration, u updateID, ok bool) {
	if r, ok = s.registration(c); !ok {
		return r, u, false
	}
	key := idempotencyKey(c)
	if key == "" {
		key = uuid.NewString()
	}
	u = updateID{name: update, id: fmt.Sprintf("%s/%d/%s", update, account(c).ID, key)}
	done, err := s.Registrations.StepDone(c, r.ID, u.id)
	if err != nil {
		failErr(c, err)
		return r, u, false
	}
	if done {
		s.respondWith(c, okStatus, r)
		return r, u, false
	}
	return r, u, true
}

// decide sends a decision to the registration's workflow as a Workflow
// Update and waits until the workflow has applied or refused it. The same
// update id twice is applied once.
func (s *Server) decide(c *gin.Context, r registrations.Registration, u updateID, arg any, okStatus int) {
	if status.Terminal(r.Status) {
		s.refused(c, r, u.name, workflows.ErrClosed)
		return
	}
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   workflows.WorkflowID(r.ID),
		UpdateID:     u.id,
		UpdateName:   u.name,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if arg != nil {
		opts.Args = []any{arg}
	}
	ctx, cancel := context.WithTimeout(c, s.UpdateTimeout)
	defer cancel()
	h, err := s.Temporal.UpdateWorkflow(ctx, opts)
	if err == nil {
		var st workflows.State
		err = h.Get(ctx, &st)
	}
	if err != nil {
		s.updateFailed(c, r, u.name, err)
		return
	}
	s.respond(c, okStatus, r.ID)
}

func (s *Server) updateFailed(c *gin.Context, r registrations.Registration, update string, err error) {
	var notFound *serviceerror.NotFound
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	if code, ok := workflows.IsRefusal(err); ok {
		s.refused(c, r, update, code)
		return
	}
	switch {
	case errors.As(err, &notFound), temporal.IsCanceledError(err):
		// The workflow has ended (or an operator cancelled it) since the read
		// model was read.
		s.refused(c, r, update, workflows.ErrClosed)
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		c.Header("Retry-After", "5")
		fail(c, errUnavailable)
	default:
		failErr(c, fmt.Errorf("update %s: %w", update, err))
	}
}

// refused answers 409 (422 for bad input) with the workflow's reason; a
// closed registration answers with the code of the step that was asked for,
// one outside its window with the window's dates.
func (s *Server) refused(c *gin.Context, r registrations.Registration, update, code string) {
	if code == workflows.ErrClosed {
		code = map[string]string{
			workflows.UpdateUploadReport:     errNotAwaitingReport.Code,
			workflows.UpdateCountyReview:     errNotAwaitingReview.Code,
			workflows.UpdateProvincialReview: errNotAwaitingReview.Code,
			workflows.UpdateOnsiteCheck:      errNotPreRegistered.Code,
			workflows.UpdateWithdraw:         errClosed.Code,
		}[update]
	}
	p, ok := problems[code]
	if !ok {
		p = problem{status: http.StatusConflict, apiError: apiError{Code: code, Message: "当前状态不允许此操作", MessageEN: "not allowed in the current state"}}
	}
	if code == workflows.ErrOutsideWindow {
		p.Message = fmt.Sprintf("不在本考区现场确认时间内（%s 至 %s）", day(r.WindowStartsAt), day(r.WindowEndsAt))
		p.MessageEN = fmt.Sprintf("outside the confirmation window (%s to %s)",
			r.WindowStartsAt.Format(time.RFC3339), r.WindowEndsAt.Format(time.RFC3339))
	}
	fail(c, p)
}
