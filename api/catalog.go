package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"zikao/internal/catalog"
)

func (s *Server) securityQuestions(c *gin.Context) {
	qs, err := s.Catalog.SecurityQuestions(c)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"questions": qs})
}

func (s *Server) examAreas(c *gin.Context) {
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"exam_areas": areas})
}

func (s *Server) majors(c *gin.Context) {
	level := c.Query("level")
	if level != "" && level != catalog.LevelZhuanke && level != catalog.LevelZhuanshengben {
		invalid(c, map[string]string{"level": "层次须为专科（zhuanke）或本科(专升本)（zhuanshengben） / level must be zhuanke or zhuanshengben"})
		return
	}
	majors, err := s.Catalog.Majors(c, level)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"majors": majors})
}
