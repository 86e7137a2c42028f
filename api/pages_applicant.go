package api

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/enrolled"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// applicantPages registers the applicant's pages: my registration, 新生注册,
// 在籍注册, the report upload, the withdrawal, and online verification
// (网上验证) with the request for the manual check (pages_online.go).
// Submissions and enrolment look-ups pass limitProbes, as in the JSON API.
func (s *Server) applicantPages(g *gin.RouterGroup) {
	g.GET("/me", s.minePage)
	g.POST("/me/withdraw", s.withdrawPost)
	g.GET("/me/new", s.newPage)
	g.POST("/me/new", s.limitProbes, s.newPost)
	g.GET("/me/enrolled", s.enrolledPage)
	g.POST("/me/enrolled/verify", s.limitProbes, s.verifyPost)
	g.POST("/me/enrolled", s.limitProbes, s.enrolledPost)
	g.GET("/me/report", s.reportPage)
	g.POST("/me/report", s.reportPost)
	g.GET(onlinePagePath, s.onlinePage)  // pages_online.go
	g.POST(onlinePagePath, s.onlinePost) // onlinePagePath: the body limit of a try (limitBody)
	g.POST("/me/identity-review-request", s.identityRequestPost)
	s.applicantPhonePages(g) // pages_phones.go: 绑定手机
}

// mineData is what the page "my registration" shows.
type mineData struct {
	View      *view // nil when the applicant has none
	Open      bool  // not ended: may be withdrawn
	Upload    bool  // a report is awaited
	CanStart  bool  // no registration is open: 新生注册 and 在籍注册 are offered
	Completed bool
	Area      catalog.ExamArea // the registration's exam area
	// Online verification (网上验证), while pre-registered.
	OnlineResult string // the last failed try's result, in Chinese ("" for none)
	CanAskReview bool   // three tries failed: 申请人工核验
	// The ticket numbers held (我的准考证号): every completed registration's.
	Tickets []accounts.Ticket
	Phone   string // the bound phone, masked ("" for none)
}

// myRegistration loads the applicant's newest registration (nil when there is none).
func (s *Server) myRegistration(c *gin.Context) (*registrations.Registration, error) {
	r, err := s.Registering.Mine(c.Request.Context(), account(c))
	var refused *registering.Refusal
	if errors.As(err, &refused) && refused.Code == registering.CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

var mineNotices = map[string]string{
	"submitted": "注册信息已提交",
	"report":    "学历认证报告已上传，请等待审核",
	"withdrawn": "本次注册已撤销",
	"online":    "网上验证通过，注册完成",
	"identity":  "已申请人工核验，请等待考区办公室核验您网上验证的材料",
}

func (s *Server) minePage(c *gin.Context) {
	s.renderMine(c, page{Notice: mineNotices[c.Query("done")]})
}

// renderMine shows "my registration", with p's messages.
func (s *Server) renderMine(c *gin.Context, p page) {
	r, err := s.myRegistration(c)
	if err != nil {
		failErr(c, err)
		return
	}
	tickets, err := s.Accounts.Tickets(c, account(c).ID)
	if err != nil {
		failErr(c, err)
		return
	}
	d := mineData{CanStart: true}
	if r != nil {
		v, err := s.oneView(c, *r)
		if err != nil {
			failErr(c, err)
			return
		}
		who, now := account(c), time.Now()
		d = mineData{View: &v, Open: registering.May(who, *r, status.StepWithdraw, now), Upload: registering.May(who, *r, status.StepUploadReport, now),
			CanStart: status.Released(r.Status), Completed: r.Status == status.Completed}
		if d.Area, err = s.Catalog.ExamArea(c, r.ExamAreaCode, r.Year, r.Sitting); err != nil {
			failErr(c, err)
			return
		}
		if r.Status == status.PreRegistered {
			if r.IdentityReviewReason == nil { // after the manual check, its reason says more
				d.OnlineResult = onlineResult(v.Online.LastResult)
			}
			d.CanAskReview = registering.May(who, *r, status.StepAskIdentityReview, now)
		}
	}
	d.Tickets = tickets
	if a := account(c); a.Phone != nil {
		d.Phone = maskPhone(*a.Phone)
	}
	p.Data = d
	s.render(c, "mine", p)
}

func (s *Server) withdrawPost(c *gin.Context) {
	form, err := readForm(c)
	var r registrations.Registration
	if err == nil {
		r, err = s.Registering.Mine(c.Request.Context(), account(c))
	}
	if err == nil {
		_, err = s.Registering.Withdraw(c.Request.Context(), account(c), r.ID, formKey(form))
	}
	if err != nil {
		s.renderMine(c, s.refused(c, err, page{}))
		return
	}
	seeOther(c, "/me?done=withdrawn")
}

// newData is the reference data of the form 新生注册.
type newData struct {
	Levels []levelMajors
	Areas  []catalog.ExamArea
}

type levelMajors struct {
	Level, Label string
	Majors       []catalog.Major
}

func (s *Server) newData(c *gin.Context) (newData, error) {
	majors, err := s.Catalog.Majors(c, "")
	if err != nil {
		return newData{}, err
	}
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		return newData{}, err
	}
	d := newData{Areas: areas}
	for _, level := range []string{catalog.LevelZhuanke, catalog.LevelZhuanshengben} {
		lm := levelMajors{Level: level, Label: catalog.LevelLabel(level)}
		for _, m := range majors {
			if m.Level == level {
				lm.Majors = append(lm.Majors, m)
			}
		}
		d.Levels = append(d.Levels, lm)
	}
	return d, nil
}

func (s *Server) newPage(c *gin.Context) {
	d, err := s.newData(c)
	if err != nil {
		failErr(c, err)
		return
	}
	s.render(c, "new", page{Data: d, Form: url.Values{}})
}

func (s *Server) newPost(c *gin.Context) {
	d, err := s.newData(c)
	if err != nil {
		failErr(c, err)
		return
	}
	form, err := readForm(c)
	if err == nil {
		err = pageRefused(c)
	}
	if err == nil {
		agreed := form.Get("agree_terms") != ""
		in := registering.Submission{Kind: workflows.KindNew, AgreeTerms: &agreed,
			Personal: registering.Personal{Name: form.Get("personal.name"), IDNumber: form.Get("personal.id_number"),
				Gender: form.Get("personal.gender"), BirthDate: form.Get("personal.birth_date"),
				Ethnicity: form.Get("personal.ethnicity"), Phone: form.Get("personal.phone"), Address: form.Get("personal.address")},
			Application: registering.Application{MajorType: "social", Level: form.Get("application.level"),
				MajorCode: form.Get("application.major_code"), ExamAreaCode: form.Get("application.exam_area_code"),
				PriorSchool: form.Get("application.prior_school"), PriorDiplomaNumber: form.Get("application.prior_diploma_number")}}
		_, err = s.Registering.Submit(c.Request.Context(), account(c), in, formKey(form))
	}
	if err != nil {
		s.render(c, "new", s.refused(c, err, page{Form: form, Data: d}))
		return
	}
	seeOther(c, "/me?done=submitted")
}

// enrolledData is what the form 在籍注册 shows: the records found once the
// applicant is verified.
type enrolledData struct {
	Records []enrolled.Record
	Areas   map[string]catalog.ExamArea
}

func (s *Server) enrolledData(c *gin.Context, records []enrolled.Record) (enrolledData, error) {
	d := enrolledData{Records: records, Areas: map[string]catalog.ExamArea{}}
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	for _, a := range areas {
		d.Areas[a.Code] = a
	}
	return d, err
}

func (s *Server) enrolledPage(c *gin.Context) {
	s.render(c, "enrolled", page{Data: enrolledData{}, Form: url.Values{}})
}

// verifyPost checks name, ID number and an old ticket number, and lists the
// person's records (LookupEnrolment).
func (s *Server) verifyPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		err = pageRefused(c)
	}
	var records []enrolled.Record
	if err == nil {
		records, err = s.Registering.LookupEnrolment(c.Request.Context(), form.Get("name"), form.Get("id_number"), form.Get("ticket_number"))
	}
	d, derr := s.enrolledData(c, records)
	if derr != nil {
		failErr(c, derr)
		return
	}
	if err != nil {
		s.render(c, "enrolled", s.refused(c, err, page{Form: form, Data: d}))
		return
	}
	s.render(c, "enrolled", page{Form: form, Data: d})
}

func (s *Server) enrolledPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		err = pageRefused(c)
	}
	if err == nil {
		agreed := form.Get("agree_terms") != ""
		in := registering.Submission{Kind: workflows.KindEnrolled, AgreeTerms: &agreed,
			Name: form.Get("name"), IDNumber: form.Get("id_number"),
			VerifyTicketNumber: form.Get("ticket_number"), SelectedTicketNumber: form.Get("selected_ticket_number"),
			Personal: registering.Personal{Phone: form.Get("personal.phone"), Address: form.Get("personal.address")}}
		_, err = s.Registering.Submit(c.Request.Context(), account(c), in, formKey(form))
	}
	if err == nil {
		seeOther(c, "/me?done=submitted")
		return
	}
	p := s.refused(c, err, page{Form: form})
	if msg, ok := p.Fields["verify_ticket_number"]; ok {
		p.Fields["ticket_number"] = msg
	}
	// The records again, to choose from (nothing when the verification itself failed).
	var records []enrolled.Record
	if !p.hasAny("name", "id_number", "ticket_number") && p.Status != http.StatusTooManyRequests {
		var lerr error
		records, lerr = s.Registering.LookupEnrolment(c.Request.Context(), form.Get("name"), form.Get("id_number"), form.Get("ticket_number"))
		if lerr != nil {
			probeMissed(c) // a wrong guess counts here as on 验证, whatever else the form lacked
		}
	}
	d, derr := s.enrolledData(c, records)
	if derr != nil {
		failErr(c, derr)
		return
	}
	p.Data = d
	s.render(c, "enrolled", p)
}

// hasAny reports whether any of the fields has a message.
func (p page) hasAny(fields ...string) bool {
	for _, f := range fields {
		if p.Fields[f] != "" {
			return true
		}
	}
	return false
}

func (s *Server) reportPage(c *gin.Context) {
	s.renderReport(c, page{Form: url.Values{}})
}

// renderReport shows the report upload with p's messages, or "my
// registration" when no report is awaited.
func (s *Server) renderReport(c *gin.Context, p page) {
	r, err := s.myRegistration(c)
	if err != nil {
		failErr(c, err)
		return
	}
	if r == nil || r.Status != status.AwaitingReport {
		if p.Error == "" {
			p.Error = problems[workflows.ErrNotAwaitingReport].Message
			p.Status = http.StatusConflict
		}
		s.renderMine(c, p)
		return
	}
	v, err := s.oneView(c, *r)
	if err != nil {
		failErr(c, err)
		return
	}
	p.Data = v
	s.render(c, "report", p)
}

func (s *Server) reportPost(c *gin.Context) {
	form, err := readMultipart(c)
	var r registrations.Registration
	if err == nil {
		r, err = s.Registering.Mine(c.Request.Context(), account(c))
	}
	if err == nil {
		file, ok := formFile(c, "file")
		if !ok {
			return
		}
		if file != nil {
			defer file.Close()
		}
		rep := registering.Report{File: file, VerificationCode: form.Get("verification_code"),
			ReportNumber: form.Get("report_number"), CertificateNumber: form.Get("certificate_number")}
		_, err = s.Registering.UploadReport(c.Request.Context(), account(c), r.ID, formKey(form), rep)
	}
	if err != nil {
		s.renderReport(c, s.refused(c, err, page{Form: form}))
		return
	}
	seeOther(c, "/me?done=report")
}
