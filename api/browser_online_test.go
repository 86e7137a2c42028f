package api_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"zikao/internal/accounts"
	"zikao/internal/demo"
	"zikao/internal/identity"
	"zikao/internal/testenv"
)

// Online identity verification (网上验证) in Chromium: the applicant's page
// on a phone, a match, failed tries, and the office's manual check
// (人工核验) with the files shown in the page.

// tryPaths are the files of a try on disk, for the file inputs.
type tryPaths struct{ card, video, portrait string }

// writeTry writes the files of a try: the portrait of seed, and the ID card
// photo of cardSeed (the same seed matches, another does not).
func writeTry(t *testing.T, seed, cardSeed int) tryPaths {
	t.Helper()
	dir := t.TempDir()
	p := tryPaths{card: filepath.Join(dir, "idcard.jpg"), video: filepath.Join(dir, "video.mp4"), portrait: filepath.Join(dir, "portrait.jpg")}
	for path, data := range map[string][]byte{p.card: identity.SampleIDCardPhoto(cardSeed), p.video: identity.SampleVideo(4096),
		p.portrait: identity.SamplePortrait(seed)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// onlineIDNumber is a fresh ID number the identity records know (the
// stand-in answers not_in_records for digits 15–17 "999").
func onlineIDNumber() string {
	for {
		if id := testenv.IDNumber(); id[14:17] != identity.NotInRecordsSequence {
			return id
		}
	}
}

// attachTry chooses the three files on the page 网上验证.
func (b *browser) attachTry(p tryPaths) {
	b.t.Helper()
	b.attach("身份证人像面照片", p.card)
	b.attach("朗读视频", p.video)
	b.attach("电子证件照", p.portrait)
}

var fourDigits = regexp.MustCompile(`^[0-9]{4}$`)

// challenge is the challenge the page 网上验证 holds: its id and the digits
// shown, which must be 4 digits shown large.
func (b *browser) challenge() (id, digits string) {
	b.t.Helper()
	b.see("朗读数字")
	got := run(b, chromedp.Evaluate[[]string](`(function () {
		var d = document.querySelector(".digits"), c = document.querySelector("input[name=challenge_id]");
		return [c ? c.value : "", d ? d.textContent.trim() : "", d ? getComputedStyle(d).fontSize : ""];
	})()`))
	if !fourDigits.MatchString(got[1]) || got[0] == "" {
		b.t.Fatalf("%s on %s: challenge %q, digits %q", b.who, b.last, got[0], got[1])
	}
	if px, err := strconv.ParseFloat(strings.TrimSuffix(got[2], "px"), 64); err != nil || px < 32 {
		b.t.Errorf("%s on %s: the digits are %s high", b.who, b.last, got[2])
	}
	return got[0], got[1]
}

// ticket is the 12-digit ticket number shown on "my registration", under
// 准考证号 and under 我的准考证号.
func (b *browser) ticket() string {
	b.t.Helper()
	b.see("准考证号", "我的准考证号")
	got := run(b, chromedp.Evaluate[[]string](`[document.getElementById("ticket-number").textContent.trim(),
		document.getElementById("my-tickets").innerText]`))
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(got[0]) || !strings.Contains(got[1], got[0]) {
		b.t.Fatalf("%s on %s: ticket %q; 我的准考证号: %q", b.who, b.last, got[0], got[1])
	}
	return got[0]
}

// A phone (390 px): the applicant registers 专科, opens 网上验证 from my
// registration, reads the digits, attaches the three files and presses
// 提交验证: the registration is complete, with its ticket number under
// 我的准考证号. Nothing scrolls sideways.
func TestBrowserOnlineMatch(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	files := writeTry(t, 101, 101)
	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	me.signUp()
	me.registerZhuanke(randomName(), onlineIDNumber())
	me.see("网上验证", "剩余 3 次", "我的准考证号")
	me.fitsPhone()
	me.click("网上验证")
	if me.last != "/me/online" {
		t.Fatalf("网上验证 leads to %s", me.last)
	}
	me.challenge()
	me.see("身份证人像面照片", "朗读视频", "电子证件照", "480×640", "100 KB", "20 MB", "5 MB", "剩余 3 次")
	me.fitsPhone()
	attrs := run(me, chromedp.Evaluate[[]string](`["id_card_photo", "video", "portrait"].map(function (id) {
		var e = document.getElementById(id);
		return e.type + "|" + e.accept + "|" + (e.getAttribute("capture") || "");
	})`))
	if want := []string{"file|image/jpeg,image/png|", "file|video/*|user", "file|image/jpeg|"}; fmt.Sprint(attrs) != fmt.Sprint(want) {
		t.Errorf("the file inputs: %q, want %q", attrs, want)
	}
	me.attachTry(files)
	if st := me.press("提交验证"); st != http.StatusOK || me.last != "/me?done=online" {
		t.Fatalf("a matching try answered %d on %s: %s", st, me.last, me.text())
	}
	me.see("网上验证通过，注册完成", "注册完成")
	me.ticket()
	me.fitsPhone()
}

// A phone: a try without the video is refused beside 朗读视频 and uses no
// try (the same digits stay); a portrait of the wrong size is caught by the
// page before it is sent; the ID card photo of another person is a failed
// try: 验证未通过, 人脸比对不一致, 剩余 2 次, and new digits.
func TestBrowserOnlineMismatch(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	files := writeTry(t, 202, 203)
	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	me.signUp()
	me.registerZhuanke(randomName(), onlineIDNumber())
	me.click("网上验证")
	first, digits := me.challenge()

	me.attach("身份证人像面照片", files.card)
	me.attach("电子证件照", files.portrait)
	if st := me.press("提交验证"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a try without its video answered %d: %s", st, me.text())
	}
	if msg := me.fieldError("朗读视频"); msg != "请上传朗读视频" {
		t.Fatalf("beside 朗读视频: %q", msg)
	}
	me.see("提交的信息有误", "剩余 3 次")
	if id, again := me.challenge(); id != first || again != digits {
		t.Errorf("a refused try changed the digits: %s %s, then %s %s", first, digits, id, again)
	}
	me.fitsPhone()

	me.attach("电子证件照", files.card) // 358×441: not a portrait
	me.soon("须为 480×640 像素")
	me.pressHere("提交验证")
	if me.last != "/me/online" || !strings.Contains(me.fieldError("电子证件照"), "480×640") {
		t.Fatalf("a portrait of the wrong size left the page: %s, %q", me.last, me.fieldError("电子证件照"))
	}

	me.attachTry(files)
	if st := me.press("提交验证"); st != http.StatusOK {
		t.Fatalf("a mismatching try answered %d: %s", st, me.text())
	}
	me.see("验证未通过", "人脸比对不一致", "剩余 2 次")
	if id, _ := me.challenge(); id == first {
		t.Error("a failed try kept its challenge")
	}
	me.fitsPhone()
	me.open("/me")
	me.see("上次网上验证未通过：人脸比对不一致", "剩余 2 次", "预注册")
}

// Three failed tries close online verification; the applicant asks for the
// manual check (人工核验中). The county reviewer of the area finds it under
// 人工核验, sees the name and ID number beside both photos (loaded) and the
// video; a refusal without a reason is refused on the page; 核验通过
// completes the registration, with its ticket number. A county reviewer of
// another area sees neither the page nor the files.
func TestBrowserOnlineManualCheck(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	files := writeTry(t, 303, 304)
	me := newBrowser(t, "applicant", deskWidth, deskHeight)
	me.signUp()
	id, name := onlineIDNumber(), randomName()
	me.registerZhuanke(name, id)
	for left := 2; left >= 0; left-- {
		me.open("/me")
		me.click("网上验证")
		me.challenge()
		me.attachTry(files)
		if st := me.press("提交验证"); st != http.StatusOK {
			t.Fatalf("try answered %d: %s", st, me.text())
		}
		me.see("验证未通过", "人脸比对不一致")
		if left > 0 {
			me.see(fmt.Sprintf("剩余 %d 次", left))
		}
	}
	me.see("网上验证已关闭", "申请人工核验")
	if me.count(`//button[normalize-space(.)='提交验证']`) != 0 {
		t.Fatal("the form stays after the third failed try")
	}
	me.open("/me")
	if me.count(`//a[normalize-space(.)='网上验证']`) != 0 {
		t.Error("网上验证 is offered after three failed tries")
	}
	me.press("申请人工核验")
	me.see("已申请人工核验", "人工核验中")

	county := newBrowser(t, "county", deskWidth, deskHeight)
	county.signIn("county0106@example.com", demo.Password)
	county.click("人工核验")
	county.see("待人工核验")
	for link := fmt.Sprintf(`//a[normalize-space(.)=%s]`, xq(name)); county.count(link) == 0; {
		if county.count(`//a[normalize-space(.)='下一页']`) == 0 {
			t.Fatalf("%s is not in the identity inbox:\n%s", name, county.text())
		}
		county.click("下一页")
	}
	county.click(name)
	page := county.last
	regID := strings.TrimSuffix(strings.TrimPrefix(page, "/reviews/"), "/identity")
	// The review page and the search by ID number lead here too.
	county.open("/reviews/" + regID)
	county.see("人工核验中")
	county.click("进行人工核验")
	county.open("/search?id_number=" + id)
	county.click("进行人工核验")
	if county.last != page {
		t.Fatalf("the search's 进行人工核验 leads to %s, the inbox's to %s", county.last, page)
	}
	if !strings.HasPrefix(page, "/reviews/") || !strings.HasSuffix(page, "/identity") {
		t.Fatalf("the inbox leads to %s", page)
	}
	county.see(name, id, "0106", "核验通过", "核验不通过", "不通过原因")
	widths := run(county, chromedp.Evaluate[[]int](`(async function () {
		var imgs = Array.from(document.querySelectorAll(".identity-media img"));
		await Promise.all(imgs.map(function (i) {
			return i.complete ? null : new Promise(function (done) { i.onload = i.onerror = done; });
		}));
		return imgs.map(function (i) { return i.naturalWidth; });
	})()`, chromedp.EvalAwaitPromise))
	if len(widths) != 2 || widths[0] == 0 || widths[1] == 0 {
		t.Fatalf("the two photos in the page: natural widths %v", widths)
	}
	video := run(county, chromedp.Evaluate[string](`(async function () {
		var v = document.querySelectorAll(".identity-media video[controls]");
		if (v.length !== 1) return "videos: " + v.length;
		var r = await fetch(v[0].getAttribute("src"));
		return r.status + "|" + r.headers.get("content-type") + "|" + r.headers.get("cache-control");
	})()`, chromedp.EvalAwaitPromise))
	if video != "200|video/mp4|private, no-store" {
		t.Fatalf("the video in the page: %s", video)
	}

	other := newBrowser(t, "county0102", deskWidth, deskHeight)
	other.signIn(staffLogin(t, accounts.RoleCountyReviewer, "0102"), staffPassword)
	for _, path := range []string{page, page + "/portrait"} {
		if st := other.open(path); st != http.StatusForbidden {
			t.Fatalf("another area's reviewer opened %s: %d", path, st)
		}
	}

	if st := county.press("核验不通过"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a refusal without a reason answered %d", st)
	}
	if county.fieldError("不通过原因") == "" || county.count(`//button[normalize-space(.)='核验通过']`) != 1 {
		t.Fatalf("the refusal without a reason: %s", county.text())
	}
	county.press("核验通过")
	if !strings.HasPrefix(county.last, "/reviews?stage=identity") {
		t.Fatalf("after the decision the reviewer is on %s", county.last)
	}
	county.see("人工核验结果已提交")

	me.open("/me")
	me.see("注册完成", "人工核验通过")
	me.ticket()
}
