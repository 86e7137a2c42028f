package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"zikao/internal/registering"
)

// reviews lists the registrations waiting at a review stage, oldest first,
// within the reviewer's scope.
func (s *Server) reviews(c *gin.Context) {
	regs, err := s.Registering.Inbox(c.Request.Context(), account(c), c.Query("stage"))
	s.answerList(c, "reviews", regs, err)
}

func (s *Server) review(c *gin.Context, stage string) {
	var in registering.Decision
	if !bindJSON(c, &in) {
		return
	}
	r, err := s.Registering.Review(c.Request.Context(), account(c), c.Param("id"), idempotencyKey(c), stage, in)
	s.answer(c, http.StatusOK, r, err)
}

func (s *Server) countyReview(c *gin.Context) { s.review(c, registering.StageCounty) }

func (s *Server) provincialReview(c *gin.Context) { s.review(c, registering.StageProvincial) }

// onsiteLookup finds the pre-registered registrations of an ID number in the
// operator's exam area.
func (s *Server) onsiteLookup(c *gin.Context) {
	regs, err := s.Registering.AwaitingOnsite(c.Request.Context(), account(c), c.Query("id_number"))
	s.answerList(c, "registrations", regs, err)
}

// onsiteCheck is the on-site confirmation (现场确认): the ID card read, the
// name and the photo.
func (s *Server) onsiteCheck(c *gin.Context) {
	if !parseMultipart(c) {
		return
	}
	photo, ok := formFile(c, "photo")
	if !ok {
		return
	}
	if photo != nil {
		defer photo.Close()
	}
	in := registering.Onsite{IDCardNumber: c.PostForm("id_card_number"), Name: c.PostForm("name"), Photo: photo}
	r, err := s.Registering.OnsiteCheck(c.Request.Context(), account(c), c.Param("id"), idempotencyKey(c), in)
	s.answer(c, http.StatusOK, r, err)
}
