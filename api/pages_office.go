package api

import (
	"net/url"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/registering"
)

// The exam offices' pages beside the review (issue 9): 作废 on the review
// page, and the reviewers' search by ID number. Who may annul and what a
// reviewer may find are the registration service's rules (Annul,
// FindByIDNumber), as for the JSON API.

// annulPost annuls the registration (Annul) with the reason typed under
// 作废原因 ("annul_reason": the review page's 不通过原因 is "reason").
func (s *Server) annulPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		_, err = s.Registering.Annul(c.Request.Context(), account(c), c.Param("id"), formKey(form), form.Get("annul_reason"))
	}
	if err != nil {
		s.renderReview(c, s.refusedAs(c, err, form, "annul_reason"))
		return
	}
	seeOther(c, "/reviews/"+url.PathEscape(c.Param("id"))+"?done=annulled")
}

// areaPost moves the registration to another exam area (ChangeExamArea)
// with the reason typed under 变更原因 ("area_reason").
func (s *Server) areaPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		_, err = s.Registering.ChangeExamArea(c.Request.Context(), account(c), c.Param("id"), formKey(form),
			registering.AreaChange{ExamAreaCode: form.Get("exam_area_code"), Reason: form.Get("area_reason")})
	}
	if err != nil {
		s.renderReview(c, s.refusedAs(c, err, form, "area_reason"))
		return
	}
	if account(c).Role == accounts.RoleCountyReviewer {
		seeOther(c, "/reviews?done=area") // the registration is the new area's office's now
		return
	}
	seeOther(c, "/reviews/"+url.PathEscape(c.Param("id"))+"?done=area")
}

// refusedAs is the review page of a refused form whose reason field is
// named reasonField (the review page's 不通过原因 is "reason").
func (s *Server) refusedAs(c *gin.Context, err error, form url.Values, reasonField string) page {
	p := s.refused(c, err, page{Form: form})
	if msg, ok := p.Fields["reason"]; ok {
		delete(p.Fields, "reason")
		p.Fields[reasonField] = msg
	}
	return p
}

// searchData is what the search page shows.
type searchData struct {
	Asked bool   // an ID number was looked up
	Rows  []view // newest first
	Scope string // where the search looks, in Chinese
}

// searchPage finds the registrations of an ID number within the reviewer's
// scope (FindByIDNumber), newest first. It runs behind limitProbes like the
// JSON search: finding nothing counts as a miss.
func (s *Server) searchPage(c *gin.Context) {
	who := account(c)
	form := url.Values{"id_number": {c.Query("id_number")}}
	d := searchData{Scope: "全省"}
	if who.Role == accounts.RoleCountyReviewer {
		d.Scope = "本考区（" + who.Area() + "）"
	}
	p := page{Form: form, Data: d}
	if !lookupAsked(c) {
		s.render(c, "search", p)
		return
	}
	err := pageRefused(c)
	if err == nil {
		regs, ferr := s.Registering.FindByIDNumber(c.Request.Context(), who, form.Get("id_number"))
		if err = ferr; err == nil {
			if len(regs) == 0 {
				probeMissed(c)
			}
			if d.Rows, err = s.views(c, regs); err != nil {
				failErr(c, err)
				return
			}
		}
	}
	if err != nil {
		s.render(c, "search", s.refused(c, err, p))
		return
	}
	d.Asked = true
	p.Data = d
	s.render(c, "search", p)
}

// lookupAsked reports whether a look-up page was asked to find an ID number:
// by the person at the page, not by a link on another site (a cross-site
// navigation carries the cookie, and its misses would lock the person's
// look-ups: limitProbes).
func lookupAsked(c *gin.Context) bool {
	_, asked := c.GetQuery("id_number")
	site := c.GetHeader("Sec-Fetch-Site")
	return asked && site != "cross-site" && site != "same-site"
}
