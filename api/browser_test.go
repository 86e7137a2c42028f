package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/demo"
	"zikao/internal/enrolled"
	"zikao/internal/idcard"
	"zikao/internal/testenv"
)

// End-to-end tests of the web pages in Chromium (browser_helpers_test.go),
// against the real stack of TestMain. ZIKAO_SCREENSHOTS=DIR saves a PNG of
// every page they visit.

const (
	reportPDF = "../docs/walkthrough/report.pdf"
	photoJPEG = "../docs/walkthrough/photo.jpg"
)

// The longest path: 专升本 with a diploma the registry does not know, a
// report rejected by the county office with a reason, uploaded again (an
// image this time), approved by the county and the province, confirmed on
// site; the applicant sees 注册完成 and the ticket number. A county
// reviewer of another exam area cannot open the registration.
func TestBrowserLongestPath(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	id, name := testenv.IDNumber(), randomName()
	me.click("新生注册")
	me.fillNew(name, id, "本科(专升本)")
	me.fill("专科毕业学校", "湖北大学")
	me.fill("专科毕业证号", "104871201806000999") // unknown to the registry
	me.tick("我已阅读并同意")
	if st := me.press("提交注册"); st != 200 {
		t.Fatalf("submit answered %d: %s", st, me.text())
	}
	me.see("注册信息已提交")
	me.until("/me", "待上传学历认证报告") // the diploma check found nothing

	me.click("上传学历认证报告")
	me.attach("学历认证报告", reportPDF)
	me.fill("在线验证码", "ABCD1234EFGH")
	me.press("上传")
	me.see("区考办审核中")

	county := newBrowser(t, "county", deskWidth, deskHeight)
	county.signIn("county0106@example.com", demo.Password)
	if county.last != "/reviews" {
		t.Fatalf("a county reviewer lands on %s", county.last)
	}
	county.see("已等待")
	county.openFromInbox(name)
	reviewPath := county.last
	county.see(name, id, "在线验证码：ABCD1234EFGH")
	if got := county.shownReport(); got != "IFRAME|200|application/pdf|inline" {
		t.Fatalf("the PDF report in the page: %s", got)
	}
	county.fill("不通过原因", "报告不清晰，请重新上传")
	county.press("不通过")
	county.see("审核结果已提交")

	// A county reviewer of another exam area sees neither the page nor the report.
	other := newBrowser(t, "county0102", deskWidth, deskHeight)
	other.signIn(staffLogin(t, accounts.RoleCountyReviewer, "0102"), staffPassword)
	if st := other.open(reviewPath); st != http.StatusForbidden {
		t.Fatalf("another area's reviewer opened %s: %d", reviewPath, st)
	}
	other.see("无权进行此操作")
	if st := other.open(reviewPath + "/report"); st != http.StatusForbidden {
		t.Fatalf("another area's reviewer got the report: %d", st)
	}

	me.open("/me")
	me.see("待上传学历认证报告", "报告不清晰，请重新上传")
	me.click("上传学历认证报告")
	me.attach("学历认证报告", photoJPEG)
	me.fill("在线验证码", "ABCD1234EFGH")
	me.press("上传")
	me.see("区考办审核中")

	county.openFromInbox(name)
	if got := county.shownReport(); got != "IMG|200|image/jpeg|inline" {
		t.Fatalf("the image report in the page: %s", got)
	}
	county.press("通过")
	county.see("审核结果已提交")

	province := newBrowser(t, "province", deskWidth, deskHeight)
	province.signIn("province@example.com", demo.Password)
	province.openFromInbox(name)
	province.press("通过")
	me.until("/me", "预注册")

	ticket := confirmOnSite(t, id, name)
	me.open("/me")
	me.see("注册完成", "准考证号", ticket)
}

// 在籍注册: verified by name, ID number and an old ticket number, the
// applicant picks one of the records; the on-site check completes it with
// that ticket number.
func TestBrowserEnrolledPath(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	id, name := testenv.IDNumber(), randomName()
	social, system := fmt.Sprintf("0106%08d", rand.IntN(1e8)), fmt.Sprintf("0106%08d", rand.IntN(1e8))
	csv := "name,id_number,ticket_number,major_code,major_name,level,exam_area_code,source\n" +
		fmt.Sprintf("%s,%s,%s,120402,行政管理,zhuanshengben,0106,social\n", name, id, social) +
		fmt.Sprintf("%s,%s,%s,590201,行政管理,zhuanke,0106,system\n", name, id, system)
	if _, err := enrolled.NewStore(database).Import(context.Background(), strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	me.click("在籍注册")
	me.fill("姓名", name)
	me.fill("身份证号", id)
	me.fill("原准考证号", social)
	me.press("验证")
	me.see(social, system)
	me.tick(system)
	me.fill("手机号码", "13912345678")
	me.tick("我已阅读并同意")
	if st := me.press("提交注册"); st != 200 {
		t.Fatalf("submit answered %d: %s", st, me.text())
	}
	me.until("/me", "预注册")
	me.see("在籍注册", system)

	if ticket := confirmOnSite(t, id, name); ticket != system {
		t.Fatalf("ticket %s, want the selected %s", ticket, system)
	}
	me.open("/me")
	me.see("注册完成", system)
}

// 专科: no diploma check; pre-registered at once, confirmed on site.
func TestBrowserZhuankePath(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	id, name := testenv.IDNumber(), randomName()
	me.registerZhuanke(name, id)
	me.see("请于", "现场确认")
	ticket := confirmOnSite(t, id, name)
	me.open("/me")
	me.see("注册完成", ticket)
}

// A bad ID number is refused with its message beside the field; what was
// typed stays; nothing is registered.
func TestBrowserBadIDNumber(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	name := randomName()
	me.click("新生注册")
	me.fillNew(name, testenv.IDNumber(), "专科")
	bad := []byte(me.value("身份证号")) // valid: another check character makes it wrong
	if bad[17] == '0' {
		bad[17] = '1'
	} else {
		bad[17] = '0'
	}
	me.fill("身份证号", string(bad))
	me.tick("我已阅读并同意")
	if st := me.press("提交注册"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a bad ID number answered %d", st)
	}
	if msg := me.fieldError("身份证号"); msg != "身份证号校验位不正确" {
		t.Fatalf("beside 身份证号: %q", msg)
	}
	me.see("提交的信息有误")
	if got := me.value("姓名"); got != name {
		t.Fatalf("姓名 after the refusal: %q", got)
	}
	if got := me.value("身份证号"); got != string(bad) {
		t.Fatalf("身份证号 after the refusal: %q", got)
	}
	me.open("/me")
	me.see("您还没有进行中的注册", "新生注册")
}

// A form posted to the site from a page of another origin is refused
// (CrossOriginProtection) and changes nothing; the applicant's own 撤销注册
// asks for confirmation and withdraws.
func TestBrowserCrossSiteAndWithdrawal(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	me.registerZhuanke(randomName(), testenv.IDNumber())

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>领奖</title>
<form method="post" action="%s"><input type="hidden" name="key" value="evil"><button>领取奖品</button></form>`, pageURL("/me/withdraw"))
	}))
	defer evil.Close()
	me.do(chromedp.Navigate(evil.URL))
	me.last = evil.URL
	if st := me.press("领取奖品"); st != http.StatusForbidden {
		t.Fatalf("a cross-site post answered %d: %s", st, me.text())
	}
	me.see("跨站请求已被拒绝")
	me.open("/me")
	me.see("预注册")

	me.press("撤销注册") // the confirmation dialog is accepted (newBrowser)
	me.see("本次注册已撤销", "已撤销")
	me.open("/me")
	me.see("新生注册", "在籍注册")
}

// On a phone (390×844) the applicant's pages fit the width: no horizontal
// scrolling, refusals included.
func TestBrowserPhoneLayout(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	fits := func() {
		t.Helper()
		got := run(me, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if got[0] > got[1] {
			t.Errorf("%s: %d px wide in a %d px viewport", me.last, got[0], got[1])
		}
	}
	for _, path := range []string{"/", "/login", "/signup", "/password/forgot"} {
		me.open(path)
		fits()
	}
	me.signUp()
	fits()
	for _, path := range []string{"/me/new", "/me/enrolled", "/password", "/me/report"} {
		me.open(path)
		fits()
	}
	me.open("/me/new")
	me.press("提交注册") // every field refused
	me.see("提交的信息有误")
	fits()
	me.fillNew(randomName(), testenv.IDNumber(), "本科(专升本)")
	me.fill("专科毕业学校", "湖北大学")
	me.fill("专科毕业证号", "104871201806000999")
	me.tick("我已阅读并同意")
	me.press("提交注册")
	me.until("/me", "待上传学历认证报告")
	fits()
	me.click("上传学历认证报告")
	fits()
}

// signUp creates an applicant account on the 注册账号 page; the applicant
// lands on "my registration".
func (b *browser) signUp() string {
	b.t.Helper()
	qs, err := catalog.New(database).SecurityQuestions(context.Background())
	if err != nil || len(qs) == 0 {
		b.t.Fatalf("security questions: %v", err)
	}
	login := "b-" + uuid.NewString()[:8] + "@example.com"
	b.open("/")
	b.click("注册账号")
	b.fill("登录名", login)
	b.fill("密码", "secret1")
	b.fill("确认密码", "secret1")
	b.choose("密保问题", qs[0].Text)
	b.fill("密保答案", "李华")
	if st := b.press("注册账号"); st != 200 || b.last != "/me" {
		b.t.Fatalf("sign-up answered %d on %s: %s", st, b.last, b.text())
	}
	b.see(login, "退出登录")
	return login
}

// registerZhuanke registers a person for 专科 in exam area 0106 from the
// applicant's page, and waits for 预注册.
func (b *browser) registerZhuanke(name, id string) {
	b.t.Helper()
	b.click("新生注册")
	b.fillNew(name, id, "专科")
	b.tick("我已阅读并同意")
	b.press("提交注册")
	b.until("/me", "预注册")
}

// fillNew fills the form 新生注册 for a person, at a level, in exam area 0106.
func (b *browser) fillNew(name, id, level string) {
	b.t.Helper()
	n, err := idcard.Parse(id, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	levelCode := map[string]string{"专科": catalog.LevelZhuanke, "本科(专升本)": catalog.LevelZhuanshengben}[level]
	majors, err := catalog.New(database).Majors(context.Background(), levelCode)
	if err != nil || len(majors) == 0 {
		b.t.Fatalf("majors: %v", err)
	}
	b.fill("姓名", name)
	b.fill("身份证号", id)
	b.choose("性别", map[string]string{"male": "男", "female": "女"}[n.Gender()])
	b.fill("出生日期", n.BirthDate().Format(time.DateOnly))
	b.fill("民族", "汉族")
	b.fill("手机号码", "13800000000")
	b.fill("通讯地址", "武汉市武昌区")
	b.choose("报考层次", level)
	b.choose("专业", majors[0].Name+"（"+majors[0].HostSchool)
	b.choose("考区", "（0106）")
}

// openFromInbox finds the registration of name in the reviewer's inbox,
// paging on, and opens its review page.
func (b *browser) openFromInbox(name string) {
	b.t.Helper()
	b.open("/reviews")
	for {
		link := fmt.Sprintf(`//a[normalize-space(.)=%s]`, xq(name))
		if b.count(link) > 0 {
			b.click(name)
			return
		}
		if b.count(`//a[normalize-space(.)='下一页']`) == 0 {
			b.t.Fatalf("%s: %s is not in the inbox:\n%s", b.who, name, b.text())
		}
		b.click("下一页")
	}
}

// count is the number of elements an XPath finds.
func (b *browser) count(xpath string) int {
	b.t.Helper()
	return run(b, chromedp.Evaluate[int](fmt.Sprintf(
		`document.evaluate(%q, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null).snapshotLength`, xpath)))
}

// shownReport describes the report shown in the review page: the element,
// and the status, content type and disposition its address answers with.
func (b *browser) shownReport() string {
	b.t.Helper()
	return run(b, chromedp.Evaluate[string](`(async function () {
		var el = document.getElementById("report");
		if (!el) return "none";
		var r = await fetch(el.getAttribute("src"));
		return el.tagName + "|" + r.status + "|" + r.headers.get("content-type") + "|" + (r.headers.get("content-disposition") || "").split(";")[0];
	})()`, chromedp.EvalAwaitPromise))
}

// confirmOnSite has the on-site operator of 0106 find the registration by
// ID number and confirm it with a photo; it returns the ticket number shown.
func confirmOnSite(t *testing.T, id, name string) string {
	t.Helper()
	return confirmOnSiteAs(t, "onsite0106@example.com", demo.Password, id, name)
}

// confirmOnSiteAs is confirmOnSite at the desk of the operator login.
func confirmOnSiteAs(t *testing.T, login, password, id, name string) string {
	t.Helper()
	desk := newBrowser(t, "onsite", deskWidth, deskHeight)
	desk.signIn(login, password)
	if desk.last != "/onsite" {
		t.Fatalf("an on-site operator lands on %s", desk.last)
	}
	desk.fill("身份证号", id)
	desk.press("查询")
	desk.click(name)
	desk.fill("身份证读卡号码", id)
	desk.fill("姓名", name)
	desk.attach("现场照片", reportPDF) // not a JPEG: the page does not send it
	desk.pressHere("确认通过")
	desk.soon("现场照片须为 JPEG 格式")
	if !strings.HasPrefix(desk.last, "/onsite/") || desk.count(`//button[normalize-space(.)='确认通过']`) != 1 {
		t.Fatalf("a PDF photo left the page: %s", desk.last)
	}
	if desk.count(`//img[@id='photo-preview' and not(@hidden)]`) != 0 {
		t.Error("a PDF photo is previewed as an image")
	}
	desk.attach("现场照片", photoJPEG)
	if st := desk.press("确认通过"); st != 200 {
		t.Fatalf("the on-site check answered %d: %s", st, desk.text())
	}
	desk.see("现场确认完成", "注册完成", "准考证号")
	ticket := run(desk, chromedp.Text(chromedp.ID("ticket-number")))
	if len(ticket) != 12 {
		t.Fatalf("ticket number %q", ticket)
	}
	return ticket
}

// randomName is a Chinese name unlikely to be another test's.
func randomName() string {
	surnames := []rune("赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许")
	given := []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰")
	return string([]rune{surnames[rand.IntN(len(surnames))], given[rand.IntN(len(given))], given[rand.IntN(len(given))]})
}

// Browser sessions: an HttpOnly, SameSite=Lax cookie holding a server-side
// session; a password change ends the other browsers' sessions and keeps
// this one; 退出登录 ends it.
func TestBrowserSessions(t *testing.T) {
	a := newBrowser(t, "first", deskWidth, deskHeight)
	login := a.signUp()
	cookies, err := chromedp.Call(a.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "zikao_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Secure {
		t.Fatalf("session cookie: %+v", session)
	}

	b := newBrowser(t, "second", deskWidth, deskHeight)
	b.signIn(login, "secret1")
	if b.last != "/me" {
		t.Fatalf("an applicant lands on %s", b.last)
	}
	a.open("/password")
	a.fill("原密码", "wrong-one")
	a.fill("新密码", "secret2")
	if st := a.press("修改密码"); st != http.StatusUnauthorized {
		t.Fatalf("a wrong old password answered %d", st)
	}
	if msg := a.fieldError("原密码"); msg != "原密码错误" {
		t.Fatalf("beside 原密码: %q", msg)
	}
	a.fill("原密码", "secret1")
	a.fill("新密码", "secret2")
	a.press("修改密码")
	a.see("密码已修改")
	a.open("/me")
	if a.last != "/me" {
		t.Fatalf("the browser that changed the password was signed out: %s", a.last)
	}
	b.open("/me")
	if !strings.HasPrefix(b.last, "/login") {
		t.Fatalf("the other browser is still signed in after the password change: %s", b.last)
	}

	a.press("退出登录")
	if a.last != "/login" {
		t.Fatalf("退出登录 leads to %s", a.last)
	}
	// The old cookie, sent again, opens nothing: the server ended the session.
	_, err = chromedp.Call(a.ctx, network.SetCookie, network.SetCookieParams{Name: "zikao_session", Value: session.Value,
		Domain: session.Domain, Path: "/", HTTPOnly: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	a.open("/me")
	if !strings.HasPrefix(a.last, "/login") {
		t.Fatalf("a session ended by 退出登录 still opens %s", a.last)
	}
	a.signIn(login, "secret2")
	a.see("我的注册")

	// 忘记密码: the security question and its answer.
	a.press("退出登录")
	a.click("忘记密码")
	qs, err := catalog.New(database).SecurityQuestions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, answer := range []string{"王华", "李华"} { // a wrong answer, then the right one
		a.fill("登录名", login)
		a.choose("密保问题", qs[0].Text)
		a.fill("密保答案", answer)
		a.fill("新密码", "secret3")
		st := a.press("重置密码")
		if i == 0 {
			if st != http.StatusUnauthorized || a.value("登录名") != login {
				t.Fatalf("a wrong answer answered %d, login name %q", st, a.value("登录名"))
			}
			a.see("密码找回信息不正确")
		}
	}
	a.see("密码已重置")
	a.signIn(login, "secret3")
	a.see("我的注册")
}

// Enrolment look-ups on the page count against the same limit as the JSON
// API's (5 answers that reveal something, per account): the sixth is
// refused at the top of the form, with what was typed kept.
func TestBrowserLookupsThrottled(t *testing.T) {
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	me.open("/me/enrolled")
	name, id := randomName(), testenv.IDNumber()
	for i := range 6 {
		me.fill("姓名", name)
		me.fill("身份证号", id)
		me.fill("原准考证号", "010699999999")
		st := me.press("验证")
		switch {
		case i < 5 && st != http.StatusNotFound:
			t.Fatalf("look-up %d answered %d: %s", i+1, st, me.text())
		case i < 5:
			me.see("未找到匹配的在籍信息")
		case st != http.StatusTooManyRequests:
			t.Fatalf("the sixth look-up answered %d: %s", st, me.text())
		}
	}
	me.see("尝试次数过多")
	if me.value("身份证号") != id || me.value("姓名") != name {
		t.Fatal("the typed values were not kept")
	}
}
