package api

// The web pages (docs: /work/shared/domain/pages.md, README "Web pages"):
// server-rendered with html/template, on the same address as the JSON API,
// calling the same registration service and accounts store as the JSON
// handlers and answering refusals with the same problems (problemOf).
//
// How to add a page:
//
//  1. Write api/templates/NAME.html with {{define "title"}}…{{end}} and
//     {{define "content"}}…{{end}}; the layout (templates/layout.html) wraps
//     it with the header (login name, 退出登录) and the messages at the top
//     (.Error, .Notice). Inputs use the helpers of templates/_forms.html,
//     shared by every page: {{template "text" (field . "name" "标签" "text")}}
//     is a labelled input with its value and its message; for other inputs,
//     .Val "name" is what was typed, .Is "name" "value" for selects and
//     checkboxes, {{template "fielderr" (.Err "name")}} the message beside
//     it. Forms post with method="post" and carry
//     <input type="hidden" name="key" value="{{.Key}}"> (the idempotency
//     key, formKey). A page's own script: {{define "scripts"}}<script
//     src="/assets/x.js" defer></script>{{end}}, the file in api/assets.
//  2. Write the handler, most often one service call and one render:
//
//     func (s *Server) fooPage(c *gin.Context) {
//         x, err := s.Registering.Something(c.Request.Context(), account(c), …)
//         if err != nil {
//             s.render(c, "foo", s.refused(c, err, page{}))
//             return
//         }
//         s.render(c, "foo", page{Data: x})
//     }
//
//     A form's POST handler reads its fields with readForm (or
//     readMultipart), calls the service, and on an error renders the same
//     template again with s.refused(c, err, page{Form: form}): the
//     problem's message at the top, each field's message beside its input,
//     the typed values kept (never passwords). On success it redirects
//     (seeOther) to the page that shows the result.
//  3. Register the route in pageRoutes on the group "in" (signed in) with
//     allow(roles...) for its roles — e.g. in.GET("/admin/staff",
//     allow(accounts.RoleAdmin), s.staffPage) — or on "public". A refused
//     role gets a 403 page (fail renders problems as pages on pages' paths).
//
// Sessions are the accounts store's sessions (as for bearer tokens) in an
// HttpOnly cookie; every state-changing request passes
// http.CrossOriginProtection; every page carries a Content-Security-Policy
// without inline script (scripts are files in api/assets).

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/registering"
	"zikao/internal/sms"
	"zikao/internal/status"
	"zikao/internal/wellformed"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// pageTemplates holds one template set per page: the layout with the
// page's own file.
var pageTemplates = parsePages()

var pageFuncs = template.FuncMap{
	"day":           day,
	"levelLabel":    catalog.LevelLabel,
	"statusLabel":   status.Label,
	"roleLabel":     roleLabel,
	"fileKindLabel": fileKindLabel,
	"idOf":          inputID,
	"homeOf":        homeOf,
	"field": func(p page, name, label, typ string) inputField {
		return inputField{Page: p, Name: name, Label: label, Type: typ}
	},
	"genderLabel": func(g string) string { return map[string]string{"male": "男", "female": "女"}[g] },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(templateFiles, "templates/layout.html", "templates/_*.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, name := range names {
		if path.Base(name) == "layout.html" || strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFiles, name))
		out[strings.TrimSuffix(path.Base(name), ".html")] = t
	}
	return out
}

// page is what every template gets.
type page struct {
	Account *accounts.Account // the signed-in account, or nil
	Status  int               // the HTTP status (200 when zero)
	Error   string            // the problem's message, at the top
	Notice  string            // a confirmation, at the top
	Fields  map[string]string // messages beside the inputs, by field name
	Form    url.Values        // what was typed (never passwords)
	Key     string            // a fresh idempotency key for the page's forms
	Data    any               // the page's own data
	// English beside the Chinese, on the pages that show both (refusedBoth,
	// the pages of phones and SMS: pages_phones.go).
	ErrorEN, NoticeEN string
	FieldsEN          map[string]string
	// Secrets typed back where nothing was refused: a form's 获取验证码 sends
	// a code and comes back before the form itself is sent (codeStep).
	Secrets url.Values
}

// Val is what was typed into a field.
func (p page) Val(field string) string { return p.Form.Get(field) }

// Err is the message for a field, or "".
func (p page) Err(field string) string { return p.Fields[field] }

// ErrEN is the English message for a field, where the page shows it and it
// differs from the Chinese, or "".
func (p page) ErrEN(field string) string {
	if en := p.FieldsEN[field]; en != p.Fields[field] {
		return en
	}
	return ""
}

// Secret is a secret typed back (Secrets), or "".
func (p page) Secret(field string) string { return p.Secrets.Get(field) }

// Is reports whether a field holds a value (selects, radios, checkboxes).
func (p page) Is(field, value string) bool {
	for _, v := range p.Form[field] {
		if v == value {
			return true
		}
	}
	return false
}

// inputField is one labelled input (the template "text" of _forms.html).
type inputField struct {
	Page              page
	Name, Label, Type string
}

// inputID is the HTML id of a field: its name with '-' for '.', so that
// CSS selectors need no escaping.
func inputID(field string) string { return strings.ReplaceAll(field, ".", "-") }

func roleLabel(role string) string {
	return map[string]string{
		accounts.RoleApplicant: "考生", accounts.RoleCountyReviewer: "区考办审核员",
		accounts.RoleProvincialReviewer: "省考办审核员", accounts.RoleOnsiteOperator: "现场确认员", accounts.RoleAdmin: "管理员",
	}[role]
}

// contentSecurityPolicy forbids inline script and script from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; object-src 'self'; frame-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

func pageHeaders(c *gin.Context) {
	c.Header("Content-Security-Policy", contentSecurityPolicy)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer") // page URLs may hold an ID number (look-ups): never pass them on
	c.Header("Cache-Control", "no-store")
}

// render answers with a page.
func (s *Server) render(c *gin.Context, name string, p page) {
	renderPage(c, name, p)
}

func renderPage(c *gin.Context, name string, p page) {
	t, ok := pageTemplates[name]
	if !ok {
		panic("no template " + name)
	}
	if p.Account == nil {
		if a, ok := c.Get(accountKey); ok {
			acc := a.(accounts.Account)
			p.Account = &acc
		}
	}
	if p.Key == "" {
		p.Key = newKey()
	}
	for field := range p.Form {
		if strings.Contains(field, "password") || field == "security_answer" { // secrets are never typed back
			delete(p.Form, field)
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		slog.ErrorContext(c, "render page", "page", name, "error", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	if p.Status == 0 {
		p.Status = http.StatusOK
	}
	pageHeaders(c)
	c.Data(p.Status, "text/html; charset=utf-8", buf.Bytes())
}

// renderProblem answers a page request with an error page (fail).
func renderProblem(c *gin.Context, p problem) {
	renderPage(c, "error", page{Status: p.status, Error: p.Message, Fields: p.Fields})
	c.Abort()
}

// refused fills a page with the problem of err: its message at the top,
// per-field messages beside the inputs. A refusal of a probe-limited
// action that tells something about a person counts against the limit
// (limitProbes).
func (s *Server) refused(c *gin.Context, err error, p page) page {
	p, _ = s.refusedWith(c, err, p)
	return p
}

// refusedWith is refused, giving the problem too.
func (s *Server) refusedWith(c *gin.Context, err error, p page) (page, problem) {
	prob := problemOf(c, err)
	if prob.retryAfter != "" {
		c.Header("Retry-After", prob.retryAfter)
	}
	if revealing(prob.apiError) {
		c.Set(revealedKey, true)
	}
	p.Status, p.Error, p.Fields = prob.status, prob.Message, prob.Fields
	return p, prob
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

func newKey() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// formKey is the idempotency key a form carries ("key"), when well formed.
func formKey(form url.Values) string {
	if key := form.Get("key"); validKey(key) {
		return key
	}
	return ""
}

// readForm reads a posted form: its values must be text (else an
// *registering.Invalid with each field's message).
func readForm(c *gin.Context) (url.Values, error) {
	if err := c.Request.ParseForm(); err != nil {
		if isTooLarge(err) {
			return url.Values{}, err
		}
		return url.Values{}, &registering.Refusal{Code: errMalformed.Code}
	}
	return c.Request.PostForm, checkText(c.Request.PostForm)
}

// readMultipart reads a posted multipart form (fields and files, within
// the body limit), checking its values like readForm.
func readMultipart(c *gin.Context) (url.Values, error) {
	err := c.Request.ParseMultipartForm(1 << 20)
	switch {
	case isTooLarge(err):
		return url.Values{}, &registering.Refusal{Code: registering.CodeFileTooLarge}
	case err != nil:
		return url.Values{}, &registering.Refusal{Code: errMalformed.Code}
	}
	form := url.Values(c.Request.MultipartForm.Value)
	return form, checkText(form)
}

func checkText(form url.Values) error {
	f := registering.Fields{}
	for name, vs := range form {
		for _, v := range vs {
			if !wellformed.Text(name) || !wellformed.Text(v) {
				f.Add(name, invalidText[0], invalidText[1])
			}
		}
	}
	return f.Err()
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

// homeOf is where an account lands after signing in.
func homeOf(role string) string {
	switch role {
	case accounts.RoleApplicant:
		return "/me"
	case accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer:
		return "/reviews"
	case accounts.RoleOnsiteOperator:
		return "/onsite"
	case accounts.RoleAdmin:
		return "/admin"
	}
	return "/"
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

func seeOther(c *gin.Context, to string) { c.Redirect(http.StatusSeeOther, to) }

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

// pageRoutes registers the web pages on r.
func (s *Server) pageRoutes(r *gin.Engine) {
	assets, err := fs.Sub(assetFiles, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(assets)
	r.GET("/assets/*file", func(c *gin.Context) {
		if _, err := fs.Stat(assets, strings.TrimPrefix(c.Param("file"), "/")); err != nil {
			fail(c, errNotFound)
			return
		}
		c.Header("X-Content-Type-Options", "nosniff")
		c.Header("Cache-Control", "public, max-age=300")
		c.Request.URL.Path = c.Param("file")
		files.ServeHTTP(c.Writer, c.Request)
	})

	pages := r.Group("", refuseCrossOrigin)
	public := pages.Group("", s.mayBeSignedIn)
	public.GET("/", s.homePage)
	public.GET("/login", s.loginPage)
	public.POST("/login", s.loginPost)
	public.GET("/signup", s.signUpPage)
	public.POST("/signup", s.signUpPost)
	public.GET("/password/forgot", s.forgotPage)
	public.POST("/password/forgot", s.forgotPost)
	s.publicPhonePages(public) // pages_phones.go: 通过手机找回, 查询准考证

	in := pages.Group("", s.signedIn)
	in.POST("/logout", s.logoutPost)
	in.GET("/password", s.passwordPage)
	in.POST("/password", s.passwordPost)

	s.applicantPages(in.Group("", allow(accounts.RoleApplicant)))
	s.staffPages(in)
	s.adminPages(in.Group("/admin", allow(accounts.RoleAdmin))) // pages_admin.go
}

// The pages of everyone: home, sign in, sign up, passwords, sign out.

func (s *Server) homePage(c *gin.Context) {
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return
	}
	s.render(c, "home", page{Data: map[string]any{"Year": s.Year, "Sitting": s.Sitting, "Areas": areas}})
}

func (s *Server) loginPage(c *gin.Context) {
	if a, ok := c.Get(accountKey); ok {
		seeOther(c, homeOf(a.(accounts.Account).Role))
		return
	}
	p := page{Form: url.Values{"next": {localPath(c.Query("next"))}}}
	if c.Query("reset") != "" {
		p.Notice, p.NoticeEN = "密码已重置，请用新密码登录", "the password was reset: sign in with the new one"
	}
	s.render(c, "login", p)
}

func (s *Server) loginPost(c *gin.Context) {
	form, err := readForm(c)
	var role string
	if err == nil {
		role, err = s.signIn(c, form.Get("login_name"), form.Get("password"))
	}
	if err != nil {
		s.render(c, "login", s.refused(c, err, page{Form: form}))
		return
	}
	to := localPath(form.Get("next"))
	if to == "" {
		to = homeOf(role)
	}
	seeOther(c, to)
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

func (s *Server) logoutPost(c *gin.Context) {
	if err := s.Accounts.Logout(c, c.GetString(tokenKey)); err != nil {
		failErr(c, err)
		return
	}
	clearSessionCookie(c)
	seeOther(c, "/login")
}

func (s *Server) questions(c *gin.Context) ([]catalog.SecurityQuestion, bool) {
	qs, err := s.Catalog.SecurityQuestions(c)
	if err != nil {
		failErr(c, err)
		return nil, false
	}
	return qs, true
}

func (s *Server) signUpPage(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	s.render(c, "signup", page{Data: qs})
}

func (s *Server) signUpPost(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	if err == nil && wantsCode(form) { // 获取验证码: the form comes back, the code sent
		s.render(c, "signup", s.codeStep(c, form, sms.SignUp, page{Data: qs}))
		return
	}
	if err == nil && form.Get("password") != form.Get("password_confirm") {
		err = registering.Fields{"password_confirm": "两次输入的密码不一致 / the passwords differ"}.Err()
	}
	if err == nil {
		_, err = s.Accounts.Create(c, accounts.NewAccount{LoginName: form.Get("login_name"), Password: form.Get("password"),
			QuestionID: atoi(form.Get("security_question_id")), Answer: form.Get("security_answer"),
			Phone: form.Get("phone"), SMSCode: form.Get("sms_code")})
	}
	if err == nil {
		_, err = s.signIn(c, form.Get("login_name"), form.Get("password"))
	}
	if err != nil {
		s.render(c, "signup", s.phoneRefused(c, err, page{Form: form, Data: qs}))
		return
	}
	seeOther(c, "/me")
}

func (s *Server) forgotPage(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	s.render(c, "forgot", page{Data: qs})
}

func (s *Server) forgotPost(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	if err == nil {
		err = s.Accounts.ResetPassword(c, form.Get("login_name"), atoi(form.Get("security_question_id")),
			form.Get("security_answer"), form.Get("new_password"), c.ClientIP())
	}
	if err != nil {
		s.render(c, "forgot", s.refused(c, err, page{Form: form, Data: qs}))
		return
	}
	seeOther(c, "/login?reset=1")
}

func (s *Server) passwordPage(c *gin.Context) {
	p := page{}
	if c.Query("done") != "" {
		p.Notice = "密码已修改；其他设备上的登录已退出"
	}
	s.render(c, "password", p)
}

func (s *Server) passwordPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		err = s.Accounts.ChangePassword(c, account(c).ID, c.GetString(tokenKey), form.Get("old_password"),
			form.Get("new_password"), c.ClientIP())
	}
	if errors.Is(err, accounts.ErrInvalidCredentials) {
		p := page{Status: errWrongOldPassword.status, Error: errWrongOldPassword.Message,
			Fields: map[string]string{"old_password": errWrongOldPassword.Message}}
		s.render(c, "password", p)
		return
	}
	if err != nil {
		s.render(c, "password", s.refused(c, err, page{Form: form}))
		return
	}
	seeOther(c, "/password?done=1")
}

// atoi is a form's number, or 0.
func atoi(s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0
	}
	return n
}
