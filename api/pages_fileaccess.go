package api

import (
	"net/url"

	"github.com/gin-gonic/gin"

	"zikao/internal/files"
	"zikao/internal/registering"
)

// fileKindLabels name the kinds of files on the pages.
var fileKindLabels = map[string]string{
	files.KindIDCardPhoto: "身份证人像面照片",
	files.KindVideo:       "朗读视频",
	files.KindPortrait:    "电子证件照",
	files.KindOnsitePhoto: "现场照片",
	files.KindReport:      "学历认证报告",
}

func fileKindLabel(kind string) string { return fileKindLabels[kind] }

// fileAccessPage lists the newest fetches of files by staff (文件访问记录),
// of one registration when its id is given (GET /admin/file-access).
func (s *Server) fileAccessPage(c *gin.Context) {
	id := c.Query("registration_id")
	p := page{Form: url.Values{"registration_id": {id}}}
	accesses, err := s.Registering.FileAccesses(c, account(c), id, registering.MaxFileAccesses)
	if err != nil {
		s.render(c, "admin_file_access", s.refused(c, err, p))
		return
	}
	p.Data = accesses
	s.render(c, "admin_file_access", p)
}
