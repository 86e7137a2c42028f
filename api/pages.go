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
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/registering"
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

func seeOther(c *gin.Context, to string) { c.Redirect(http.StatusSeeOther, to) }

// atoi is a form's number, or 0.
func atoi(s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0
	}
	return n
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
