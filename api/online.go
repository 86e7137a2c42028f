package api

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/files"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// Online identity verification (网上验证) and the office's manual check
// (人工核验): each handler decodes, makes one call to the registration
// service, and encodes its answer.

// onlineVerificationLimit is the largest body of a try: its three files
// and the form around them.
const onlineVerificationLimit = registering.MaxIDCardPhoto + registering.MaxVideo + registering.MaxPortrait + 64<<10

// errOnlineTooLarge: a try's body went past its limit (the files' sizes
// together); the page names each file's limit.
var errOnlineTooLarge = problem{status: http.StatusRequestEntityTooLarge, apiError: apiError{Code: registering.CodeFileTooLarge,
	Message:   "上传的文件过大：身份证人像面照片不超过 5 MB，朗读视频不超过 20 MB，电子证件照不超过 100 KB",
	MessageEN: "the files are too large: the ID card photo 5 MB, the video 20 MB, the portrait 100 KB at most"}}

// onlineView is the online verification's part of the registration view.
type onlineView struct {
	Available    bool    `json:"available"`
	TriesLeft    int     `json:"tries_left"`
	LastResult   *string `json:"last_result"`
	ReviewReason *string `json:"review_reason"`
}

func makeOnlineView(r registrations.Registration, now time.Time) onlineView {
	v := onlineView{Available: registering.Open(r, status.StepOnlineTry, now), TriesLeft: r.OnlineTriesLeft, ReviewReason: r.IdentityReviewReason}
	if r.OnlineLastResult != nil && *r.OnlineLastResult != workflows.ResultMatch {
		v.LastResult = r.OnlineLastResult
	}
	return v
}

// onlineChallenge gives the digits to read aloud (201).
func (s *Server) onlineChallenge(c *gin.Context) {
	ch, err := s.Registering.OnlineChallenge(c, account(c), c.Param("id"))
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"challenge_id": ch.ID, "digits": ch.Digits, "expires_at": ch.ExpiresAt})
}

// verifyOnline takes a try: the challenge and the three files.
func (s *Server) verifyOnline(c *gin.Context) {
	in, closeAll, ok := onlineFiles(c)
	if !ok {
		return
	}
	defer closeAll()
	r, err := s.Registering.VerifyOnline(c, account(c), c.Param("id"), idempotencyKey(c), in)
	s.answer(c, http.StatusOK, r, err)
}

// onlineFiles reads the multipart form of a try; closeAll closes its files.
func onlineFiles(c *gin.Context) (registering.OnlineFiles, func(), bool) {
	if !parseMultipart(c) {
		return registering.OnlineFiles{}, func() {}, false
	}
	return openTryFiles(c, c.PostForm("challenge_id"))
}

// openTryFiles opens the three files of a try from a parsed multipart form
// (the JSON API's and the page's); closeAll closes them.
func openTryFiles(c *gin.Context, challengeID string) (in registering.OnlineFiles, closeAll func(), ok bool) {
	in.ChallengeID = challengeID
	var opened []multipart.File
	closeAll = func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, f := range []struct {
		field string
		into  *io.Reader
	}{{registering.FileIDCardPhoto, &in.IDCardPhoto}, {registering.FileVideo, &in.Video}, {registering.FilePortrait, &in.Portrait}} {
		file, ok := formFile(c, f.field)
		if !ok {
			closeAll()
			return in, func() {}, false
		}
		if file != nil {
			opened = append(opened, file)
			*f.into = file
		}
	}
	return in, closeAll, true
}

// requestIdentityReview asks for the office's manual check (202).
func (s *Server) requestIdentityReview(c *gin.Context) {
	r, err := s.Registering.RequestIdentityReview(c, account(c), c.Param("id"), idempotencyKey(c))
	s.answer(c, http.StatusAccepted, r, err)
}

// identityReview is the office's decision on a manual check.
func (s *Server) identityReview(c *gin.Context) {
	var in registering.Decision
	if !bindJSON(c, &in) {
		return
	}
	r, err := s.Registering.IdentityReview(c, account(c), c.Param("id"), idempotencyKey(c), in)
	s.answer(c, http.StatusOK, r, err)
}

// onlineFile serves a file of the last try (OnlineFile: reviewers in
// scope, while the manual check waits), to the JSON API and to the identity
// review page alike: inline, never cached, never framed by another site;
// ranges are answered, for the video.
func (s *Server) onlineFile(c *gin.Context) {
	kind := c.Param("file")
	f, err := s.Registering.OnlineFile(c, account(c), c.Param("id"), kind)
	if err != nil {
		failErr(c, err)
		return
	}
	ext := map[string]string{files.JPEG: "jpg", files.PNG: "png", files.MP4: "mp4", files.WebM: "webm"}[f.ContentType]
	h := c.Writer.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s.%s"`, kind, ext))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(f.Data))
}

const onlinePagePath = "/me/online"
