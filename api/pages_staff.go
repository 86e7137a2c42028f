package api

import (
	"fmt"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/registering"
	"zikao/internal/status"
)

// staffPages registers the reviewers' pages (inbox, one review, the report
// shown in the page, the manual identity check) and the on-site operators'
// (look-up, confirmation).
func (s *Server) staffPages(in *gin.RouterGroup) {
	rev := in.Group("", allow(accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer))
	rev.GET("/reviews", s.inboxPage)
	rev.GET("/reviews/:id", s.reviewPage)
	rev.GET("/reviews/:id/report", s.reportInline)
	rev.POST("/reviews/:id/approve", s.reviewPost(true))
	rev.POST("/reviews/:id/reject", s.reviewPost(false))
	rev.POST("/reviews/:id/annul", s.annulPost)      // pages_office.go
	rev.POST("/reviews/:id/exam-area", s.areaPost)   // pages_office.go
	rev.GET("/reviews/:id/identity", s.identityPage) // the manual check (人工核验): pages_online.go
	rev.GET("/reviews/:id/identity/:file", s.onlineFile)
	rev.POST("/reviews/:id/identity/approve", s.identityPost(true))
	rev.POST("/reviews/:id/identity/reject", s.identityPost(false))
	rev.GET("/search", s.limitProbes, s.searchPage) // pages_office.go

	on := in.Group("", allow(accounts.RoleOnsiteOperator))
	on.GET("/onsite", s.lookupPage)
	on.GET("/onsite/:id", s.confirmPage)
	on.POST("/onsite/:id", s.confirmPost)
}

// A row of the inbox: the registration and how long it has waited.
// (WaitingSince and Overdue are the view's, as values for the template.)
type inboxRow struct {
	view
	WaitingSince time.Time
	Waited       string
	Overdue      bool
}

type inboxData struct {
	Rows  []inboxRow
	Total int
	Next  string // the cursor of the next page ("" on the last)
	Paged bool   // this is not the first page
	Stage string // the stage's name, in Chinese
	// StageCode is the stage asked for (?stage=: "identity" for the manual
	// identity checks), "" for the reviewer's own report review.
	StageCode string
	Area      string             // the exam area filter (provincial reviewers)
	Areas     []catalog.ExamArea // the areas to filter by (provincial reviewers)
}

// inboxPageSize is the number of rows on one page of the inbox.
const inboxPageSize = 20

// inboxPage lists the registrations waiting for the reviewer, oldest first,
// a page at a time: the service's cursor travels as ?after=. ?stage= picks
// the stage as in the JSON API (stage=identity: the manual identity checks,
// 人工核验); without it, the reviewer's own report review.
func (s *Server) inboxPage(c *gin.Context) {
	who := account(c)
	q := registering.InboxQuery{Stage: c.Query("stage"), Area: c.Query("exam_area"), Limit: inboxPageSize, After: c.Query("after")}
	pg, err := s.Registering.Inbox(c.Request.Context(), who, q)
	if err != nil {
		failErr(c, err)
		return
	}
	vs, err := s.inboxViews(c, pg)
	if err != nil {
		failErr(c, err)
		return
	}
	d := inboxData{Total: pg.Total, Next: pg.Next, Paged: q.After != "", Area: q.Area, StageCode: q.Stage}
	now := time.Now()
	for _, v := range vs {
		d.Rows = append(d.Rows, inboxRow{view: v, WaitingSince: *v.WaitingSince, Waited: waited(now.Sub(*v.WaitingSince)), Overdue: *v.Overdue})
	}
	stage := q.Stage
	if stage == "" {
		stage = registering.ReviewStage(who.Role)
	}
	d.Stage = stageLabels[stage]
	if who.Role == accounts.RoleProvincialReviewer {
		if d.Areas, err = s.Catalog.ExamAreas(c, s.Year, s.Sitting); err != nil {
			failErr(c, err)
			return
		}
	}
	p := page{Data: d}
	switch c.Query("done") {
	case "":
	case "identity":
		p.Notice = "人工核验结果已提交"
	case "area":
		p.Notice = "考区已变更，已通知考生；该注册已转到新考区办理"
	default:
		p.Notice = "审核结果已提交"
	}
	s.render(c, "inbox", p)
}

// waited writes a waiting time in Chinese.
func waited(d time.Duration) string {
	d = max(d, 0)
	days, hours, minutes := int(d.Hours())/24, int(d.Hours())%24, int(d.Minutes())%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d天%d小时", days, hours)
	case hours > 0:
		return fmt.Sprintf("%d小时%d分钟", hours, minutes)
	}
	return fmt.Sprintf("%d分钟", minutes)
}

// reviewData is what the review page shows.
type reviewData struct {
	View        view
	ReportType  string // the report's content type ("" when none is on file)
	CanDecide   bool
	CanAnnul    bool               // open: the reviewer may annul it (作废) or change its exam area, if the service agrees
	Areas       []catalog.ExamArea // the areas it may move to (考区变更), with their windows
	StageLabel  string
	PriorSchool string
	PriorNumber string
}

func (s *Server) reviewPage(c *gin.Context) {
	p := page{Form: url.Values{}}
	switch c.Query("done") {
	case "annulled":
		p.Notice = "该注册已作废"
	case "area":
		p.Notice = "考区已变更，已通知考生"
	}
	s.renderReview(c, p)
}

// renderReview shows one registration to a reviewer, with p's messages.
func (s *Server) renderReview(c *gin.Context, p page) {
	who, now := account(c), time.Now()
	r, v, ok := s.viewOfParam(c)
	if !ok {
		return
	}
	d := reviewData{View: v, PriorSchool: r.PriorSchool, PriorNumber: r.PriorDiplomaNumber,
		CanDecide: registering.May(who, r, status.StepCountyReview, now) || registering.May(who, r, status.StepProvincialReview, now),
		CanAnnul:  registering.May(who, r, status.StepAnnul, now)}
	d.StageLabel = stageLabels[registering.ReviewStage(who.Role)]
	if d.CanAnnul {
		var err error
		if d.Areas, err = s.Catalog.ExamAreas(c, s.Year, s.Sitting); err != nil {
			failErr(c, err)
			return
		}
	}
	if r.ReportFileID != nil { // its type only: the page's frame or image fetches the file (reportInline)
		var err error
		if d.ReportType, err = s.Registering.Files.ContentType(c.Request.Context(), *r.ReportFileID); err != nil {
			failErr(c, err)
			return
		}
	}
	p.Data = d
	s.render(c, "review", p)
}

// stageLabels name the stages of review on the pages.
var stageLabels = map[string]string{
	registering.StageCounty:     "区考办审核",
	registering.StageProvincial: "省考办审核",
	registering.StageIdentity:   "人工核验",
}

// reportInline serves the report on file to be shown in the review page,
// after the same check as the JSON download.
func (s *Server) reportInline(c *gin.Context) { s.serveReport(c, "inline") }

// reviewPost applies the reviewer's decision (Review): approved, or
// rejected with a reason.
func (s *Server) reviewPost(approved bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		form, err := readForm(c)
		if err == nil {
			who := account(c)
			d := registering.Decision{Approved: &approved, Reason: form.Get("reason")}
			_, err = s.Registering.Review(c.Request.Context(), who, c.Param("id"), formKey(form), registering.ReviewStage(who.Role), d)
		}
		if err != nil {
			s.renderReview(c, s.refused(c, err, page{Form: form}))
			return
		}
		seeOther(c, "/reviews?done=1")
	}
}

// lookupPage finds the pre-registered registrations of an ID number in the
// operator's exam area (AwaitingOnsite).
func (s *Server) lookupPage(c *gin.Context) {
	form := url.Values{"id_number": {c.Query("id_number")}}
	p := page{Form: form}
	if lookupAsked(c) {
		regs, err := s.Registering.AwaitingOnsite(c.Request.Context(), account(c), form.Get("id_number"))
		if err != nil {
			s.render(c, "onsite", s.refused(c, err, p))
			return
		}
		vs, err := s.views(c, regs)
		if err != nil {
			failErr(c, err)
			return
		}
		if len(vs) == 0 {
			p.Error = "本考区没有该身份证号待现场确认的注册"
		}
		p.Data = vs
	}
	s.render(c, "onsite", p)
}

// confirmData is what the confirmation page shows.
type confirmData struct {
	View      view
	CanSubmit bool
	Completed bool
}

func (s *Server) confirmPage(c *gin.Context) {
	p := page{Form: url.Values{}}
	if c.Query("done") != "" {
		p.Notice = "现场确认完成"
	}
	s.renderConfirm(c, p)
}

func (s *Server) renderConfirm(c *gin.Context, p page) {
	r, v, ok := s.viewOfParam(c)
	if !ok {
		return
	}
	p.Data = confirmData{View: v, CanSubmit: registering.May(account(c), r, status.StepOnsiteCheck, time.Now()), Completed: r.Status == status.Completed}
	s.render(c, "confirm", p)
}

// confirmPost is the on-site confirmation (OnsiteCheck): the ID card read,
// the name and the photo.
func (s *Server) confirmPost(c *gin.Context) {
	form, err := readMultipart(c)
	if err == nil {
		photo, ok := formFile(c, "photo")
		if !ok {
			return
		}
		if photo != nil {
			defer photo.Close()
		}
		in := registering.Onsite{IDCardNumber: form.Get("id_card_number"), Name: form.Get("name"), Photo: photo}
		_, err = s.Registering.OnsiteCheck(c.Request.Context(), account(c), c.Param("id"), formKey(form), in)
	}
	if err != nil {
		s.renderConfirm(c, s.refused(c, err, page{Form: form}))
		return
	}
	seeOther(c, "/onsite/"+url.PathEscape(c.Param("id"))+"?done=1")
}
