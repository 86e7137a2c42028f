package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/files"
	"zikao/internal/status"
	"zikao/workflows"
)

// reviews lists the registrations waiting at a review stage, oldest first,
// within the reviewer's scope: a county reviewer sees the county stage of
// one exam area, a provincial reviewer either stage of every area.
func (s *Server) reviews(c *gin.Context) {
	a := account(c)
	stage := c.Query("stage")
	if stage == "" {
		stage = map[string]string{accounts.RoleCountyReviewer: "county", accounts.RoleProvincialReviewer: "provincial"}[a.Role]
	}
	st := map[string]string{"county": status.CountyReview, "provincial": status.ProvincialReview}[stage]
	if st == "" {
		invalid(c, fieldErrors{"stage": "审核环节须为区考办（county）或省考办（provincial） / stage must be county or provincial"})
		return
	}
	if a.Role == accounts.RoleCountyReviewer && stage != "county" {
		fail(c, errForbidden)
		return
	}
	regs, err := s.Registrations.Waiting(c, st, a.Area(), 200)
	if err != nil {
		failErr(c, err)
		return
	}
	s.respondList(c, "reviews", regs)
}

type reviewIn struct {
	Approved *bool  `json:"approved"`
	Reason   string `json:"reason"`
}

func (s *Server) review(c *gin.Context, update string) {
	r, updateID, ok := s.decision(c, update, http.StatusOK)
	if !ok {
		return
	}
	var in reviewIn
	if !bindJSON(c, &in) {
		return
	}
	f := fieldErrors{}
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Approved == nil {
		f.add("approved", "请填写审核结论", "approved is required")
	} else if !*in.Approved {
		f.required("reason", in.Reason, "不通过的原因", "a reason for the rejection")
	}
	f.maxLen("reason", in.Reason, 500)
	if len(f) > 0 {
		invalid(c, f)
		return
	}
	s.decide(c, r, updateID, workflows.Review{Approved: *in.Approved, Reason: in.Reason}, http.StatusOK)
}

func (s *Server) countyReview(c *gin.Context) { s.review(c, workflows.UpdateCountyReview) }

func (s *Server) provincialReview(c *gin.Context) { s.review(c, workflows.UpdateProvincialReview) }

// onsiteLookup finds the pre-registered registrations of an ID number in the
// operator's exam area.
func (s *Server) onsiteLookup(c *gin.Context) {
	f := fieldErrors{}
	id := f.idNumber("id_number", c.Query("id_number"))
	if len(f) > 0 {
		invalid(c, f)
		return
	}
	regs, err := s.Registrations.PreRegistered(c, account(c).Area(), id.String())
	if err != nil {
		failErr(c, err)
		return
	}
	s.respondList(c, "registrations", regs)
}

// onsiteCheck is the on-site confirmation (现场确认): the ID card read must
// match the registration, the photo is stored, and the workflow completes
// the registration with its admission ticket number.
func (s *Server) onsiteCheck(c *gin.Context) {
	r, updateID, ok := s.decision(c, workflows.UpdateOnsiteCheck, http.StatusOK)
	if !ok || !parseMultipart(c) {
		return
	}
	f := fieldErrors{}
	id := f.idNumber("id_card_number", c.PostForm("id_card_number"))
	name := f.name("name", c.PostForm("name"))
	if len(f) > 0 {
		invalid(c, f)
		return
	}
	if r.Status != status.PreRegistered {
		fail(c, errNotPreRegistered)
		return
	}
	if id.String() != r.IDNumber || name != r.Name {
		p := errIdentityMismatch
		if id.String() != r.IDNumber {
			p.Message, p.MessageEN = "身份证号与注册信息不符", "the ID number on the card is not the registration's"
		} else {
			p.Message, p.MessageEN = "姓名与注册信息不符", "the name on the card is not the registration's"
		}
		fail(c, p)
		return
	}
	photoID, ok := s.storeUpload(c, "photo", f, files.JPEG)
	if !ok {
		return
	}
	s.decide(c, r, updateID, workflows.OnsiteCheck{PhotoFileID: photoID}, http.StatusOK)
}
