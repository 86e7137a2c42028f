package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/catalog"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// Online identity verification (网上验证) in the pages (pages.md, version
// 1.2): the applicant's page /me/online (the digits to read aloud and the
// three files), the request for the office's manual check (申请人工核验) on
// "my registration", and the reviewers' identity review with the files of
// the last try shown in the page. Each action makes the registration
// service's call that the JSON handlers of online.go make: OnlineChallenge,
// VerifyOnline, RequestIdentityReview, IdentityReview, OnlineFile.

// onlineResults are the results of a failed try, in plain Chinese.
var onlineResults = map[string]string{
	workflows.ResultFaceMismatch:   "人脸比对不一致",
	workflows.ResultLivenessFailed: "朗读视频未通过活体检测",
	workflows.ResultNotInRecords:   "公民身份信息库中无您的记录，请到考区现场确认",
}

// onlineResult is a try's result in Chinese ("" for none, or a match).
func onlineResult(result *string) string {
	if result == nil {
		return ""
	}
	return onlineResults[*result]
}

// onlineData is what the online verification page shows.
type onlineData struct {
	View         view
	Challenge    *registrations.Challenge // the digits to read; nil when no try can be made now
	CanAskReview bool                     // three tries failed: 申请人工核验 on "my registration"
	Closed       bool                     // online verification is closed for this registration
	Limits       onlineLimits
}

// onlineLimits are the rules of a try's files, for the page's script to
// check a file before it is sent (the service checks again).
type onlineLimits struct {
	IDCardPhoto, Video, Portrait, PortraitWidth, PortraitHeight int
}

var tryLimits = onlineLimits{IDCardPhoto: registering.MaxIDCardPhoto, Video: registering.MaxVideo,
	Portrait: registering.MaxPortrait, PortraitWidth: registering.PortraitWidth, PortraitHeight: registering.PortraitHeight}

// onlinePage makes a fresh challenge (OnlineChallenge: the previous one is
// void) and shows its digits with the form of a try.
func (s *Server) onlinePage(c *gin.Context) {
	s.renderOnline(c, page{Form: url.Values{}}, nil, nil)
}

// renderOnline shows the online verification page of the applicant's
// registration (r, or the newest when nil) with p's messages, and the
// challenge ch, or a new one when ch is nil and online verification is
// available. When the service refuses a challenge (not pre-registered,
// closed, window ended) the page says why, without the form.
func (s *Server) renderOnline(c *gin.Context, p page, r *registrations.Registration, ch *registrations.Challenge) {
	if r == nil {
		var err error
		if r, err = s.myRegistration(c); err != nil {
			failErr(c, err)
			return
		}
		if r == nil {
			notPre := problems[workflows.ErrNotPreRegistered]
			s.renderMine(c, page{Status: notPre.status, Error: notPre.Message})
			return
		}
	}
	if ch == nil && (p.Error == "" || registering.Open(*r, status.StepOnlineTry, time.Now())) {
		got, err := s.Registering.OnlineChallenge(c.Request.Context(), account(c), r.ID)
		if err == nil {
			ch = &got
		} else if p.Error == "" {
			p = s.refused(c, err, p)
		}
	}
	v, err := s.oneView(c, *r)
	if err != nil {
		failErr(c, err)
		return
	}
	who, now := account(c), time.Now()
	p.Data = onlineData{View: v, Challenge: ch, CanAskReview: registering.May(who, *r, status.StepAskIdentityReview, now),
		Closed: registering.OnlineClosed(*r, now), Limits: tryLimits}
	s.render(c, "online", p)
}

var fourDigits = regexp.MustCompile(`^[0-9]{4}$`)

// onlinePost takes a try (VerifyOnline) with the challenge and the three
// files. A match completes the registration: "my registration" shows the
// ticket number. A failed try shows the page again with the result, the
// tries left and new digits. A refused try (a file breaking its rule, the
// service unavailable: no try used) shows the same digits again when the
// challenge stays usable.
func (s *Server) onlinePost(c *gin.Context) {
	form, err := readMultipart(c)
	var refused *registering.Refusal
	if errors.As(err, &refused) && refused.Code == registering.CodeFileTooLarge {
		s.renderOnline(c, page{Status: errOnlineTooLarge.status, Error: errOnlineTooLarge.Message, Form: url.Values{}}, nil, nil)
		return
	}
	var r registrations.Registration
	if err == nil {
		r, err = s.Registering.Mine(c.Request.Context(), account(c))
	}
	if err == nil {
		in, closeAll, ok := openTryFiles(c, form.Get("challenge_id"))
		if !ok {
			return
		}
		defer closeAll()
		r, err = s.Registering.VerifyOnline(c.Request.Context(), account(c), r.ID, formKey(form), in)
	}
	if err != nil {
		p := s.refused(c, err, page{Form: form})
		var ch *registrations.Challenge
		// The challenge stays usable after a refusal that used no try,
		// unless it was the challenge that was refused.
		if id, digits := form.Get("challenge_id"), form.Get("digits"); id != "" && fourDigits.MatchString(digits) &&
			p.Err("challenge_id") == "" && (p.Status == http.StatusUnprocessableEntity || p.Status == http.StatusServiceUnavailable) {
			ch = &registrations.Challenge{ID: id, Digits: digits}
		}
		s.renderOnline(c, p, nil, ch)
		return
	}
	switch r.Status {
	case status.Completed:
		seeOther(c, "/me?done=online")
		return
	case status.PreRegistered:
	default:
		seeOther(c, "/me")
		return
	}
	s.renderOnline(c, page{Error: failedTry(r), Form: url.Values{}}, &r, nil)
}

// failedTry tells the applicant, after a failed try, what failed and what
// is left.
func failedTry(r registrations.Registration) string {
	msg := "验证未通过：" + onlineResult(r.OnlineLastResult) + "。"
	switch {
	case r.OnlineLastResult != nil && *r.OnlineLastResult == workflows.ResultNotInRecords:
		msg += "网上验证已关闭。"
	case r.OnlineTriesLeft <= 0:
		msg += "三次网上验证均未通过，网上验证已关闭；您可以在“我的注册”中申请人工核验，或到考区现场确认。"
	default:
		msg += fmt.Sprintf("剩余 %d 次，请按下面新的朗读数字重新录制视频后再次提交。", r.OnlineTriesLeft)
	}
	return msg
}

// identityRequestPost asks for the office's manual check (RequestIdentityReview).
func (s *Server) identityRequestPost(c *gin.Context) {
	form, err := readForm(c)
	var r registrations.Registration
	if err == nil {
		r, err = s.Registering.Mine(c.Request.Context(), account(c))
	}
	if err == nil {
		_, err = s.Registering.RequestIdentityReview(c.Request.Context(), account(c), r.ID, formKey(form))
	}
	if err != nil {
		s.renderMine(c, s.refused(c, err, page{}))
		return
	}
	seeOther(c, "/me?done=identity")
}

// identityData is what the identity review page shows.
type identityData struct {
	View    view
	Area    catalog.ExamArea
	Waiting bool // in identity_review: the files and the decision are shown
}

func (s *Server) identityPage(c *gin.Context) {
	s.renderIdentity(c, page{Form: url.Values{}})
}

// renderIdentity shows a manual check to a reviewer in scope, with p's
// messages: the registration's name, ID number and exam area beside the ID
// card photo, the video and the portrait of the last try.
func (s *Server) renderIdentity(c *gin.Context, p page) {
	r, v, ok := s.viewOfParam(c)
	if !ok {
		return
	}
	area, err := s.Catalog.ExamArea(c, r.ExamAreaCode, r.Year, r.Sitting)
	if err != nil {
		failErr(c, err)
		return
	}
	p.Data = identityData{View: v, Area: area, Waiting: registering.May(account(c), r, status.StepIdentityReview, time.Now())}
	s.render(c, "identity", p)
}

// identityPost applies the office's manual check (IdentityReview):
// approved, or refused with a reason.
func (s *Server) identityPost(approved bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		form, err := readForm(c)
		if err == nil {
			d := registering.Decision{Approved: &approved, Reason: form.Get("reason")}
			_, err = s.Registering.IdentityReview(c.Request.Context(), account(c), c.Param("id"), formKey(form), d)
		}
		if err != nil {
			s.renderIdentity(c, s.refused(c, err, page{Form: form}))
			return
		}
		seeOther(c, "/reviews?stage="+registering.StageIdentity+"&done=identity")
	}
}
