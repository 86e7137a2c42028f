package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// fileAccesses lists the newest fetches of files by staff, of one
// registration when registration_id is given (GET /admin/file-access).
func (s *Server) fileAccesses(c *gin.Context) {
	out, err := s.Registering.FileAccesses(c, account(c), c.Query("registration_id"), queryLimit(c))
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"accesses": out})
}
