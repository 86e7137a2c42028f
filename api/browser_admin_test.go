package api_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"zikao/internal/demo"
	"zikao/internal/testenv"
)

// The administrator's pages (pages_admin.go) in Chromium
// (browser_helpers_test.go): the dashboard and its CSV, staff accounts,
// confirmation windows and the enrolment records import, on a desk and on
// a phone.

// Exam areas no other test registers in, staffs or imports into.
const (
	adminBrowserArea      = "0104" // 硚口区: a registration, its window moved, records imported
	adminBrowserAreaLabel = "硚口区（0104）"
	adminBrowserStaffArea = "洪山区（0111）" // the new county reviewer's area
)

// signInAdmin opens a browser for the demo administrator, who lands on the dashboard.
func signInAdmin(t *testing.T, w, h int) *browser {
	t.Helper()
	b := newBrowser(t, "admin", w, h)
	b.signIn("admin@example.com", demo.Password)
	if b.last != "/admin" {
		t.Fatalf("the administrator lands on %s", b.last)
	}
	return b
}

// The dashboard where the administrator lands: a bar chart and a table of
// the sitting's registrations by exam area and status, and 下载CSV, which
// the browser's session downloads as CSV.
func TestBrowserAdministration(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	registerIn(t, adminBrowserArea)
	a := signInAdmin(t, deskWidth, deskHeight)
	a.see("注册统计", "各考区注册情况", "下载CSV", adminBrowserAreaLabel)
	a.click("文件访问记录") // the access records, from the administrator's navigation
	a.see("文件访问记录", "注册编号（可不填）")
	a.open("/admin")

	type chart struct {
		SVGs, Bars, Segments int
		Width, Height        float64 // as laid out
		Labels               []string
		AreaBarWidth         float64 // the segments of the area's bar, laid out
	}
	c := run(a, chromedp.Evaluate[chart](fmt.Sprintf(`(function () {
		var svgs = document.querySelectorAll("figure.chart svg");
		var out = {SVGs: svgs.length, Bars: 0, Segments: 0, Width: 0, Height: 0, Labels: [], AreaBarWidth: 0};
		if (svgs.length !== 1) return out;
		var box = svgs[0].getBoundingClientRect();
		out.Width = box.width; out.Height = box.height;
		svgs[0].querySelectorAll("g").forEach(function (g) {
			var rects = g.querySelectorAll("rect"), label = g.querySelector("text[text-anchor=end]");
			if (!rects.length || !label) return;
			out.Bars++;
			out.Segments += rects.length;
			out.Labels.push(label.textContent.trim());
			if (label.textContent.trim() === %q) {
				rects.forEach(function (r) { out.AreaBarWidth += r.getBoundingClientRect().width; });
			}
		});
		return out;
	})()`, adminBrowserAreaLabel)))
	if c.SVGs != 1 || c.Bars < 1 || c.Segments < c.Bars || c.Width < 200 || c.Height < 20 || c.AreaBarWidth <= 0 {
		t.Fatalf("the chart: %+v", c)
	}
	if !slices.Contains(c.Labels, adminBrowserAreaLabel) {
		t.Fatalf("the chart has no bar of %s: %q", adminBrowserAreaLabel, c.Labels)
	}

	// The table: a row per exam area, a column per status, and the totals.
	table := run(a, chromedp.Evaluate[map[string]map[string]string](`(function () {
		var t = document.querySelector("table.counts"), out = {};
		if (!t) return out;
		var heads = Array.from(t.querySelectorAll("thead th")).map(function (th) { return th.innerText.trim(); });
		t.querySelectorAll("tbody tr, tfoot tr").forEach(function (tr) {
			var cells = tr.querySelectorAll("td, th"), row = {};
			cells.forEach(function (cell, i) { row[heads[i]] = cell.innerText.trim(); });
			out[cells[0].innerText.trim()] = row;
		});
		return out;
	})()`))
	row := table[adminBrowserAreaLabel]
	if n, _ := strconv.Atoi(row["预注册"]); n < 1 || row["合计"] == "" || table["合计"]["合计"] == "" || len(table) < 20 {
		t.Fatalf("the table's row of %s: %v (%d rows)", adminBrowserAreaLabel, row, len(table))
	}

	// 下载CSV, fetched with the browser's session cookie.
	type download struct {
		Status             int
		Type, Disposition  string
		Body               string
		Href, DownloadAttr string
	}
	d := run(a, chromedp.Evaluate[download](`(async function () {
		var link = document.evaluate("//a[normalize-space(.)='下载CSV']", document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
		if (!link) return {Status: 0};
		var r = await fetch(link.href, {credentials: "same-origin"});
		return {Status: r.status, Type: r.headers.get("content-type"), Disposition: r.headers.get("content-disposition") || "",
			Body: await r.text(), Href: link.getAttribute("href"), DownloadAttr: link.hasAttribute("download") ? "yes" : "no"};
	})()`, chromedp.EvalAwaitPromise))
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(d.Body, "\r\n", "\n")), "\n")
	if d.Status != 200 || d.Type != "text/csv; charset=utf-8" || !strings.HasPrefix(d.Disposition, "attachment") || d.Href != "/admin/dashboard.csv" {
		t.Fatalf("下载CSV: %+v", d)
	}
	if lines[0] != "exam_area_code,status,count" {
		t.Fatalf("the CSV's header row: %q", lines[0])
	}
	found := false
	for _, l := range lines[1:] {
		if f := strings.Split(l, ","); len(f) == 3 && f[0] == adminBrowserArea && f[1] == "pre_registered" && f[2] == row["预注册"] {
			found = true
		}
	}
	if !found {
		t.Fatalf("the CSV lacks %s,pre_registered,%s:\n%s", adminBrowserArea, row["预注册"], d.Body)
	}
}

// Staff accounts: a county reviewer is created on the page and signs in;
// a login name in use is refused at the top, the name kept and the
// password not; 停用 (confirmed) ends the reviewer's session at once and
// refuses their sign-in; 重置密码 and 启用 on the account's page let them in
// with the new password.
func TestBrowserAdminStaff(t *testing.T) {
	a := signInAdmin(t, deskWidth, deskHeight)
	a.click("工作人员")
	if a.last != "/admin/staff" {
		t.Fatalf("工作人员 leads to %s", a.last)
	}
	login := "browserstaff-" + uuid.NewString()[:8] + "@example.com"
	a.fill("登录名", login)
	a.fill("密码", "staff-pass")
	a.choose("角色", "区考办审核员")
	a.choose("考区", adminBrowserStaffArea)
	if st := a.press("新增工作人员"); st != 200 || a.last != "/admin/staff?done=created" {
		t.Fatalf("新增工作人员 answered %d on %s: %s", st, a.last, a.text())
	}
	a.see("已新增工作人员账号")
	if got := a.staffRow(login); got != login+"|区考办审核员|"+adminBrowserStaffArea+"|正常" {
		t.Fatalf("the new account's row: %q", got)
	}

	// The same login name again: refused at the top, the name kept, the password not.
	a.fill("登录名", login)
	a.fill("密码", "other-pass")
	a.choose("角色", "省考办审核员")
	if st := a.press("新增工作人员"); st != http.StatusConflict {
		t.Fatalf("a login name in use answered %d: %s", st, a.text())
	}
	if msg := a.topError(); msg != "该登录名已被使用" {
		t.Fatalf("the message at the top: %q", msg)
	}
	if got := a.value("登录名"); got != login {
		t.Fatalf("登录名 after the refusal: %q", got)
	}
	if got := a.value("密码"); got != "" {
		t.Fatalf("密码 after the refusal: %q", got)
	}

	reviewer := newBrowser(t, "reviewer", deskWidth, deskHeight)
	reviewer.signIn(login, "staff-pass")
	if reviewer.last != "/reviews" {
		t.Fatalf("the new county reviewer lands on %s", reviewer.last)
	}
	reviewer.see(login, "区考办审核员", "区考办审核：共 0 条待审核")

	// 停用, from the list; it asks first (the dialog is accepted: newBrowser).
	a.open("/admin/staff")
	rowXPath := fmt.Sprintf(`//table[contains(@class,'staff')]//tr[td/a[normalize-space(.)=%s]]`, xq(login))
	if n := a.count(rowXPath + `//form[starts-with(@data-confirm, '停用后')][.//button[normalize-space(.)='停用']]`); n != 1 {
		t.Fatalf("停用 does not ask for confirmation (%d forms)", n)
	}
	if st := a.follow(rowXPath + `//button[normalize-space(.)='停用']`); st != 200 || a.last != "/admin/staff?done=disabled" {
		t.Fatalf("停用 answered %d on %s: %s", st, a.last, a.text())
	}
	a.see("账号已停用")
	if got := a.staffRow(login); got != login+"|区考办审核员|"+adminBrowserStaffArea+"|已停用" {
		t.Fatalf("the disabled account's row: %q", got)
	}
	if a.count(rowXPath+`//button[normalize-space(.)='启用']`) != 1 {
		t.Fatal("the disabled account's row offers no 启用")
	}

	reviewer.open("/reviews")
	if !strings.HasPrefix(reviewer.last, "/login") {
		t.Fatalf("the disabled reviewer still opens %s", reviewer.last)
	}
	reviewer.fill("登录名", login)
	reviewer.fill("密码", "staff-pass")
	if st := reviewer.press("登录"); st != http.StatusUnauthorized || !strings.HasPrefix(reviewer.last, "/login") {
		t.Fatalf("the disabled reviewer's sign-in answered %d on %s", st, reviewer.last)
	}
	reviewer.see("登录名或密码错误")

	// The account's page: 重置密码 (a short one refused beside the field), then 启用.
	a.click(login)
	if !regexp.MustCompile(`^/admin/staff/\d+$`).MatchString(a.last) {
		t.Fatalf("the login name leads to %s", a.last)
	}
	accountPath := a.last
	a.see(login, "区考办审核员", adminBrowserStaffArea, "已停用")
	a.fill("新密码", "short")
	if st := a.press("重置密码"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a short password answered %d: %s", st, a.text())
	}
	if msg := a.fieldError("新密码"); msg == "" {
		t.Fatal("no message beside 新密码")
	}
	if got := a.value("新密码"); got != "" {
		t.Fatalf("新密码 after the refusal: %q", got)
	}
	a.fill("新密码", "new-staff-pass")
	if st := a.press("重置密码"); st != 200 || a.last != accountPath+"?done=password" {
		t.Fatalf("重置密码 answered %d on %s: %s", st, a.last, a.text())
	}
	a.see("密码已重置")
	if st := a.press("启用"); st != 200 || a.last != "/admin/staff?done=enabled" {
		t.Fatalf("启用 answered %d on %s: %s", st, a.last, a.text())
	}
	a.see("账号已启用")
	if got := a.staffRow(login); !strings.HasSuffix(got, "|正常") {
		t.Fatalf("the enabled account's row: %q", got)
	}

	reviewer.open("/login")
	reviewer.fill("登录名", login)
	reviewer.fill("密码", "staff-pass") // the old password no longer opens
	if st := reviewer.press("登录"); st != http.StatusUnauthorized {
		t.Fatalf("the old password answered %d", st)
	}
	reviewer.signIn(login, "new-staff-pass")
	if reviewer.last != "/reviews" {
		t.Fatalf("with the new password the reviewer lands on %s", reviewer.last)
	}
}

// The windows page: an exam area's window moved with 开始时间 and 结束时间
// moves its registration in progress (the count is shown); an end before
// the start is refused beside 结束时间, the typed values kept.
func TestBrowserAdminWindows(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant, id := registerIn(t, adminBrowserArea)
	a := signInAdmin(t, deskWidth, deskHeight)
	a.click("现场确认时间")
	if a.last != "/admin/windows" {
		t.Fatalf("现场确认时间 leads to %s", a.last)
	}
	a.follow(fmt.Sprintf(`//table[contains(@class,'windows')]//tr[td[normalize-space(.)=%s]]//a[normalize-space(.)='修改']`, xq(adminBrowserAreaLabel)))
	if a.last != "/admin/windows/"+adminBrowserArea {
		t.Fatalf("修改 leads to %s", a.last)
	}
	a.see(adminBrowserAreaLabel)
	for _, label := range []string{"开始时间", "结束时间"} {
		if typ := run(a, chromedp.AttributeValue(chromedp.ID(a.labelled(label)), "type")).Value; typ != "datetime-local" {
			t.Fatalf("%s is an input of type %q", label, typ)
		}
		if v := a.value(label); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d$`).MatchString(v) {
			t.Fatalf("%s holds %q, not the current window", label, v)
		}
	}

	starts, ends := time.Now().Add(-2*time.Hour).Truncate(time.Minute), time.Now().AddDate(0, 0, 40).Truncate(time.Minute)
	a.setTime("开始时间", shanghaiInput(starts))
	a.setTime("结束时间", shanghaiInput(ends))
	if st := a.press("保存"); st != 200 {
		t.Fatalf("保存 answered %d: %s", st, a.text())
	}
	m := regexp.MustCompile(`已保存：(\d+) 条进行中的注册已调整`).FindStringSubmatch(a.text())
	if m == nil || m[1] == "0" {
		t.Fatalf("the moved count is not shown: %s", a.text())
	}
	if strings.Contains(a.text(), "暂未调整") {
		t.Fatalf("some registrations were not moved: %s", a.text())
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	endsShown := ends.In(shanghai).Format("2006年1月2日 15:04")
	a.see(endsShown)
	if a.value("开始时间") != shanghaiInput(starts) || a.value("结束时间") != shanghaiInput(ends) {
		t.Fatalf("after 保存 the inputs hold %q and %q", a.value("开始时间"), a.value("结束时间"))
	}
	cw := applicant.json("GET", "/registrations/"+id, nil).body["confirmation_window"].(map[string]any)
	if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(ends) {
		t.Fatalf("the registration's window ends %v, want %v", cw["ends_at"], ends)
	}

	// The end before the start: refused beside 结束时间, both values kept, nothing moved.
	a.setTime("开始时间", shanghaiInput(ends))
	a.setTime("结束时间", shanghaiInput(starts))
	if st := a.press("保存"); st != http.StatusUnprocessableEntity {
		t.Fatalf("an end before the start answered %d: %s", st, a.text())
	}
	if msg := a.fieldError("结束时间"); msg != "结束时间须晚于开始时间" {
		t.Fatalf("beside 结束时间: %q", msg)
	}
	if a.value("开始时间") != shanghaiInput(ends) || a.value("结束时间") != shanghaiInput(starts) {
		t.Fatalf("after the refusal the inputs hold %q and %q", a.value("开始时间"), a.value("结束时间"))
	}
	a.see("提交的信息有误")
	cw = applicant.json("GET", "/registrations/"+id, nil).body["confirmation_window"].(map[string]any)
	if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(ends) {
		t.Fatalf("a refused move changed the window: %v", cw)
	}

	a.click("返回各考区列表")
	if got := a.windowRow(adminBrowserAreaLabel); got != adminBrowserAreaLabel+"|"+starts.In(shanghai).Format("2006年1月2日 15:04")+"|"+endsShown {
		t.Fatalf("the list's row: %q", got)
	}
}

// The enrolment records import: a good file is loaded (已导入), a file with
// bad lines is refused line by line and loads nothing.
func TestBrowserAdminEnrolled(t *testing.T) {
	dir := t.TempDir()
	row := func() (string, string) {
		ticket := fmt.Sprintf("%s%08d", adminBrowserArea, rand.IntN(100000000))
		return randomName() + "," + testenv.IDNumber() + "," + ticket + ",590201,行政管理,zhuanke," + adminBrowserArea + ",social\n", ticket
	}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	r1, t1 := row()
	r2, t2 := row()
	good := write("good.csv", enrolledHeader+r1+r2)
	r3, t3 := row()
	bad := write("bad.csv", enrolledHeader+r3+
		"钱七,110105194912310021,"+adminBrowserArea+"99999999,590201,行政管理,zhuanke,"+adminBrowserArea+",social\n"+ // check character
		"钱七,,123,590201,行政管理,zhuanke,"+adminBrowserArea+",social\n")

	a := signInAdmin(t, deskWidth, deskHeight)
	a.click("在籍信息导入")
	if a.last != "/admin/enrolled" {
		t.Fatalf("在籍信息导入 leads to %s", a.last)
	}
	a.attach("在籍信息文件", good)
	if st := a.press("导入"); st != 200 {
		t.Fatalf("导入 answered %d: %s", st, a.text())
	}
	a.see("已导入 2 条")
	if n := enrolledCount(t, t1, t2); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}

	a.attach("在籍信息文件", bad)
	if st := a.press("导入"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a bad file answered %d: %s", st, a.text())
	}
	a.see("未导入任何记录")
	problems := run(a, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("table.import-errors tbody tr")).map(function (tr) {
		return Array.from(tr.querySelectorAll("td")).map(function (td) { return td.innerText.trim(); });
	})`))
	var lines []string
	for _, p := range problems {
		if len(p) != 2 || p[1] == "" {
			t.Fatalf("a problem row: %q", p)
		}
		lines = append(lines, p[0])
	}
	if strings.Join(lines, ",") != "3,4" {
		t.Fatalf("the bad lines shown: %q", problems)
	}
	if n := enrolledCount(t, t3); n != 0 {
		t.Fatal("a record of a bad file was stored")
	}
	a.see("导入") // the form is offered again
	if a.count(`//button[normalize-space(.)='导入']`) != 1 {
		t.Fatal("no 导入 after the refusal")
	}
}

// On a phone (390×844) the administrator's pages fit the width: wide
// tables scroll inside their box, the chart shrinks; the page never
// scrolls sideways.
func TestBrowserAdminPhoneLayout(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	registerIn(t, adminBrowserArea) // a bar at least
	a := signInAdmin(t, phoneWidth, phoneHeight)
	a.fitsPhone()
	if n := run(a, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg rect").length`)); n == 0 {
		t.Fatal("no chart on the phone")
	}
	for _, path := range []string{"/admin/staff", "/admin/windows", "/admin/windows/" + adminBrowserArea, "/admin/enrolled", "/admin/file-access"} {
		a.open(path)
		a.fitsPhone()
	}
	a.open("/admin/staff")
	a.click("admin@example.com") // the account's page
	a.fitsPhone()
	a.open("/admin/staff")
	a.press("新增工作人员") // everything refused
	a.see("提交的信息有误")
	a.fitsPhone()
}

// fitsPhone fails the test if the page scrolls sideways.
func (b *browser) fitsPhone() {
	b.t.Helper()
	got := run(b, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if got[0] > got[1] {
		b.t.Errorf("%s: %d px wide in a %d px viewport", b.last, got[0], got[1])
	}
}

// setTime sets the datetime-local input labelled so (YYYY-MM-DDTHH:MM).
func (b *browser) setTime(label, value string) {
	b.t.Helper()
	b.do(chromedp.SetValue(chromedp.ID(b.labelled(label)), value))
}

// topError is the message at the top of the page ("" for none).
func (b *browser) topError() string {
	b.t.Helper()
	return run(b, chromedp.Evaluate[string](`(function () {
		var e = document.querySelector("main > .alert.error");
		return e ? e.textContent.trim() : "";
	})()`))
}

// staffRow is an account's row on the staff page: login name|role|area|state.
func (b *browser) staffRow(login string) string {
	b.t.Helper()
	return b.tableRow("table.staff", login, 4)
}

// windowRow is an exam area's row on the windows page: area|start|end.
func (b *browser) windowRow(label string) string {
	b.t.Helper()
	return b.tableRow("table.windows", label, 3)
}

// tableRow joins the first n cells of the table's row whose first cell is first.
func (b *browser) tableRow(table, first string, n int) string {
	b.t.Helper()
	return run(b, chromedp.Evaluate[string](fmt.Sprintf(`(function () {
		var rows = document.querySelectorAll(%q + " tbody tr");
		for (var i = 0; i < rows.length; i++) {
			var td = Array.from(rows[i].querySelectorAll("td")).slice(0, %d).map(function (c) { return c.innerText.trim(); });
			if (td[0] === %q) return td.join("|");
		}
		return "";
	})()`, table, n, first)))
}
