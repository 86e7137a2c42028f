package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// limitProbes counts enrolment look-ups and registration submissions per
// account and client address, like logins: their refusals (404, 409) tell
// whether a person is enrolled or registered, so they count as failures and
// lock the caller out after a few; any other answer is not counted.
func (s *Server) limitProbes(c *gin.Context) {
	keys := s.LookupLimits.Keys(strconv.FormatInt(account(c).ID, 10), c.ClientIP())
	if err := s.Limiter.Attempt(c, keys...); err != nil {
		failErr(c, err)
		return
	}
	c.Next()
	var err error
	if st := c.Writer.Status(); st == http.StatusNotFound || st == http.StatusConflict {
		err = s.Limiter.Failed(context.WithoutCancel(c), keys...)
	} else {
		err = s.Limiter.Forgive(context.WithoutCancel(c), keys...)
	}
	if err != nil {
		slog.ErrorContext(c, "count look-up attempt", "error", err)
	}
}
