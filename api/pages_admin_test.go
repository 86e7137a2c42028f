package api_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/demo"
	"zikao/internal/testenv"
)

// The administrator's pages (pages_admin.go), driven over HTTP as a browser
// would: a cookie jar, forms posted from the server's own origin.

// webClient is a browser without script: cookies, redirects followed.
type webClient struct {
	t      *testing.T
	client *http.Client
	origin string // sent as Origin on posts
}

// webPage is a page as the browser got it, after redirects.
type webPage struct {
	status int
	path   string // the final path and query
	header http.Header
	body   string
}

func newWebClient(t *testing.T) *webClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &webClient{t: t, client: &http.Client{Jar: jar}, origin: pageURL("")}
}

func (w *webClient) do(req *http.Request) webPage {
	w.t.Helper()
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return webPage{status: resp.StatusCode, path: resp.Request.URL.RequestURI(), header: resp.Header, body: string(body)}
}

func (w *webClient) get(path string) webPage {
	w.t.Helper()
	req, err := http.NewRequest("GET", pageURL(path), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.do(req)
}

// post sends a form as the page's <form method="post"> would.
func (w *webClient) post(path string, form url.Values) webPage {
	w.t.Helper()
	req, err := http.NewRequest("POST", pageURL(path), strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.origin)
	return w.do(req)
}

// postFile sends a multipart form with one file (none when file is nil).
func (w *webClient) postFile(path, field, filename string, file []byte) webPage {
	w.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if file != nil {
		fw, _ := mw.CreateFormFile(field, filename)
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	req, err := http.NewRequest("POST", pageURL(path), &buf)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", w.origin)
	return w.do(req)
}

// webSignIn signs in on the 登录 page and returns the browser and the page it landed on.
func webSignIn(t *testing.T, login, password string) (*webClient, webPage) {
	t.Helper()
	w := newWebClient(t)
	if p := w.get("/login"); p.status != 200 || !strings.Contains(p.body, `action="/login"`) {
		t.Fatalf("the sign-in page: %d", p.status)
	}
	p := w.post("/login", url.Values{"login_name": {login}, "password": {password}, "next": {""}})
	if strings.HasPrefix(p.path, "/login") {
		t.Fatalf("%s did not sign in: %d %s", login, p.status, p.body)
	}
	return w, p
}

func webAdmin(t *testing.T) *webClient {
	t.Helper()
	w, p := webSignIn(t, "admin@example.com", demo.Password)
	if p.status != 200 || p.path != "/admin" {
		t.Fatalf("the administrator landed on %s (%d)", p.path, p.status)
	}
	return w
}

var labelTag = regexp.MustCompile(`<label for="([^"]+)">([^<]*)</label>`)

// inputLabelled is the id of the one input whose <label for> text begins
// with text; the test fails unless exactly one label does and an element
// has that id.
func inputLabelled(t *testing.T, p webPage, text string) string {
	t.Helper()
	var ids []string
	for _, m := range labelTag.FindAllStringSubmatch(p.body, -1) {
		if strings.HasPrefix(strings.TrimSpace(m[2]), text) {
			ids = append(ids, m[1])
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%s: %d labels begin with %q: %v", p.path, len(ids), text, ids)
	}
	if n := strings.Count(p.body, ` id="`+ids[0]+`"`); n != 1 {
		t.Fatalf("%s: label %q names id %q, found on %d elements", p.path, text, ids[0], n)
	}
	return ids[0]
}

// hasButton reports whether the page has a button with exactly this text.
func hasButton(p webPage, text string) bool {
	return regexp.MustCompile(`<button[^>]*>` + regexp.QuoteMeta(text) + `</button>`).MatchString(p.body)
}

func wantPage(t *testing.T, p webPage, status int, words ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: %d, want %d: %s", p.path, p.status, status, p.body)
	}
	for _, w := range words {
		if !strings.Contains(p.body, w) {
			t.Errorf("%s lacks %q", p.path, w)
		}
	}
}

// The dashboard is where the administrator lands: a chart, a table and
// the CSV, which says what the JSON dashboard says.
func TestAdminPagesDashboard(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	registerIn(t, "0200") // a city area no other test registers in
	w := webAdmin(t)
	p := w.get("/admin")
	wantPage(t, p, 200, "下载CSV", "<svg", "黄石市（0200）", "预注册", "合计", `href="/admin/dashboard.csv"`)
	if strings.Contains(p.body, "style=") {
		t.Error("the dashboard has style attributes, which the CSP blocks")
	}
	if !regexp.MustCompile(`<a [^>]*href="/admin/dashboard.csv"[^>]*>下载CSV</a>`).MatchString(p.body) {
		t.Error("no link 下载CSV")
	}

	a := admin(t)
	for try := 1; ; try++ {
		fromJSON := dashboardCounts(t, a)
		csvPage := w.get("/admin/dashboard.csv")
		if csvPage.status != 200 || csvPage.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.HasPrefix(csvPage.header.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("CSV: %d %v", csvPage.status, csvPage.header)
		}
		records, err := csv.NewReader(strings.NewReader(csvPage.body)).ReadAll()
		if err != nil || len(records) < 2 || strings.Join(records[0], ",") != "exam_area_code,status,count" {
			t.Fatalf("CSV %q: %v", csvPage.body, err)
		}
		fromCSV := map[string]map[string]int{}
		for _, rec := range records[1:] {
			n, _ := strconv.Atoi(rec[2])
			if fromCSV[rec[0]] == nil {
				fromCSV[rec[0]] = map[string]int{}
			}
			fromCSV[rec[0]][rec[1]] = n
		}
		if fromCSV["0200"]["pre_registered"] < 1 {
			t.Fatalf("the CSV lacks the registration in 0200: %v", fromCSV)
		}
		if fmt.Sprint(fromCSV) == fmt.Sprint(fromJSON) {
			break
		}
		if try == 3 {
			t.Fatalf("CSV %v, JSON %v", fromCSV, fromJSON)
		}
	}
}

// staffIDOf finds an account's id in the staff page's table.
func staffIDOf(t *testing.T, p webPage, login string) string {
	t.Helper()
	m := regexp.MustCompile(`<a href="/admin/staff/(\d+)">` + regexp.QuoteMeta(login) + `</a>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s is not listed on the staff page", login)
	}
	return m[1]
}

// staffRow is the table row of an account on the staff page.
func staffRowOf(t *testing.T, p webPage, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr[^>]*>\s*<td><a href="/admin/staff/` + id + `">.*?</tr>`).FindString(p.body)
	if m == "" {
		t.Fatalf("no row of account %s", id)
	}
	return m
}

func TestAdminPagesStaff(t *testing.T) {
	w := webAdmin(t)
	p := w.get("/admin/staff")
	wantPage(t, p, 200)
	ids := map[string]string{}
	for _, label := range []string{"登录名", "密码", "角色", "考区"} {
		ids[label] = inputLabelled(t, p, label)
	}
	if !strings.Contains(p.body, `<select id="`+ids["角色"]+`"`) || !strings.Contains(p.body, `<select id="`+ids["考区"]+`"`) ||
		!strings.Contains(p.body, `type="password"`) || !strings.Contains(p.body, "东西湖区（0112）") || !strings.Contains(p.body, "区考办审核员") {
		t.Error("the create form's selects or password input")
	}
	if !hasButton(p, "新增工作人员") {
		t.Fatal("no button 新增工作人员")
	}

	// A county reviewer without an area: the field's message, the login name kept, never the password.
	login := "webstaff-" + uuid.NewString()[:8] + "@example.com"
	p = w.post("/admin/staff", url.Values{"login_name": {login}, "password": {"typed-secret"}, "role": {"county_reviewer"}, "exam_area_code": {""}})
	wantPage(t, p, 422, "提交的信息有误", "该角色须指定考区", `value="`+login+`"`)
	if strings.Contains(p.body, "typed-secret") {
		t.Error("the refused page shows the typed password")
	}
	if !regexp.MustCompile(`<option value="county_reviewer" selected>`).MatchString(p.body) {
		t.Error("the chosen role is not kept")
	}

	p = w.post("/admin/staff", url.Values{"login_name": {login}, "password": {"staff-pass"}, "role": {"county_reviewer"}, "exam_area_code": {"0112"}})
	wantPage(t, p, 200, "已新增工作人员账号", login)
	if p.path != "/admin/staff?done=created" {
		t.Errorf("after creating: %s", p.path)
	}
	id := staffIDOf(t, p, login)
	row := staffRowOf(t, p, id)
	if !strings.Contains(row, "区考办审核员") || !strings.Contains(row, "东西湖区（0112）") || !strings.Contains(row, ">停用</button>") {
		t.Errorf("the new account's row: %s", row)
	}
	if me := logIn(t, login, "staff-pass").json("GET", "/accounts/me", nil); me.str("role") != "county_reviewer" || me.str("exam_area_code") != "0112" {
		t.Fatalf("the new account: %s", me.raw)
	}

	// A login name in use: its message, and the name kept.
	p = w.post("/admin/staff", url.Values{"login_name": {login}, "password": {"other-pass"}, "role": {"admin"}})
	wantPage(t, p, 409, "该登录名已被使用", `value="`+login+`"`)
	logIn(t, login, "staff-pass") // unchanged

	// 停用 ends the account's sessions at once; 启用 lets it in again.
	reviewer := logIn(t, login, "staff-pass")
	want(t, reviewer.json("GET", "/accounts/me", nil), 200, "")
	p = w.post("/admin/staff/"+id+"/disable", nil)
	wantPage(t, p, 200, "账号已停用")
	if row := staffRowOf(t, p, id); !strings.Contains(row, "已停用") || !strings.Contains(row, ">启用</button>") {
		t.Errorf("the disabled account's row: %s", row)
	}
	want(t, reviewer.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	want(t, caller{t: t}.json("POST", "/sessions", map[string]any{"login_name": login, "password": "staff-pass"}), 401, "invalid_credentials")
	wantPage(t, w.post("/admin/staff/"+id+"/enable", nil), 200, "账号已启用")
	reviewer = logIn(t, login, "staff-pass")

	// The account's own page: role and area, and a new password.
	p = w.get("/admin/staff/" + id)
	wantPage(t, p, 200, login)
	for _, label := range []string{"角色", "考区", "新密码"} {
		inputLabelled(t, p, label)
	}
	if !hasButton(p, "重置密码") || !hasButton(p, "保存") || !strings.Contains(p.body, `<option value="0112" selected>`) {
		t.Fatal("the account page's forms")
	}
	p = w.post("/admin/staff/"+id+"/password", url.Values{"password": {"short"}})
	wantPage(t, p, 422, "提交的信息有误")
	if strings.Contains(p.body, `value="short"`) {
		t.Error("the refused page shows the typed password")
	}
	want(t, reviewer.json("GET", "/accounts/me", nil), 200, "") // nothing changed
	p = w.post("/admin/staff/"+id+"/password", url.Values{"password": {"new-staff-pass"}})
	wantPage(t, p, 200, "密码已重置")
	want(t, reviewer.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	reviewer = logIn(t, login, "new-staff-pass")

	p = w.post("/admin/staff/"+id, url.Values{"role": {"onsite_operator"}, "exam_area_code": {""}})
	wantPage(t, p, 422, "该角色须指定考区")
	p = w.post("/admin/staff/"+id, url.Values{"role": {"provincial_reviewer"}, "exam_area_code": {""}})
	wantPage(t, p, 200, "角色和考区已保存", "省考办审核员")
	want(t, reviewer.json("GET", "/accounts/me", nil), 401, "unauthenticated") // the role change ended the session
	reviewer = logIn(t, login, "new-staff-pass")
	if me := reviewer.json("GET", "/accounts/me", nil); me.str("role") != "provincial_reviewer" || me.body["exam_area_code"] != nil {
		t.Fatalf("after the role change: %s", me.raw)
	}

	// Administrators cannot disable themselves (no button, and refused when posted).
	self := admin(t).json("GET", "/accounts/me", nil)
	selfID := strconv.FormatInt(int64(self.body["account_id"].(float64)), 10)
	p = w.get("/admin/staff")
	if strings.Contains(staffRowOf(t, p, selfID), "停用</button>") {
		t.Error("the administrator's own row offers 停用")
	}
	wantPage(t, w.post("/admin/staff/"+selfID+"/disable", nil), 422, "不能停用自己的账号")
	wantPage(t, w.get("/admin/staff/999999999"), 404)
	wantPage(t, w.get("/admin/staff/abc"), 404)
}

// shanghaiInput is t as an <input type="datetime-local"> value in Beijing time.
func shanghaiInput(t time.Time) string {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	return t.In(shanghai).Format("2006-01-02T15:04")
}

func TestAdminPagesWindows(t *testing.T) {
	const area = "0112" // no other test registers here
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant, id := registerIn(t, area)
	w := webAdmin(t)

	p := w.get("/admin/windows")
	wantPage(t, p, 200, "东西湖区（0112）", `href="/admin/windows/0112"`)
	p = w.get("/admin/windows/" + area)
	wantPage(t, p, 200, "东西湖区（0112）")
	for _, label := range []string{"开始时间", "结束时间"} {
		if id := inputLabelled(t, p, label); !regexp.MustCompile(`id="` + id + `" name="[a-z_]+" type="datetime-local" value="\d{4}-\d\d-\d\dT\d\d:\d\d"`).MatchString(p.body) {
			t.Errorf("%s is not a filled datetime-local input", label)
		}
	}
	if !hasButton(p, "保存") {
		t.Fatal("no button 保存")
	}

	starts, ends := time.Now().Add(-2*time.Hour).Truncate(time.Minute), time.Now().AddDate(0, 0, 40).Truncate(time.Minute)
	p = w.post("/admin/windows/"+area, url.Values{"starts_at": {shanghaiInput(starts)}, "ends_at": {shanghaiInput(ends)}})
	wantPage(t, p, 200, "已保存")
	m := regexp.MustCompile(`已保存：(\d+) 条`).FindStringSubmatch(p.body)
	if m == nil || m[1] == "0" || strings.Contains(p.body, "暂未调整") {
		t.Fatalf("moved: %v", m)
	}
	cw := applicant.json("GET", "/registrations/"+id, nil).body["confirmation_window"].(map[string]any)
	if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(ends) {
		t.Errorf("the registration's window ends %v, want %v", cw["ends_at"], ends)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	wantPage(t, w.get("/admin/windows"), 200, ends.In(shanghai).Format("2006年1月2日 15:04"))

	// Refused: the end before the start; not a time. The typed values stay, nothing moves.
	p = w.post("/admin/windows/"+area, url.Values{"starts_at": {shanghaiInput(ends)}, "ends_at": {shanghaiInput(starts)}})
	wantPage(t, p, 422, "结束时间须晚于开始时间", `value="`+shanghaiInput(starts)+`"`)
	p = w.post("/admin/windows/"+area, url.Values{"starts_at": {"明天"}, "ends_at": {""}})
	wantPage(t, p, 422, "时间格式不正确", "请填写时间")
	cw = applicant.json("GET", "/registrations/"+id, nil).body["confirmation_window"].(map[string]any)
	if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(ends) {
		t.Errorf("a refused move changed the window: %v", cw)
	}
	wantPage(t, w.get("/admin/windows/9999"), 404)
}

func TestAdminPagesEnrolledImport(t *testing.T) {
	w := webAdmin(t)
	p := w.get("/admin/enrolled")
	wantPage(t, p, 200, `accept=".csv,text/csv"`, `enctype="multipart/form-data"`)
	if id := inputLabelled(t, p, "在籍信息文件"); !strings.Contains(p.body, `id="`+id+`" name="file" type="file"`) {
		t.Error("在籍信息文件 is not a file input")
	}
	if !hasButton(p, "导入") {
		t.Fatal("no button 导入")
	}
	row := func() (string, string) {
		ticket := fmt.Sprintf("0112%08d", rand.IntN(100000000))
		return "钱七," + testenv.IDNumber() + "," + ticket + ",590201,行政管理,zhuanke,0112,social\n", ticket
	}
	r1, t1 := row()
	r2, t2 := row()
	p = w.postFile("/admin/enrolled", "file", "records.csv", []byte(enrolledHeader+r1+r2))
	wantPage(t, p, 200, "已导入 2 条")
	if n := enrolledCount(t, t1, t2); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}

	// Bad lines: each by its number, with its message; nothing loaded.
	good, t3 := row()
	p = w.postFile("/admin/enrolled", "file", "records.csv", []byte(enrolledHeader+good+"钱七,110105194912310021,011299999999,590201,行政管理,zhuanke,0112,social\n"+"钱七,,123,590201,行政管理,zhuanke,0112,social\n"))
	wantPage(t, p, 422, "未导入任何记录", "<th class=\"num\">行号</th>", "<th>问题</th>", `<td class="num">3</td>`, `<td class="num">4</td>`)
	if strings.Contains(p.body, `<td class="num">2</td>`) {
		t.Error("a good line is listed as bad")
	}
	if n := enrolledCount(t, t3); n != 0 {
		t.Fatal("a record of a bad file was stored")
	}
	wantPage(t, w.postFile("/admin/enrolled", "file", "", nil), 422, "请选择要导入的 CSV 文件")
}

// Only administrators reach the pages; forms from other sites are refused.
func TestAdminPagesForAdminsOnly(t *testing.T) {
	pages := []string{"/admin", "/admin/dashboard.csv", "/admin/staff", "/admin/staff/1", "/admin/windows", "/admin/windows/0112", "/admin/enrolled"}
	county, _ := webSignIn(t, "county0106@example.com", demo.Password)
	for _, path := range pages {
		wantPage(t, county.get(path), 403, "无权进行此操作")
	}
	login := "never-" + uuid.NewString()[:8] + "@example.com"
	wantPage(t, county.post("/admin/staff", url.Values{"login_name": {login}, "password": {"staff-pass"}, "role": {"admin"}}), 403)
	wantPage(t, county.post("/admin/staff/1/disable", nil), 403)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(pageURL("/admin/staff"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fadmin%2Fstaff" {
		t.Errorf("without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	w := webAdmin(t)
	w.origin = "http://evil.example"
	wantPage(t, w.post("/admin/staff", url.Values{"login_name": {login}, "password": {"staff-pass"}, "role": {"admin"}}), 403, "跨站请求已被拒绝")
	want(t, caller{t: t}.json("POST", "/sessions", map[string]any{"login_name": login, "password": "staff-pass"}), 401, "invalid_credentials")
}

// logCapture holds what the server logs while a test runs.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// captureLogs sends the default logger's lines to a buffer until the test ends.
func captureLogs(t *testing.T) *logCapture {
	old := slog.Default()
	l := &logCapture{}
	slog.SetDefault(slog.New(slog.NewTextHandler(l, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return l
}

// auditLine waits for the audit line of an action (written once the answer
// is sent) and returns it.
func auditLine(t *testing.T, logs *logCapture, action string) string {
	t.Helper()
	for range 100 {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "msg=admin") && strings.Contains(line, " action="+action+" ") {
				return line
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no audit line for %s in %s", action, logs.String())
	return ""
}

// Every action on the pages is logged with the acting account, the target
// and the outcome, never a login name or password.
func TestAdminPagesAreAudited(t *testing.T) {
	w := webAdmin(t)
	adminID := strconv.FormatInt(int64(admin(t).json("GET", "/accounts/me", nil).body["account_id"].(float64)), 10)
	logs := captureLogs(t)
	login := "audited-" + uuid.NewString()[:8] + "@example.com"
	p := w.post("/admin/staff", url.Values{"login_name": {login}, "password": {"audited-pass"}, "role": {"provincial_reviewer"}})
	wantPage(t, p, 200, login)
	id := staffIDOf(t, p, login)
	line := auditLine(t, logs, "staff.create")
	for _, want := range []string{"actor_account_id=" + adminID, "target_account_id=" + id, "role=provincial_reviewer", "status=303"} {
		if !strings.Contains(line, want) {
			t.Errorf("audit line %q lacks %s", line, want)
		}
	}
	wantPage(t, w.post("/admin/staff/"+id+"/password", url.Values{"password": {"audited-new"}}), 200)
	line = auditLine(t, logs, "staff.update")
	if !strings.Contains(line, "target_account_id="+id) || !strings.Contains(line, "changes=password") {
		t.Errorf("audit line %q", line)
	}
	auditLine(t, logs, "staff.list")
	for _, secret := range []string{login, "audited-pass", "audited-new"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}
