package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"zikao/internal/registering"
)

// fileAccessLimit bounds the accesses listed at once (default and most).
const fileAccessLimit, fileAccessMax = 100, 500

// fileAccesses lists the newest fetches of files by staff, of one
// registration when registration_id is given (GET /admin/file-access).
func (s *Server) fileAccesses(c *gin.Context) {
	limit := queryLimit(c)
	switch {
	case limit == 0:
		limit = fileAccessLimit
	case limit < 0 || limit > fileAccessMax:
		invalid(c, registering.Fields{"limit": "须为 1 至 500 / must be 1 to 500"})
		return
	}
	out, err := s.Registering.FileAccesses(c, account(c), c.Query("registration_id"), limit)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"accesses": out})
}
