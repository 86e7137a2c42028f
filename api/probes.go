package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/throttle"
)

// probeLimits: within 15 minutes, 5 answers that reveal something about a
// person given to one account, or 50 to one address, refuse further
// look-ups and submissions until they are 15 minutes old. The account is the
// caller's own: locking it locks nobody else out.
func probeLimits() accounts.Limits {
	const window = 15 * time.Minute
	return accounts.Limits{
		PerLogin:   throttle.Rule{Scope: "lookup:account", Max: 5, Window: window},
		PerAddress: throttle.Rule{Scope: "lookup:address", Max: 50, Window: window},
	}
}

// staffProbeLimits: the same for staff searching by ID number, whose work
// is looking people up (a desk asked about someone who never registered):
// 30 misses to one account, or 300 to one address (an office behind one
// address), within 15 minutes.
func staffProbeLimits() accounts.Limits {
	const window = 15 * time.Minute
	return accounts.Limits{
		PerLogin:   throttle.Rule{Scope: "lookup:staff", Max: 30, Window: window},
		PerAddress: throttle.Rule{Scope: "lookup:staff-address", Max: 300, Window: window},
	}
}

// limitProbes counts enrolment look-ups, registration submissions and
// staff searches by ID number per account and client address
// (Server.LookupLimits, StaffLookupLimits). An answer that reveals something about a person
// (reveals, or revealedKey set by the handler: a page's revealing refusal,
// a search that found nothing) counts as a failure; any other answer is not
// counted. The body is read before the attempt is counted, so that a slow
// client cannot keep it pending. A lockout of a page's action is left to
// the page to show with its form (pageRefused).
func (s *Server) limitProbes(c *gin.Context) {
	if !readBody(c) {
		return
	}
	limits := s.LookupLimits
	if account(c).Role != accounts.RoleApplicant {
		limits = s.StaffLookupLimits
	}
	attempt, err := s.Limiter.Begin(c, limits.Keys(strconv.FormatInt(account(c).ID, 10), c.ClientIP())...)
	if err != nil && isPage(c) {
		c.Set(refusedKey, err) // the page shows the refusal with its form (pageRefused)
		c.Next()
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	w := &answerRecorder{ResponseWriter: c.Writer}
	c.Writer = w
	c.Next()
	ctx := context.WithoutCancel(c)
	if reveals(w.body.Bytes()) || c.GetBool(revealedKey) {
		err = attempt.Failed(ctx)
	} else {
		err = attempt.Forgive(ctx)
	}
	if err != nil {
		slog.ErrorContext(c, "count look-up attempt", "error", err)
	}
}

// probeMissed tells limitProbes that the look-up found nothing: a miss
// tells as much about a person as a refusal that reveals, and counts.
func probeMissed(c *gin.Context) { c.Set(revealedKey, true) }

// readBody reads the request body whole (limitBody bounds it) and hands it
// on to the handler; it answers 413 or 400 when it cannot.
func readBody(c *gin.Context) bool {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		failBody(c, err)
		return false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// reveals reports whether an error body tells something about a person:
// that no enrolment record matches, or that an ID number has enrolment
// records, a confirmed registration, or a registration in progress from
// another account. registration_not_open, validation errors and the
// caller's own registration in progress (errInProgress: the same code)
// tell nothing.
func reveals(body []byte) bool {
	var answer struct {
		Error apiError `json:"error"`
	}
	if len(body) == 0 || json.Unmarshal(body, &answer) != nil {
		return false
	}
	return revealing(answer.Error)
}

// revealing reports whether an error tells something about a person (reveals).
func revealing(e apiError) bool {
	switch e.Code {
	case errEnrolmentNotFound.Code, errIDEnrolled.Code, errIDRegistered.Code:
		return true
	case errIDInProgress.Code:
		return e.MessageEN != errInProgress.MessageEN
	}
	return false
}

// answerRecorder keeps the body of a 404 or 409 answer (the refusals that
// may reveal something), up to 4 KiB, for limitProbes.
type answerRecorder struct {
	gin.ResponseWriter
	body bytes.Buffer
}

const recordLimit = 4 << 10

func (w *answerRecorder) Write(b []byte) (int, error) {
	w.keep(b)
	return w.ResponseWriter.Write(b)
}

func (w *answerRecorder) WriteString(s string) (int, error) {
	w.keep([]byte(s))
	return w.ResponseWriter.WriteString(s)
}

func (w *answerRecorder) keep(b []byte) {
	if st := w.Status(); st != http.StatusNotFound && st != http.StatusConflict {
		return
	}
	w.body.Write(b[:min(len(b), recordLimit-w.body.Len())])
}
