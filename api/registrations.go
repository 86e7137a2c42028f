package api

import (
	"fmt"
	"mime/multipart"
	"net/http"

	"github.com/gin-gonic/gin"

	"zikao/internal/files"
	"zikao/internal/registering"
)

// The handlers of registrations decode the request, make one call to the
// registration service, and encode its answer (views.go) or its error
// (errors.go).

// submit starts a registration (POST /registrations).
func (s *Server) submit(c *gin.Context) {
	var in registering.Submission
	if !bindJSON(c, &in) {
		return
	}
	r, err := s.Registering.Submit(c.Request.Context(), account(c), in, idempotencyKey(c))
	s.answer(c, http.StatusAccepted, r, err)
}

// lookupEnrolment answers POST /enrolled-records/lookup.
func (s *Server) lookupEnrolment(c *gin.Context) {
	var in struct {
		Name         string `json:"name"`
		IDNumber     string `json:"id_number"`
		TicketNumber string `json:"ticket_number"`
	}
	if !bindJSON(c, &in) {
		return
	}
	records, err := s.Registering.LookupEnrolment(c.Request.Context(), in.Name, in.IDNumber, in.TicketNumber)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"records": records})
}

func (s *Server) mine(c *gin.Context) {
	r, err := s.Registering.Mine(c.Request.Context(), account(c))
	s.answer(c, http.StatusOK, r, err)
}

func (s *Server) getRegistration(c *gin.Context) {
	r, err := s.Registering.Get(c.Request.Context(), account(c), c.Param("id"))
	s.answer(c, http.StatusOK, r, err)
}

// uploadReport takes the diploma certification report (学历认证报告).
func (s *Server) uploadReport(c *gin.Context) {
	if !parseMultipart(c) {
		return
	}
	file, ok := formFile(c, "file")
	if !ok {
		return
	}
	if file != nil {
		defer file.Close()
	}
	rep := registering.Report{File: file, VerificationCode: c.PostForm("verification_code"),
		ReportNumber: c.PostForm("report_number"), CertificateNumber: c.PostForm("certificate_number")}
	r, err := s.Registering.UploadReport(c.Request.Context(), account(c), c.Param("id"), idempotencyKey(c), rep)
	s.answer(c, http.StatusAccepted, r, err)
}

func (s *Server) withdraw(c *gin.Context) {
	r, err := s.Registering.Withdraw(c.Request.Context(), account(c), c.Param("id"), idempotencyKey(c))
	s.answer(c, http.StatusAccepted, r, err)
}

func (s *Server) downloadReport(c *gin.Context) { s.serveReport(c, "attachment") }

// serveReport answers with the report on file, to those ReportFile lets see
// it: as a download (attachment) or to be shown in a page (inline).
func (s *Server) serveReport(c *gin.Context, disposition string) {
	r, file, err := s.Registering.ReportFile(c.Request.Context(), account(c), c.Param("id"))
	if err != nil {
		failErr(c, err)
		return
	}
	ext := map[string]string{files.PDF: "pdf", files.JPEG: "jpg", files.PNG: "png"}[file.ContentType]
	c.Header("Content-Disposition", fmt.Sprintf(`%s; filename="diploma-report-%s.%s"`, disposition, r.ID, ext))
	c.Header("X-Content-Type-Options", "nosniff")
	if disposition == "inline" {
		c.Header("Cache-Control", "private, no-store")
		c.Header("X-Frame-Options", "SAMEORIGIN")
	}
	c.Data(http.StatusOK, file.ContentType, file.Data)
}

// parseMultipart reads a multipart form (fields and files, within the body
// limit) before any field is looked at, and checks its fields (checkForm):
// 413 when it is too large, 400 when it is no multipart form.
func parseMultipart(c *gin.Context) bool {
	err := c.Request.ParseMultipartForm(1 << 20)
	switch {
	case err == nil:
		return checkForm(c)
	case isTooLarge(err) && onlineTryRoutes[c.FullPath()]:
		fail(c, errOnlineTooLarge)
	case isTooLarge(err):
		fail(c, errTooLarge)
	default:
		p := errMalformed
		p.Message, p.MessageEN = "请以 multipart/form-data 提交表单和文件", "send a multipart/form-data form with the file"
		fail(c, p)
	}
	return false
}

// formFile opens the file of a multipart field: nil when there is none.
func formFile(c *gin.Context, field string) (multipart.File, bool) {
	fh, err := c.FormFile(field) // the form is parsed already (parseMultipart)
	if err != nil {
		return nil, true
	}
	f, err := fh.Open()
	if err != nil {
		failErr(c, fmt.Errorf("open upload: %w", err))
		return nil, false
	}
	return f, true
}
