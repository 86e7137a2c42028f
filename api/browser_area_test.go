package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"zikao/internal/accounts"
	"zikao/internal/demo"
	"zikao/internal/testenv"
)

// The county office finds a registration by ID number; the page says it
// need not review it, only annul it or change its area; the form lists the
// other areas with their windows and offices; a blank reason is refused
// beside 变更原因; the change leaves the office's inbox and the applicant
// sees the new area.
func TestBrowserAreaChange(t *testing.T) {
	now := time.Now()
	openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	defer openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	newEnd := now.AddDate(0, 0, 12)
	setWindow(t, "0102", now.Add(-2*time.Hour), newEnd)

	id, name := testenv.IDNumber(), randomName()
	a := newBrowser(t, "applicant", deskWidth, deskHeight)
	a.signUp()
	a.registerZhuanke(name, id)

	county := newBrowser(t, "county", deskWidth, deskHeight)
	county.signIn("county0106@example.com", demo.Password)
	county.search(id)
	county.click(name)
	county.see("注册详情：作废或变更考区", "无需您审核", "作废原因", "新考区", "变更原因")
	if strings.Contains(county.text(), "审核学历认证报告") {
		t.Errorf("a page opened only to annul or move is titled as a review")
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	option := `//select[@id='exam_area_code']/option[@value='0102']`
	if n := county.count(option + `[contains(., '` + newEnd.In(shanghai).Format("2006年1月2日 15:04") + `')][contains(., '武汉市江岸区教育局自考办（样例地址）')]`); n != 1 {
		t.Fatalf("the option of 0102 does not show its window and office (%d)", n)
	}
	if n := county.count(`//select[@id='exam_area_code']/option[@value='0106']`); n != 0 {
		t.Fatalf("the registration's own area is offered")
	}

	county.choose("新考区", "江岸区")
	if st := county.press("变更考区"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a blank reason answered %d: %s", st, county.text())
	}
	if msg := county.fieldError("变更原因"); msg != "请填写变更原因" {
		t.Fatalf("beside 变更原因: %q", msg)
	}
	county.choose("新考区", "江岸区")
	county.fill("变更原因", "考生迁居江岸区")
	if st := county.press("变更考区"); st != 200 || county.last != "/reviews?done=area" {
		t.Fatalf("变更考区 answered %d on %s: %s", st, county.last, county.text())
	}
	county.see("考区已变更")
	county.screenshot()

	a.open("/me")
	a.see("江岸区", "考生迁居江岸区", "预注册")
	a.screenshot()

	// The new area's desk confirms it: one ticket, of the new area's code.
	ticket := confirmOnSiteAs(t, staffLogin(t, accounts.RoleOnsiteOperator, "0102"), staffPassword, id, name)
	if !strings.HasPrefix(ticket, "0102") {
		t.Errorf("ticket %s is not of the new area", ticket)
	}
	a.open("/me")
	a.see("注册完成", ticket)
}
