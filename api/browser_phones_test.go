package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/testenv"
)

// Phones and SMS in Chromium, on a phone (390 px): sign-up with a phone
// and its SMS code, sign-in by phone, 绑定手机, 通过手机找回, and
// 查询准考证. Codes are read from the SMS gateway's stand-in (smsTo). The
// numbers are 137… (the API's tests use 139…); a phone gets one code a
// minute, so each test asks once per number.

// pagePhone is a fresh mobile number of these tests.
func pagePhone() string { return fmt.Sprintf("137%08d", rand.IntN(1e8)) }

// masked is a phone as the pages show it: 137****5678.
func masked(phone string) string { return phone[:3] + "****" + phone[7:] }

// codeSent waits for the n-th text to phone and returns the code in the
// newest one.
func (b *browser) codeSent(phone string, n int) string {
	b.t.Helper()
	msgs := smsTo(b.t, phone, n)
	if len(msgs) < n {
		b.t.Fatalf("%s on %s: %d texts to %s, want %d", b.who, b.last, len(msgs), phone, n)
	}
	m := sixDigits.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		b.t.Fatalf("no code in %q", msgs[0].Text)
	}
	return m[2]
}

// setAccountPhone binds phone to the account of login (or unbinds it, for
// ""), straight in the database: for a setting that needs no SMS code.
func setAccountPhone(t *testing.T, login, phone string) {
	t.Helper()
	var arg any
	if phone != "" {
		arg = phone
	}
	res, err := database.ExecContext(context.Background(), `UPDATE accounts SET phone = $2 WHERE lower(login_name) = lower($1)`, login, arg)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("no account %s", login)
	}
}

// wrongCode is a code that is not code.
func wrongCode(code string) string {
	return fmt.Sprintf("%06d", (atoiCode(code)+1)%1_000_000)
}

func atoiCode(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

// Sign-up with a phone: 获取验证码 refuses a malformed number beside
// 手机号码; with a good one the page comes back with everything typed
// (passwords too: the form is not sent yet) and says the code was sent; a
// second code within the minute says how long to wait. A wrong code is
// refused beside 短信验证码; the right code, once another account holds the
// phone, is refused beside 手机号码 (phone_taken); then the account is
// created with the phone, shown masked, and signs in by the phone.
func TestBrowserSignUpWithPhone(t *testing.T) {
	qs, err := catalog.New(database).SecurityQuestions(context.Background())
	if err != nil || len(qs) == 0 {
		t.Fatalf("security questions: %v", err)
	}
	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	login, phone := "p-"+uuid.NewString()[:8]+"@example.com", pagePhone()
	me.open("/signup")
	me.fitsPhone()
	me.fill("登录名", login)
	me.fill("密码", "secret1")
	me.fill("确认密码", "secret1")
	me.choose("密保问题", qs[0].Text)
	me.fill("密保答案", "李华")
	me.fill("手机号码", "1370000")
	if st := me.press("获取验证码"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a malformed phone answered %d: %s", st, me.text())
	}
	if msg := me.fieldError("手机号码"); !strings.Contains(msg, "11位") {
		t.Fatalf("beside 手机号码: %q", msg)
	}
	me.fill("手机号码", phone)
	if st := me.press("获取验证码"); st != http.StatusOK || me.last != "/signup" {
		t.Fatalf("获取验证码 answered %d on %s: %s", st, me.last, me.text())
	}
	me.see("短信验证码已发送", "An SMS code was sent")
	for label, want := range map[string]string{"登录名": login, "密码": "secret1", "确认密码": "secret1", "密保答案": "李华", "手机号码": phone} {
		if got := me.value(label); got != want {
			t.Errorf("%s after 获取验证码: %q, want %q", label, got, want)
		}
	}
	me.fitsPhone()
	if st := me.press("获取验证码"); st != http.StatusTooManyRequests {
		t.Fatalf("a second code within the minute answered %d", st)
	}
	me.see("获取验证码过于频繁", "秒后再试", "try again in")
	code := me.codeSent(phone, 1)

	me.fill("短信验证码", wrongCode(code))
	if st := me.press("注册账号"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a wrong code answered %d: %s", st, me.text())
	}
	if msg := me.fieldError("短信验证码"); msg != "短信验证码错误、已过期或已使用，请重新获取" {
		t.Fatalf("beside 短信验证码: %q", msg)
	}
	me.see("提交的信息有误", "the SMS code is wrong")
	if me.value("密码") != "" || me.value("手机号码") != phone || me.value("登录名") != login {
		t.Errorf("after the refusal: password %q, phone %q, login %q", me.value("密码"), me.value("手机号码"), me.value("登录名"))
	}
	me.fitsPhone()

	// Another account binds the phone before the form is sent.
	other := "p-" + uuid.NewString()[:8] + "@example.com"
	if _, err := accounts.NewStore(database).SignUp(context.Background(), other, "secret1", qs[0].ID, "李华"); err != nil {
		t.Fatal(err)
	}
	setAccountPhone(t, other, phone)
	retype := func() {
		me.fill("密码", "secret1")
		me.fill("确认密码", "secret1")
		me.fill("密保答案", "李华")
		me.fill("短信验证码", code)
	}
	retype()
	if st := me.press("注册账号"); st != http.StatusConflict {
		t.Fatalf("a phone taken answered %d: %s", st, me.text())
	}
	if msg := me.fieldError("手机号码"); msg != "该手机号码已绑定其他账号" {
		t.Fatalf("beside 手机号码: %q", msg)
	}
	me.see("this phone number is bound to another account")

	setAccountPhone(t, other, "") // released: the code, unused, still serves
	retype()
	if st := me.press("注册账号"); st != http.StatusOK || me.last != "/me" {
		t.Fatalf("sign-up with the phone answered %d on %s: %s", st, me.last, me.text())
	}
	me.see(login, "退出登录", "我的准考证号", masked(phone))
	me.fitsPhone()

	me.press("退出登录")
	me.signIn(phone, "secret1")
	if me.last != "/me" {
		t.Fatalf("signing in by phone lands on %s", me.last)
	}
	me.see(login)
}

// 绑定手机 from the header of a signed-in applicant: the code, then Enter
// (the form's 绑定, not 获取验证码); the phone is shown masked there and on
// my registration, and signs in.
func TestBrowserBindPhone(t *testing.T) {
	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	login := me.signUp()
	me.click("绑定手机")
	if me.last != "/me/phone" {
		t.Fatalf("绑定手机 leads to %s", me.last)
	}
	me.see("您还没有绑定手机")
	me.fitsPhone()
	phone := pagePhone()
	me.fill("手机号码", phone)
	if st := me.press("获取验证码"); st != http.StatusOK {
		t.Fatalf("获取验证码 answered %d: %s", st, me.text())
	}
	me.see("短信验证码已发送")
	if me.value("手机号码") != phone {
		t.Fatalf("手机号码 after 获取验证码: %q", me.value("手机号码"))
	}
	me.fill("短信验证码", me.codeSent(phone, 1))
	// Enter in 短信验证码 is 绑定, not 获取验证码 (which would void the code).
	ctx, cancel := context.WithTimeout(me.ctx, step)
	resp, err := chromedp.RunResponse(ctx, chromedp.SendKeys(chromedp.ID(me.labelled("短信验证码")), kb.Enter))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if st := me.navigated(resp); st != http.StatusOK || me.last != "/me/phone?done=1" {
		t.Fatalf("Enter in 短信验证码 answered %d on %s: %s", st, me.last, me.text())
	}
	me.see("手机号码已绑定", "当前绑定的手机号码："+masked(phone))
	if strings.Contains(me.text(), phone) {
		t.Error("the page shows the whole number")
	}
	me.fitsPhone()
	me.open("/me")
	me.see(masked(phone))
	me.press("退出登录")
	me.signIn(phone, "secret1")
	me.see(login)
}

// 通过手机找回 from 忘记密码: an unknown number and a wrong code get the
// same answers as a bound one (code "sent"; 密码找回信息不正确); the right
// code sets the new password, ends the sessions of the account, and the
// new password signs in by phone.
func TestBrowserPhoneReset(t *testing.T) {
	old := newBrowser(t, "signed-in", phoneWidth, phoneHeight)
	login := old.signUp()
	phone, unknown := pagePhone(), pagePhone()
	setAccountPhone(t, login, phone)

	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	me.open("/login")
	me.click("忘记密码")
	me.click("通过手机找回")
	if me.last != "/password/forgot/phone" {
		t.Fatalf("通过手机找回 leads to %s", me.last)
	}
	me.fitsPhone()
	answers := map[string]string{}
	for _, p := range []string{unknown, phone} {
		me.fill("手机号码", p)
		if st := me.press("获取验证码"); st != http.StatusOK {
			t.Fatalf("获取验证码 for %s answered %d: %s", p, st, me.text())
		}
		me.see("短信验证码已发送")
		answers[p] = strings.ReplaceAll(me.text(), p, "PHONE")
		me.fill("短信验证码", "123456")
		me.fill("新密码", "secret9")
		if st := me.press("重置密码"); st != http.StatusUnauthorized {
			t.Fatalf("a wrong code for %s answered %d: %s", p, st, me.text())
		}
		me.see("密码找回信息不正确")
		if me.value("手机号码") != p || me.value("新密码") != "" {
			t.Fatalf("after the refusal: phone %q, new password %q", me.value("手机号码"), me.value("新密码"))
		}
	}
	if answers[unknown] != answers[phone] {
		t.Errorf("获取验证码 answers differently for a bound number:\n%s\n---\n%s", answers[phone], answers[unknown])
	}
	me.fitsPhone()
	code := me.codeSent(phone, 1)
	me.fill("短信验证码", code)
	me.fill("新密码", "secret9")
	if st := me.press("重置密码"); st != http.StatusOK || me.last != "/login?reset=1" {
		t.Fatalf("the reset answered %d on %s: %s", st, me.last, me.text())
	}
	me.see("密码已重置")
	if n := len(smsTo(t, unknown, 0)); n != 0 {
		t.Errorf("%d texts went to a number no account holds", n)
	}

	old.open("/me")
	if !strings.HasPrefix(old.last, "/login") {
		t.Fatalf("the session of before the reset still opens %s", old.last)
	}
	me.signIn(phone, "secret9")
	if me.last != "/me" {
		t.Fatalf("the new password by phone lands on %s", me.last)
	}
	me.see(login)
}

// 查询准考证 from home and sign in, without signing in: a person with a
// completed registration and an unknown one get the same page, the first
// an SMS with the ticket number (to the account's bound phone); a
// malformed ID number is refused beside 身份证号, what was typed kept; the
// fourth look-up of an ID number in a day is refused with how long to
// wait. The person's ticket number is listed under 我的准考证号.
func TestBrowserPhoneTicketLookup(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	known := registerPerson(t, "", randomName())
	ticket := known.confirmOnsite(t).str("ticket_number")
	phone := pagePhone()
	setAccountPhone(t, known.login, phone)

	me := newBrowser(t, "phone", phoneWidth, phoneHeight)
	me.open("/login")
	me.click("查询准考证")
	if me.last != "/ticket-lookup" {
		t.Fatalf("查询准考证 on the sign-in page leads to %s", me.last)
	}
	me.open("/")
	me.click("查询准考证")
	if me.last != "/ticket-lookup" {
		t.Fatalf("查询准考证 leads to %s", me.last)
	}
	me.fitsPhone()

	name, id := randomName(), testenv.IDNumber()
	me.fill("姓名", name)
	me.fill("身份证号", id[:17])
	if st := me.press("查询准考证"); st != http.StatusUnprocessableEntity {
		t.Fatalf("a short ID number answered %d: %s", st, me.text())
	}
	if msg := me.fieldError("身份证号"); msg != "身份证号格式不正确" {
		t.Fatalf("beside 身份证号: %q", msg)
	}
	if me.value("姓名") != name || me.value("身份证号") != id[:17] {
		t.Fatal("the typed values were not kept")
	}
	me.fitsPhone()

	lookUp := func(name, id string) string {
		t.Helper()
		me.fill("姓名", name)
		me.fill("身份证号", id)
		if st := me.press("查询准考证"); st != http.StatusOK || me.last != "/ticket-lookup?sent=1" {
			t.Fatalf("查询准考证 answered %d on %s: %s", st, me.last, me.text())
		}
		me.see("如果有匹配的已完成注册，准考证号已通过短信发送到绑定的手机号码", "If a completed registration matches")
		return me.text()
	}
	if a, b := lookUp(known.name, known.idNumber), lookUp(name, id); a != b {
		t.Errorf("the answers differ:\n%s\n---\n%s", a, b)
	}
	me.fitsPhone()
	sent := false
	for deadline := time.Now().Add(15 * time.Second); !sent && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, m := range smsTo(t, phone, 0) {
			sent = sent || strings.Contains(m.Text, "您查询的准考证号为"+ticket)
		}
	}
	if !sent {
		t.Fatalf("no text with the ticket number %s reached %s", ticket, phone)
	}

	lookUp(name, id)
	lookUp(name, id)
	me.fill("姓名", name)
	me.fill("身份证号", id)
	if st := me.press("查询准考证"); st != http.StatusTooManyRequests {
		t.Fatalf("the fourth look-up of an ID number answered %d: %s", st, me.text())
	}
	me.see("查询过于频繁，请", "小时后再试", "too many look-ups")
	if me.value("姓名") != name || me.value("身份证号") != id {
		t.Fatal("the typed values were not kept")
	}

	me.signIn(known.login, "secret1")
	me.see("我的准考证号", ticket, "新生注册 · 专科", masked(phone))
	me.fitsPhone()
}
