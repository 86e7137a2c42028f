package api

// The pages' sessions and protection: the session cookie (an accounts.Store
// session, as for bearer tokens) and the middleware that reads it,
// signing in, the refusal of cross-origin requests and the security
// headers of every page.

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/wellformed"
)

// contentSecurityPolicy forbids inline script and script from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; object-src 'self'; frame-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

func pageHeaders(c *gin.Context) {
	c.Header("Content-Security-Policy", contentSecurityPolicy)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer") // page URLs may hold an ID number (look-ups): never pass them on
	c.Header("Cache-Control", "no-store")
}

// Keys of the gin context.
const (
	tokenKey    = "zikao.token"    // the session token of a signed-in page request
	refusedKey  = "zikao.refused"  // limitProbes refused a page's action: the error
	revealedKey = "zikao.revealed" // the answer told something about a person: counts in limitProbes
)

// pageRefused is the refusal limitProbes left for a page (a lockout), or nil.
func pageRefused(c *gin.Context) error {
	if err, ok := c.Get(refusedKey); ok {
		return err.(error)
	}
	return nil
}

// isPage reports whether a request is for the web pages: anything but the
// JSON API, health and metrics.
func isPage(c *gin.Context) bool {
	p := c.Request.URL.Path
	return p != "/api" && !strings.HasPrefix(p, "/api/") && p != "/healthz" && p != "/metrics"
}

// The session cookie holds the token of an accounts.Store session.
const sessionCookie = "zikao_session"

func setSessionCookie(c *gin.Context, token string, expires time.Time) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: overTLS(c)})
}

func clearSessionCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: overTLS(c)})
}

// overTLS reports whether the browser reached the pages over TLS: the API's
// own, or a reverse proxy's that says so with X-Forwarded-Proto (the README's
// deployment). A client that sends the header itself only makes its own
// cookie Secure.
func overTLS(c *gin.Context) bool {
	return c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https")
}

// cookieAccount authenticates the session cookie, if any: ok is false
// without a valid session.
func (s *Server) cookieAccount(c *gin.Context) (a accounts.Account, token string, ok bool, err error) {
	ck, err := c.Request.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || !wellformed.Text(ck.Value) {
		return a, "", false, nil
	}
	a, err = s.Accounts.Authenticate(c, ck.Value)
	if errors.Is(err, accounts.ErrUnauthenticated) {
		clearSessionCookie(c)
		return a, "", false, nil
	}
	return a, ck.Value, err == nil, err
}

// signedIn requires a valid session cookie; without one it sends the
// browser to the sign-in page (and back here after it).
func (s *Server) signedIn(c *gin.Context) {
	a, token, ok, err := s.cookieAccount(c)
	if err != nil {
		failErr(c, err)
		return
	}
	if !ok {
		next := ""
		if c.Request.Method == http.MethodGet {
			next = "?next=" + url.QueryEscape(c.Request.URL.Path) // never the query: it may hold an ID number
		}
		seeOther(c, "/login"+next)
		c.Abort()
		return
	}
	c.Set(accountKey, a)
	c.Set(tokenKey, token)
	c.Next()
}

// mayBeSignedIn notes the signed-in account, if any (public pages show it).
func (s *Server) mayBeSignedIn(c *gin.Context) {
	if a, token, ok, _ := s.cookieAccount(c); ok {
		c.Set(accountKey, a)
		c.Set(tokenKey, token)
	}
	c.Next()
}

// signIn starts a session (accounts.Store.Login, throttled per login name
// and address as for the JSON API) and sets its cookie, ending the session
// the browser had.
func (s *Server) signIn(c *gin.Context, login, password string) (role string, err error) {
	sess, err := s.Accounts.Login(c, login, password, c.ClientIP())
	if err != nil {
		return "", err
	}
	if old, ok := c.Get(tokenKey); ok {
		if err := s.Accounts.Logout(c, old.(string)); err != nil {
			slog.WarnContext(c, "end the previous session", "error", err)
		}
	}
	setSessionCookie(c, sess.Token, sess.ExpiresAt)
	return sess.Role, nil
}

// localPath is next when it is a path of this site, else "".
func localPath(next string) string {
	// Browsers drop tabs and line breaks from a Location and read \ as /:
	// "/\t/evil.example" would lead to another site.
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\t\r\n") || !wellformed.Text(next) {
		return ""
	}
	return next
}

var errCrossOrigin = problem{status: http.StatusForbidden, apiError: apiError{Code: "cross_origin_request",
	Message: "跨站请求已被拒绝：请在本站页面上提交表单", MessageEN: "cross-origin request refused"}}

var crossOrigin = http.NewCrossOriginProtection()

// refuseCrossOrigin refuses state-changing requests from other sites
// (http.CrossOriginProtection: Sec-Fetch-Site, else Origin against Host).
func refuseCrossOrigin(c *gin.Context) {
	if err := crossOrigin.Check(c.Request); err != nil {
		fail(c, errCrossOrigin)
		return
	}
	c.Next()
}
