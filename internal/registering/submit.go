package registering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/enrolled"
	"zikao/internal/idcard"
	"zikao/internal/registrations"
	"zikao/internal/wellformed"
	"zikao/workflows"
)

// Personal is the applicant's personal information.
type Personal struct {
	Name      string `json:"name"`
	IDNumber  string `json:"id_number"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birth_date"`
	Ethnicity string `json:"ethnicity"`
	Phone     string `json:"phone"`
	Address   string `json:"address"`
	Education string `json:"education"`
}

// Application is what a new applicant applies for.
type Application struct {
	MajorType          string `json:"major_type"`
	Level              string `json:"level"`
	MajorCode          string `json:"major_code"`
	ExamAreaCode       string `json:"exam_area_code"`
	PriorSchool        string `json:"prior_school"`
	PriorDiplomaNumber string `json:"prior_diploma_number"`
}

// Submission is a registration as submitted: 新生注册 (kind new: Personal
// and Application) or 在籍注册 (kind enrolled: Name, IDNumber, the ticket
// numbers, and Personal's optional fields and phone).
type Submission struct {
	Kind        string      `json:"kind"`
	AgreeTerms  *bool       `json:"agree_terms"`
	Personal    Personal    `json:"personal"`
	Application Application `json:"application"`

	Name                 string `json:"name"`
	IDNumber             string `json:"id_number"`
	VerifyTicketNumber   string `json:"verify_ticket_number"`
	SelectedTicketNumber string `json:"selected_ticket_number"`
}

// Submit starts a registration for an applicant: it checks the submission,
// writes the registration row, then starts its workflow. Submitted again
// with the same idempotency key, it answers with the registration made the
// first time, starting its workflow if that had failed.
func (s *Service) Submit(ctx context.Context, who accounts.Account, in Submission, key string) (registrations.Registration, error) {
	if key != "" {
		r, err := s.Registrations.ByKey(ctx, who.ID, key)
		if err == nil {
			return r, s.ensureStarted(ctx, r)
		}
		if !errors.Is(err, registrations.ErrNotFound) {
			return r, unavailable(err)
		}
	}
	var r *registrations.Registration
	var err error
	switch in.Kind {
	case workflows.KindNew:
		r, err = s.newApplicant(ctx, in)
	case workflows.KindEnrolled:
		r, err = s.enrolledApplicant(ctx, in)
	default:
		err = Fields{"kind": "注册类型须为新生注册（new）或在籍注册（enrolled） / kind must be new or enrolled"}.Err()
	}
	if err != nil {
		return registrations.Registration{}, err
	}
	r.ID, r.AccountID, r.Year, r.Sitting, r.TermsAgreedAt = uuid.NewString(), who.ID, s.Year, s.Sitting, time.Now()
	if key != "" {
		r.IdempotencyKey = &key
	}
	r.Status = input(*r).FirstStatus()
	err = s.Registrations.Create(ctx, r, "考生提交注册申请")
	switch {
	case errors.Is(err, registrations.ErrResubmitted):
		return *r, s.ensureStarted(ctx, *r) // the same request, racing itself
	case errors.Is(err, registrations.ErrNotOpen):
		return *r, refuse(CodeNotOpen)
	case errors.Is(err, registrations.ErrInProgress):
		return *r, refuse(CodeInProgress)
	case errors.Is(err, registrations.ErrIDInProgress):
		return *r, &Refusal{Code: CodeInProgress, Detail: DetailOtherAccount}
	case errors.Is(err, registrations.ErrRegistered):
		return *r, refuse(CodeIDRegistered)
	case err != nil:
		return *r, unavailable(err)
	}
	return *r, s.ensureStarted(ctx, *r)
}

// input is the workflow input of a registration row: no personal data.
func input(r registrations.Registration) workflows.Input {
	return workflows.Input{RegistrationID: r.ID, Kind: r.Kind, Level: r.Level, ExamAreaCode: r.ExamAreaCode,
		Window: workflows.Window{StartsAt: r.WindowStartsAt, EndsAt: r.WindowEndsAt}}
}

// ensureStarted starts the workflow of a registration unless it has been
// started already. When Temporal does not answer, the row stays: the
// applicant's retry (same key) or the reconciler starts it later.
func (s *Service) ensureStarted(ctx context.Context, r registrations.Registration) error {
	ctx, cancel := context.WithTimeout(ctx, s.StartTimeout)
	defer cancel()
	in := input(r)
	_, err := s.Temporal.ExecuteWorkflow(ctx, workflows.StartOptions(in, s.TaskQueue), workflows.WorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err == nil || errors.As(err, &started) {
		return nil
	}
	slog.WarnContext(ctx, "start registration workflow", "registration_id", r.ID, "error", err)
	return fmt.Errorf("%w: start workflow of %s: %w", ErrUnavailable, r.ID, err)
}

// newApplicant checks a 新生注册 and returns the registration to create.
func (s *Service) newApplicant(ctx context.Context, in Submission) (*registrations.Registration, error) {
	f := Fields{}
	f.Agreed(in.AgreeTerms)
	p, a := in.Personal, in.Application
	p.Name = f.Name("personal.name", p.Name)
	id := f.IDNumber("personal.id_number", p.IDNumber)
	if p.Gender != "male" && p.Gender != "female" {
		f.Add("personal.gender", "性别须为男（male）或女（female）", "gender must be male or female")
	} else if id != "" && id.Gender() != p.Gender {
		f.Add("personal.gender", "性别与身份证号不符", "gender does not agree with the ID number")
	}
	birth, err := time.Parse(time.DateOnly, p.BirthDate)
	if err != nil {
		f.Add("personal.birth_date", "出生日期格式须为 YYYY-MM-DD", "birth date must be YYYY-MM-DD")
	} else if id != "" && !birth.Equal(id.BirthDate()) {
		f.Add("personal.birth_date", "出生日期与身份证号不符", "birth date does not agree with the ID number")
	}
	f.Phone("personal.phone", p.Phone)
	f.OptionalPersonal(p)
	if a.MajorType != "social" {
		f.Add("application.major_type", "专业类型须为面向社会开考（social）", "major type must be social")
	}
	major, err := s.major(ctx, f, a)
	if err != nil {
		return nil, err
	}
	if a.Level == catalog.LevelZhuanshengben {
		if f.Required("application.prior_school", a.PriorSchool, "专科毕业学校", "prior school") {
			f.MaxLen("application.prior_school", a.PriorSchool, 100)
			f.Text("application.prior_school", a.PriorSchool)
		}
		if f.Required("application.prior_diploma_number", a.PriorDiplomaNumber, "毕业证号", "prior diploma number") &&
			!diplomaPattern.MatchString(a.PriorDiplomaNumber) {
			f.Add("application.prior_diploma_number", "毕业证号须为18位数字（2002年前为17位）", "diploma number must be 18 digits (17 before 2002)")
		}
	}
	area, err := s.examArea(ctx, f, "application.exam_area_code", a.ExamAreaCode)
	if err != nil {
		return nil, err
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if err := s.checkNotEnrolled(ctx, id); err != nil {
		return nil, err
	}
	r := &registrations.Registration{
		Kind: workflows.KindNew, Name: p.Name, IDNumber: string(id), Gender: p.Gender, BirthDate: birth,
		Ethnicity: p.Ethnicity, Phone: p.Phone, Address: p.Address, Education: p.Education,
		MajorType: a.MajorType, Level: a.Level, MajorCode: major.Code, ExamAreaCode: area.Code,
	}
	if a.Level == catalog.LevelZhuanshengben {
		r.PriorSchool, r.PriorDiplomaNumber = a.PriorSchool, a.PriorDiplomaNumber
	}
	return r, nil
}

// major checks the level and the major chosen at that level.
func (s *Service) major(ctx context.Context, f Fields, a Application) (catalog.Major, error) {
	if a.Level != catalog.LevelZhuanke && a.Level != catalog.LevelZhuanshengben {
		f.Add("application.level", "层次须为专科（zhuanke）或本科(专升本)（zhuanshengben）", "level must be zhuanke or zhuanshengben")
		return catalog.Major{}, nil
	}
	if !f.Required("application.major_code", a.MajorCode, "专业", "major") {
		return catalog.Major{}, nil
	}
	if !wellformed.Text(a.MajorCode) {
		f.Add("application.major_code", "该层次下没有此专业", "no such major at this level")
		return catalog.Major{}, nil
	}
	major, err := s.Catalog.Major(ctx, a.MajorCode)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && major.Level != a.Level) {
		f.Add("application.major_code", "该层次下没有此专业", "no such major at this level")
		return major, nil
	}
	return major, unavailable(err)
}

// examArea looks up an exam area with its window for the current sitting.
func (s *Service) examArea(ctx context.Context, f Fields, field, code string) (catalog.ExamArea, error) {
	if !f.Required(field, code, "考区", "exam area") {
		return catalog.ExamArea{}, nil
	}
	if !wellformed.Text(code) {
		f.Add(field, "没有此考区", "no such exam area")
		return catalog.ExamArea{}, nil
	}
	area, err := s.Catalog.ExamArea(ctx, code, s.Year, s.Sitting)
	if errors.Is(err, catalog.ErrNotFound) {
		f.Add(field, "没有此考区", "no such exam area")
		return area, nil
	}
	return area, unavailable(err)
}

// checkNotEnrolled refuses a 新生注册 for an ID number with enrolment
// records: that person registers as enrolled. (An ID number already
// registered and confirmed is refused by Create, whichever the kind.)
func (s *Service) checkNotEnrolled(ctx context.Context, id idcard.Number) error {
	has, err := s.Enrolled.HasRecords(ctx, id.String())
	if err != nil {
		return unavailable(err)
	}
	if has {
		return refuse(CodeIDEnrolled)
	}
	return nil
}

// enrolledApplicant checks a 在籍注册: the enrolment is verified again and
// the application data comes from the selected record.
func (s *Service) enrolledApplicant(ctx context.Context, in Submission) (*registrations.Registration, error) {
	f := Fields{}
	f.Agreed(in.AgreeTerms)
	in.Name = f.Name("name", in.Name)
	id := f.IDNumber("id_number", in.IDNumber)
	f.Ticket("verify_ticket_number", in.VerifyTicketNumber)
	f.Ticket("selected_ticket_number", in.SelectedTicketNumber)
	f.Phone("personal.phone", in.Personal.Phone)
	f.OptionalPersonal(in.Personal)
	if err := f.Err(); err != nil {
		return nil, err
	}
	records, err := s.lookup(ctx, in.Name, id.String(), in.VerifyTicketNumber)
	if err != nil {
		return nil, err
	}
	var rec *enrolled.Record
	for i := range records {
		if records[i].TicketNumber == in.SelectedTicketNumber {
			rec = &records[i]
		}
	}
	if rec == nil {
		return nil, Fields{"selected_ticket_number": "所选准考证号不属于您的在籍信息 / the selected ticket number is not one of your records"}.Err()
	}
	p := in.Personal
	return &registrations.Registration{
		Kind: workflows.KindEnrolled, Name: rec.Name, IDNumber: rec.IDNumber, Gender: id.Gender(), BirthDate: id.BirthDate(),
		Ethnicity: p.Ethnicity, Phone: p.Phone, Address: p.Address, Education: p.Education,
		MajorType: "social", Level: rec.Level, MajorCode: rec.MajorCode, ExamAreaCode: rec.ExamAreaCode,
		SelectedTicketNumber: &rec.TicketNumber,
	}, nil
}

// LookupEnrolment lists a person's enrolment records: name, ID number and
// one of their ticket numbers must match.
func (s *Service) LookupEnrolment(ctx context.Context, name, idNumber, ticket string) ([]enrolled.Record, error) {
	f := Fields{}
	name = f.Name("name", name)
	id := f.IDNumber("id_number", idNumber)
	f.Ticket("ticket_number", ticket)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return s.lookup(ctx, name, id.String(), ticket)
}

func (s *Service) lookup(ctx context.Context, name, idNumber, ticket string) ([]enrolled.Record, error) {
	records, err := s.Enrolled.Lookup(ctx, name, idNumber, ticket)
	if errors.Is(err, enrolled.ErrNotFound) {
		return nil, refuse(CodeEnrolmentMissing)
	}
	return records, unavailable(err)
}
