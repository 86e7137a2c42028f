package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"zikao/internal/registering"
)

// annul ends an open registration by the exam office's decision (作废):
// POST /registrations/{id}/annul with {"reason": "…"}. Who may is the
// registration service's rule (county reviewer of the area, provincial
// reviewer).
func (s *Server) annul(c *gin.Context) {
	var in struct {
		Reason string `json:"reason"`
	}
	if !bindJSON(c, &in) {
		return
	}
	r, err := s.Registering.Annul(c.Request.Context(), account(c), c.Param("id"), idempotencyKey(c), in.Reason)
	s.answer(c, http.StatusOK, r, err)
}

// changeExamArea moves an open registration to another exam area (考区变更):
// POST /registrations/{id}/exam-area with {"exam_area_code", "reason"}.
// Who may is the registration service's rule (county reviewer of the
// current area, provincial reviewer).
func (s *Server) changeExamArea(c *gin.Context) {
	var in registering.AreaChange
	if !bindJSON(c, &in) {
		return
	}
	r, err := s.Registering.ChangeExamArea(c.Request.Context(), account(c), c.Param("id"), idempotencyKey(c), in)
	s.answer(c, http.StatusOK, r, err)
}
