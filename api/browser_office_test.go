package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"zikao/internal/accounts"
	"zikao/internal/demo"
	"zikao/internal/testenv"
)

// The exam offices' pages (issue 9): 作废 on the review page, and the
// reviewers' search by ID number (browser_helpers_test.go).

// Someone registers with another person's ID number; the county reviewer
// of the area finds it by that ID number and annuls it with a reason (a
// blank reason is refused beside 作废原因); the registrant sees 已作废, the
// reason and where to turn; the ID number's owner then registers with it.
func TestBrowserAnnulment(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	idB, nameB := testenv.IDNumber(), randomName()
	a := newBrowser(t, "impostor", deskWidth, deskHeight)
	a.signUp()
	a.registerZhuanke(nameB, idB)

	county := newBrowser(t, "county", deskWidth, deskHeight)
	county.signIn("county0106@example.com", demo.Password)
	county.search(idB)
	if got := county.results(); len(got) != 1 || got[0] != nameB+"|预注册|0106" {
		t.Fatalf("search results: %q", got)
	}
	county.click(nameB)
	if !strings.HasPrefix(county.last, "/reviews/") {
		t.Fatalf("the search result leads to %s", county.last)
	}
	reviewPath := county.last
	county.see(nameB, idB, "预注册")
	if n := county.count(`//button[normalize-space(.)='通过' or normalize-space(.)='不通过']`); n != 0 {
		t.Fatalf("a pre-registered registration offers the county's decision (%d buttons)", n)
	}

	if n := county.count(`//form[starts-with(@data-confirm, '确定作废')][.//button[normalize-space(.)='作废']]`); n != 1 {
		t.Fatalf("作废 does not ask for confirmation (%d forms)", n)
	}
	county.fill("作废原因", "   ") // blank: refused beside the field, kept, nothing changed
	if st := county.press("作废"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a blank reason answered %d: %s", st, county.text())
	}
	if msg := county.fieldError("作废原因"); msg != "请填写作废的原因" {
		t.Fatalf("beside 作废原因: %q", msg)
	}
	if got := county.value("作废原因"); got != "   " {
		t.Fatalf("作废原因 after the refusal: %q", got)
	}
	county.see("预注册")

	reason := "冒用他人身份证号注册，经本人举报核实"
	county.fill("作废原因", reason)
	if st := county.press("作废"); st != 200 || county.last != reviewPath+"?done=annulled" { // the confirmation is accepted (newBrowser)
		t.Fatalf("作废 answered %d on %s: %s", st, county.last, county.text())
	}
	county.see("该注册已作废", "已作废", "作废原因："+reason, "经办：county0106@example.com", "该注册已结束")
	if n := county.count(`//button[normalize-space(.)='作废']`); n != 0 {
		t.Fatalf("an annulled registration still offers 作废")
	}

	a.open("/me")
	a.see("已作废", "作废原因："+reason, "请联系考区办公室", "新生注册", "在籍注册")
	if strings.Contains(a.text(), "经办") {
		t.Fatalf("the applicant sees who acted: %s", a.text())
	}

	b := newBrowser(t, "owner", deskWidth, deskHeight)
	b.signUp()
	b.click("新生注册")
	b.fillNew(nameB, idB, "专科")
	b.tick("我已阅读并同意")
	if st := b.press("提交注册"); st != 200 {
		t.Fatalf("the owner's registration answered %d: %s", st, b.text())
	}
	b.until("/me", "预注册")

	county.search(idB) // newest first
	if got := county.results(); len(got) != 2 || got[0] != nameB+"|预注册|0106" || got[1] != nameB+"|已作废|0106" {
		t.Fatalf("search results: %q", got)
	}
}

// A provincial reviewer annuls from the review page; a county reviewer of
// another exam area neither finds the registration nor opens it; a county
// reviewer whose page is out of date is told it is closed; on-site
// operators have no search page.
func TestBrowserAnnulmentByProvince(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	id, name := testenv.IDNumber(), randomName()
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	me.registerZhuanke(name, id)

	other := newBrowser(t, "county0102", deskWidth, deskHeight)
	other.signIn(staffLogin(t, accounts.RoleCountyReviewer, "0102"), staffPassword)
	other.search(id)
	other.see("本考区（0102）没有该身份证号的注册")

	province := newBrowser(t, "province", deskWidth, deskHeight)
	province.signIn("province@example.com", demo.Password)
	province.search(id)
	if got := province.results(); len(got) != 1 || got[0] != name+"|预注册|0106" {
		t.Fatalf("search results: %q", got)
	}
	province.click(name)
	reviewPath := province.last
	if st := other.open(reviewPath); st != http.StatusForbidden {
		t.Fatalf("another area's reviewer opened %s: %d", reviewPath, st)
	}
	other.see("无权进行此操作")

	county := newBrowser(t, "county", deskWidth, deskHeight) // opens the page before the province annuls
	county.signIn("county0106@example.com", demo.Password)
	county.open(reviewPath)

	province.fill("作废原因", "身份信息与本人不符")
	province.press("作废")
	province.see("该注册已作废", "已作废", "作废原因：身份信息与本人不符", "经办：province@example.com")

	county.fill("作废原因", "重复作废")
	if st := county.press("作废"); st != http.StatusConflict {
		t.Fatalf("annulling a closed registration answered %d: %s", st, county.text())
	}
	county.see("本次注册已结束", "已作废", "作废原因：身份信息与本人不符")
	me.open("/me")
	me.see("已作废", "作废原因：身份信息与本人不符")

	desk := newBrowser(t, "onsite", deskWidth, deskHeight)
	desk.signIn("onsite0106@example.com", demo.Password)
	if st := desk.open("/search?id_number=" + id); st != http.StatusForbidden {
		t.Fatalf("an on-site operator opened the search page: %d", st)
	}
	if st := desk.open(reviewPath); st != http.StatusForbidden {
		t.Fatalf("an on-site operator opened the review page: %d", st)
	}
}

// Searches by ID number on the page count against the same limit as the
// JSON search: a search that finds nothing is a miss, and after the limit
// the page refuses, keeping what was typed.
func TestBrowserSearchThrottled(t *testing.T) {
	county := newBrowser(t, "county", deskWidth, deskHeight)
	county.signIn(staffLogin(t, accounts.RoleCountyReviewer, "0106"), staffPassword)
	limit := server.StaffLookupLimits.PerLogin.Max
	county.search(testenv.IDNumber()) // through the header's link
	county.see("没有该身份证号的注册")
	for range limit - 1 {
		county.open("/search?id_number=" + testenv.IDNumber())
		county.see("没有该身份证号的注册")
	}
	id := testenv.IDNumber()
	county.open("/search")
	county.fill("身份证号", id)
	if st := county.press("查询"); st != http.StatusTooManyRequests {
		t.Fatalf("search %d answered %d: %s", limit+1, st, county.text())
	}
	county.see("尝试次数过多")
	if county.value("身份证号") != id {
		t.Fatal("the typed ID number was not kept")
	}
}

// search looks an ID number up on the page 按身份证号查询, reached from the
// header.
func (b *browser) search(id string) {
	b.t.Helper()
	b.open("/reviews")
	b.click("按身份证号查询")
	b.fill("身份证号", id)
	if st := b.press("查询"); st != 200 {
		b.t.Fatalf("%s: 查询 answered %d: %s", b.who, st, b.text())
	}
}

// results are the rows of the search results: name|status|exam area.
func (b *browser) results() []string {
	b.t.Helper()
	return run(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#search-results tbody tr")).map(function (tr) {
		var td = tr.querySelectorAll("td");
		return [td[0].innerText.trim(), td[1].innerText.trim(), td[2].innerText.trim()].join("|");
	})`))
}
