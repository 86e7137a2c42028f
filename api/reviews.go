package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"zikao/internal/registering"
)

// reviews lists a page of the registrations waiting at a review stage,
// oldest first, within the reviewer's scope.
func (s *Server) reviews(c *gin.Context) {
	q := registering.InboxQuery{Stage: c.Query("stage"), Area: c.Query("exam_area"), Limit: queryLimit(c), After: c.Query("after")}
	page, err := s.Registering.Inbox(c.Request.Context(), account(c), q)
	if err != nil {
		failErr(c, err)
		return
	}
	vs, err := s.inboxViews(c, page)
	if err != nil {
		failErr(c, err)
		return
	}
	var next *string
	if page.Next != "" {
		next = &page.Next
	}
	c.JSON(http.StatusOK, gin.H{"reviews": vs, "total": page.Total, "next": next})
}

// inboxViews are the views of an inbox page's registrations, each with the
// time it entered the stage and whether it is overdue.
func (s *Server) inboxViews(c *gin.Context, page registering.InboxPage) ([]view, error) {
	vs, err := s.views(c, page.Items)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i].WaitingSince, vs[i].Overdue = &page.Items[i].StageSince, &page.Items[i].Overdue
	}
	return vs, nil
}

// queryLimit reads the limit parameter: 0 when absent (the default), -1
// when it is not a whole number above 0 (the service refuses it).
func queryLimit(c *gin.Context) int {
	v, ok := c.GetQuery("limit")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return -1
	}
	return n
}

// overdueReviews counts the overdue reviews per exam area and stage.
func (s *Server) overdueReviews(c *gin.Context) {
	areas, err := s.Registering.OverdueReviews(c.Request.Context(), account(c))
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"areas": areas})
}

// findByIDNumber lists the registrations of an ID number in the staff
// member's scope, newest first. An empty list counts as a miss for
// limitProbes, like an enrolment look-up that finds nothing.
func (s *Server) findByIDNumber(c *gin.Context) {
	regs, err := s.Registering.FindByIDNumber(c.Request.Context(), account(c), c.Query("id_number"))
	if err == nil && len(regs) == 0 {
		probeMissed(c)
	}
	s.answerList(c, "registrations", regs, err)
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
