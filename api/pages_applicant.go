package api

import "github.com/gin-gonic/gin"

// applicantPages registers the applicant's pages (my registration, new and
// enrolled registration, report upload, withdrawal).
func (s *Server) applicantPages(g *gin.RouterGroup) {}
