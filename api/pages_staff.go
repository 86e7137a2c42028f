package api

import "github.com/gin-gonic/gin"

// staffPages registers the reviewers' and on-site operators' pages.
func (s *Server) staffPages(in *gin.RouterGroup) {}
