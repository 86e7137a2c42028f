// Package api is the HTTP API (Gin) for applicants, reviewers and on-site
// operators. Handlers are thin: they check input and permissions, read the
// read model in PostgreSQL, and send decisions to the registration workflow.
package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/files"
	"zikao/internal/metrics"
	"zikao/internal/registering"
	"zikao/internal/sms"
	"zikao/internal/throttle"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// Server holds what the handlers need.
type Server struct {
	DB            *sqlx.DB
	Temporal      client.Client
	Year, Sitting int // the current sitting
	Accounts      *accounts.Store
	Catalog       *catalog.Catalog
	Registering   *registering.Service
	Limiter       *throttle.Limiter
	LookupLimits  accounts.Limits // applicants' look-ups and submissions
	// StaffLookupLimits: staff searches by ID number.
	StaffLookupLimits accounts.Limits
	// RequestTimeout bounds the work of one request.
	RequestTimeout time.Duration
	// SMS, when set, sends the codes and ticket look-ups this server writes
	// at once (the worker's sender sends them otherwise, within a second or
	// two, and everything else).
	SMS        *sms.Sender
	SMSMetrics *metrics.SMS
}

// NewServer wires a Server over a database and a Temporal client.
func NewServer(db *sqlx.DB, tc client.Client, taskQueue string, year, sitting int) *Server {
	return &Server{
		DB: db, Temporal: tc, Year: year, Sitting: sitting,
		Accounts:          accounts.NewStore(db),
		Catalog:           catalog.New(db),
		Registering:       registering.New(db, tc, taskQueue, year, sitting),
		Limiter:           throttle.New(db),
		RequestTimeout:    45 * time.Second,
		LookupLimits:      probeLimits(),
		StaffLookupLimits: staffProbeLimits(),
		SMSMetrics:        metrics.NewSMS(db),
	}
}

// Request body limits.
const (
	jsonLimit      = 64 << 10
	multipartLimit = files.MaxSize + 64<<10
)

// Handler builds the Gin engine. trustedProxies lists the proxies whose
// X-Forwarded-For is believed (none when empty).
func (s *Server) Handler(trustedProxies []string) (*gin.Engine, error) {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	r := gin.New()
	if err := r.SetTrustedProxies(trustedProxies); err != nil {
		return nil, err
	}
	r.HandleMethodNotAllowed = true
	// Handlers pass the gin context as a context.Context: let it carry the
	// request's (limitTime's deadline, the client's cancellation).
	r.ContextWithFallback = true
	r.RedirectTrailingSlash = false // a path that names nothing is 404 with the contract's body
	r.NoRoute(func(c *gin.Context) { fail(c, errNotFound) })
	r.NoMethod(func(c *gin.Context) {
		fail(c, problem{status: http.StatusMethodNotAllowed, apiError: apiError{Code: "method_not_allowed", Message: "不支持的请求方法", MessageEN: "method not allowed"}})
	})
	r.Use(s.measure(), logRequests, gin.CustomRecovery(func(c *gin.Context, _ any) { fail(c, errInternal) }), limitBody,
		s.limitTime, checkIdempotencyKey, sanitize)

	r.GET("/healthz", s.health)
	r.GET("/metrics", serveMetrics)
	v1 := r.Group("/api/v1")
	v1.GET("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPI) })

	v1.GET("/catalog/security-questions", s.securityQuestions)
	v1.GET("/catalog/exam-areas", s.examAreas)
	v1.GET("/catalog/majors", s.majors)

	v1.POST("/accounts", s.signUp)
	v1.POST("/sessions", s.login)
	v1.POST("/password-resets", s.resetPassword)
	v1.POST("/sms-codes", s.requestCode)
	v1.POST("/ticket-lookups", s.lookupTicket)
	authed := v1.Group("", s.authenticate)
	authed.DELETE("/sessions/current", s.logout)
	authed.PUT("/accounts/me/password", s.changePassword)
	authed.GET("/accounts/me", s.me)
	authed.PUT("/accounts/me/phone", s.bindPhone) // staff may bind a phone too

	applicant := authed.Group("", allow(accounts.RoleApplicant))
	applicant.POST("/enrolled-records/lookup", s.limitProbes, s.lookupEnrolment)
	applicant.POST("/registrations", s.limitProbes, s.submit)
	applicant.GET("/registrations/mine", s.mine)
	applicant.GET("/accounts/me/tickets", s.myTickets)
	applicant.POST("/registrations/:id/diploma-report", s.uploadReport)
	applicant.POST("/registrations/:id/withdraw", s.withdraw)
	applicant.POST("/registrations/:id/online-verification/challenge", s.onlineChallenge)
	applicant.POST("/registrations/:id/online-verification", s.verifyOnline)
	applicant.POST("/registrations/:id/identity-review-request", s.requestIdentityReview)

	authed.GET("/registrations/:id", s.getRegistration)
	authed.GET("/registrations/:id/diploma-report", s.downloadReport)

	reviewers := authed.Group("", allow(accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer))
	reviewers.GET("/reviews", s.reviews)
	reviewers.GET("/reviews/overdue", s.overdueReviews)
	authed.GET("/registrations", allow(accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer, accounts.RoleOnsiteOperator),
		s.limitProbes, s.findByIDNumber)
	authed.POST("/registrations/:id/county-review", allow(accounts.RoleCountyReviewer), s.countyReview)
	authed.POST("/registrations/:id/provincial-review", allow(accounts.RoleProvincialReviewer), s.provincialReview)
	authed.POST("/registrations/:id/annul", s.annul) // the service decides who may
	authed.POST("/registrations/:id/exam-area", s.changeExamArea)
	authed.POST("/registrations/:id/identity-review", allow(accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer), s.identityReview)
	authed.GET("/registrations/:id/online-verification/:file", allow(accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer), s.onlineFile)

	onsite := authed.Group("", allow(accounts.RoleOnsiteOperator))
	onsite.GET("/onsite/registrations", s.onsiteLookup)
	onsite.POST("/registrations/:id/onsite-check", s.onsiteCheck)

	admin := authed.Group("/admin", allow(accounts.RoleAdmin)) // api/admin.go
	admin.GET("/staff", s.audit("staff.list"), s.listStaff)
	admin.POST("/staff", s.audit("staff.create"), s.createStaff)
	admin.PATCH("/staff/:account_id", s.audit("staff.update"), s.updateStaff)
	admin.GET("/windows", s.audit("windows.list"), s.listWindows)
	admin.PUT("/windows/:exam_area_code", s.audit("window.move"), s.moveWindow)
	admin.GET("/window-moves/:operation_id", s.audit("window_move.show"), s.windowMove)
	admin.POST("/enrolled-records", s.audit("enrolled.import"), s.importEnrolled)
	admin.GET("/dashboard", s.audit("dashboard"), s.dashboard)
	admin.GET("/file-access", s.audit("file_access.list"), s.fileAccesses)

	s.pageRoutes(r) // the web pages (pages.go)
	return r, nil
}

// logRequests logs each request by its route template, never its path or
// query (they may hold ID numbers).
func logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	slog.InfoContext(c, "http", "method", c.Request.Method, "route", c.FullPath(), "status", c.Writer.Status(),
		"duration_ms", time.Since(start).Milliseconds())
}

// onlineTryRoutes take a try of online verification, with its video.
var onlineTryRoutes = map[string]bool{
	"/api/v1/registrations/:id/online-verification": true,
	onlinePagePath: true,
}

func limitBody(c *gin.Context) {
	limit := int64(jsonLimit)
	switch {
	case !strings.HasPrefix(c.ContentType(), "multipart/"):
	case onlineTryRoutes[c.FullPath()]:
		limit = onlineVerificationLimit
	default:
		limit = multipartLimit
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	c.Next()
}

// limitTime gives each request a deadline, so that no request holds a
// connection to PostgreSQL or Temporal for ever.
func (s *Server) limitTime(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.RequestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// checkIdempotencyKey refuses an Idempotency-Key header that is not 1 to
// 100 visible ASCII characters (400).
func checkIdempotencyKey(c *gin.Context) {
	if _, sent := c.Request.Header["Idempotency-Key"]; sent && !validKey(c.GetHeader("Idempotency-Key")) {
		p := errMalformed
		p.Message, p.MessageEN = "Idempotency-Key 须为1至100个可见ASCII字符", "Idempotency-Key must be 1 to 100 visible ASCII characters"
		fail(c, p)
		return
	}
	c.Next()
}

// validKey: an idempotency key is 1 to 100 visible ASCII characters.
func validKey(key string) bool {
	return key != "" && len(key) <= 100 && !strings.ContainsFunc(key, func(r rune) bool { return r < '!' || r > '~' })
}

// idempotencyKey is the request's Idempotency-Key (checked by
// checkIdempotencyKey), or "".
func idempotencyKey(c *gin.Context) string { return c.GetHeader("Idempotency-Key") }

func (s *Server) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	err := s.DB.PingContext(ctx)
	if err != nil {
		err = s.DB.PingContext(ctx) // a pooled connection PostgreSQL closed when it restarted: one more try
	}
	if err != nil {
		slog.WarnContext(c, "health: PostgreSQL unreachable", "error", err)
		fail(c, errUnavailable)
		return
	}
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		slog.WarnContext(c, "health: Temporal unreachable", "error", err)
		fail(c, errUnavailable)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
