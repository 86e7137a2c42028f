package api

import (
	"fmt"
	"net/http"
	"time"
	_ "time/tzdata" // Asia/Shanghai on machines without a zone database

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// view is the registration view of the contract.
type view struct {
	RegistrationID  string                       `json:"registration_id"`
	Kind            string                       `json:"kind"`
	Status          string                       `json:"status"`
	StatusLabel     string                       `json:"status_label"`
	NextStep        string                       `json:"next_step"`
	ExamAreaCode    string                       `json:"exam_area_code"`
	Level           string                       `json:"level"`
	MajorCode       string                       `json:"major_code"`
	MajorName       string                       `json:"major_name"`
	HostSchool      string                       `json:"host_school"`
	TicketNumber    *string                      `json:"ticket_number"`
	SelectedTicket  *string                      `json:"selected_ticket_number"` // 在籍注册: the number to re-activate
	Window          catalog.Window               `json:"confirmation_window"`
	RejectionReason *string                      `json:"rejection_reason"`
	AnnulmentReason *string                      `json:"annulment_reason"` // the office's reason, once annulled
	CreatedAt       time.Time                    `json:"created_at"`
	UpdatedAt       time.Time                    `json:"updated_at"`
	History         []registrations.HistoryEntry `json:"history"`
	Applicant       applicantView                `json:"applicant"`
	Report          *reportView                  `json:"report"`
	Online          onlineView                   `json:"online_verification"`
	// In the reviewers' inbox only: when it entered the review stage, and
	// whether it has waited longer than the overdue time.
	WaitingSince *time.Time `json:"waiting_since,omitempty"`
	Overdue      *bool      `json:"overdue,omitempty"`
}

type applicantView struct {
	Name      string `json:"name"`
	IDNumber  string `json:"id_number"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birth_date"`
	Phone     string `json:"phone"`
	Ethnicity string `json:"ethnicity"`
	Address   string `json:"address"`
	Education string `json:"education"`
}

type reportView struct {
	VerificationCode  *string `json:"verification_code"`
	ReportNumber      *string `json:"report_number"`
	CertificateNumber *string `json:"certificate_number"`
	DownloadURL       string  `json:"download_url"`
}

// views turns read-model rows into views, with the reference data they need
// (read once per process: only a migration changes it).
func (s *Server) views(c *gin.Context, regs []registrations.Registration) ([]view, error) {
	st, err := s.Catalog.Static(c)
	if err != nil {
		return nil, err
	}
	staff := staffCaller(c)
	out := make([]view, 0, len(regs))
	for _, r := range regs {
		out = append(out, makeView(r, st.Majors[r.MajorCode], st.Areas[r.ExamAreaCode], staff))
	}
	return out, nil
}

// staffCaller reports whether the request's account is staff (any role but
// the applicant's): staff see who made each step.
func staffCaller(c *gin.Context) bool {
	a, ok := c.Get(accountKey)
	who, _ := a.(accounts.Account)
	return ok && who.Role != accounts.RoleApplicant
}

// makeView builds the view of a registration; staff also see, in each
// history entry, the login name of the account that made it (by_account).
func makeView(r registrations.Registration, m catalog.Major, area catalog.ExamArea, staff bool) view {
	v := view{
		RegistrationID: r.ID, Kind: r.Kind, Status: r.Status, StatusLabel: status.Label(r.Status),
		NextStep: nextStep(r, area), ExamAreaCode: r.ExamAreaCode, Level: r.Level,
		MajorCode: r.MajorCode, MajorName: m.Name, HostSchool: m.HostSchool,
		TicketNumber: r.TicketNumber, SelectedTicket: r.SelectedTicketNumber, RejectionReason: r.RejectionReason,
		Window:    catalog.Window{StartsAt: r.WindowStartsAt, EndsAt: r.WindowEndsAt},
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, History: r.History,
		Applicant: applicantView{Name: r.Name, IDNumber: r.IDNumber, Gender: r.Gender,
			BirthDate: r.BirthDate.Format(time.DateOnly), Phone: r.Phone,
			Ethnicity: r.Ethnicity, Address: r.Address, Education: r.Education},
	}
	v.AnnulmentReason = r.AnnulmentReason
	v.Online = makeOnlineView(r, time.Now())
	v.History = make([]registrations.HistoryEntry, 0, len(r.History))
	for _, h := range r.History {
		if !staff {
			h.ByAccount = nil
		}
		v.History = append(v.History, h)
	}
	if r.ReportFileID != nil {
		v.Report = &reportView{VerificationCode: r.ReportVerificationCode, ReportNumber: r.ReportNumber,
			CertificateNumber: r.ReportCertificateNumber, DownloadURL: "/api/v1/registrations/" + r.ID + "/diploma-report"}
	}
	return v
}

func day(t time.Time) string { return t.In(shanghai).Format("2006年1月2日 15:04") }

// nextStep tells the applicant, in Chinese, what to do next. The window is
// the registration's own: the one its workflow keeps to.
func nextStep(r registrations.Registration, area catalog.ExamArea) string {
	window := fmt.Sprintf("%s 至 %s", day(r.WindowStartsAt), day(r.WindowEndsAt))
	switch r.Status {
	case status.DiplomaCheck:
		return "正在向学信网核验您的专科学历，请稍候刷新"
	case status.AwaitingReport:
		s := "学信网未能核验您的专科及以上学历，请上传学历认证报告（《教育部学历证书电子注册备案表》或《中国高等教育学历认证报告》）"
		if r.RejectionReason != nil {
			s = "您的学历认证报告审核未通过（" + *r.RejectionReason + "），请重新上传"
		}
		return s + "。报告须经区考办和省考办审核后才能现场确认，请尽早上传；现场确认截止于 " + day(r.WindowEndsAt)
	case status.CountyReview:
		return "区考办正在审核您的学历认证报告，请耐心等待；审核通过后请于 " + day(r.WindowEndsAt) + " 前完成现场确认"
	case status.ProvincialReview:
		return "省考办正在审核您的学历认证报告，请耐心等待；审核通过后请于 " + day(r.WindowEndsAt) + " 前完成现场确认"
	case status.PreRegistered:
		s := fmt.Sprintf("请于 %s 携带居民身份证到 %s（%s%s）现场确认", window, area.OfficeAddress, area.City, area.Name)
		switch {
		case r.IdentityReviewReason != nil:
			s = "人工核验未通过（" + *r.IdentityReviewReason + "）。" + s
		case registering.Open(r, status.StepOnlineTry, time.Now()):
			s += fmt.Sprintf("；也可以在 %s 前网上验证，无需前往（剩余 %d 次）", day(r.WindowEndsAt), r.OnlineTriesLeft)
		case registering.Open(r, status.StepAskIdentityReview, time.Now()):
			s += "；三次网上验证均未通过，也可以申请人工核验"
		}
		return s
	case status.IdentityReview:
		return "考区办公室正在人工核验您网上验证的材料，请耐心等待，核验通过即注册完成"
	case status.Completed:
		if r.TicketNumber != nil {
			return "注册完成，您的准考证号为 " + *r.TicketNumber
		}
		return "注册完成"
	case status.Expired:
		return "现场确认时间已过，本次注册已失效，请在以后的注册期重新注册"
	case status.Withdrawn:
		return "您已撤销本次注册"
	case status.Annulled:
		s := "本次注册已被考试机构作废"
		if r.AnnulmentReason != nil {
			s += "，原因：" + *r.AnnulmentReason
		}
		return fmt.Sprintf("%s。请联系考区办公室：%s%s自考办（%s）", s, area.City, area.Name, area.OfficeAddress)
	}
	return ""
}

// oneView is the view of one registration.
func (s *Server) oneView(c *gin.Context, r registrations.Registration) (view, error) {
	vs, err := s.views(c, []registrations.Registration{r})
	if err != nil {
		return view{}, err
	}
	return vs[0], nil
}

// viewOfParam reads the registration of the request's :id that the
// signed-in account may see, with its view, for a page; it reports false
// when it has answered with an error instead.
func (s *Server) viewOfParam(c *gin.Context) (registrations.Registration, view, bool) {
	r, err := s.Registering.Get(c.Request.Context(), account(c), c.Param("id"))
	if err != nil {
		failErr(c, err)
		return r, view{}, false
	}
	v, err := s.oneView(c, r)
	if err != nil {
		failErr(c, err)
		return r, view{}, false
	}
	return r, v, true
}

// answer answers with the view of a registration, or with err.
func (s *Server) answer(c *gin.Context, code int, r registrations.Registration, err error) {
	if err != nil {
		failErr(c, err)
		return
	}
	v, err := s.oneView(c, r)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(code, v)
}

// answerList answers with the views of registrations under key, or with err.
func (s *Server) answerList(c *gin.Context, key string, regs []registrations.Registration, err error) {
	if err != nil {
		failErr(c, err)
		return
	}
	vs, err := s.views(c, regs)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{key: vs})
}
