package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/testenv"
	"zikao/internal/throttle"
)

// Phones and SMS (api.md, 1.2): SMS codes, sign-up and sign-in with a
// phone, binding a phone, reset by SMS code, 查询准考证, my tickets and the
// texts of a registration's steps, through the API, with every text read
// back from the SMS gateway's stand-in (sms_test.go).
//
// The limits are per phone and per ID number, so every test takes phones
// of its own (newPhone) and fresh ID numbers; the tests that change a limit
// restore it and never run in parallel.

var (
	phoneSeq   atomic.Int64
	phonesMu   sync.Mutex
	testPhones = []string{"13800000000"} // every phone these tests used, for the metrics check
)

// newPhone is a mobile number no other test of this run uses.
func newPhone() string {
	p := fmt.Sprintf("1390%07d", phoneSeq.Add(1))
	phonesMu.Lock()
	testPhones = append(testPhones, p)
	phonesMu.Unlock()
	return p
}

// askCode asks for an SMS code (without reading it).
func askCode(t testing.TB, phone, purpose string) response {
	t.Helper()
	return caller{t: t}.json(http.MethodPost, "/sms-codes", map[string]string{"phone": phone, "purpose": purpose})
}

// wantAccepted checks a 202 {} (the answer of sms-codes and ticket-lookups
// whatever happened).
func wantAccepted(t testing.TB, r response) {
	t.Helper()
	want(t, r, http.StatusAccepted, "")
	if string(bytes.TrimSpace(r.raw)) != "{}" {
		t.Fatalf("202 with %s, want {}", r.raw)
	}
}

// wantTooMany checks a 429 too_many_attempts with a Retry-After of at
// least one second and at most max.
func wantTooMany(t testing.TB, r response, max time.Duration) time.Duration {
	t.Helper()
	want(t, r, http.StatusTooManyRequests, "too_many_attempts")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > max {
		t.Fatalf("Retry-After %q, want 1 s to %s", r.header.Get("Retry-After"), max)
	}
	return time.Duration(secs) * time.Second
}

// wantField checks a 422 validation_failed naming field.
func wantField(t testing.TB, r response, field string) {
	t.Helper()
	want(t, r, http.StatusUnprocessableEntity, "validation_failed")
	fields, _ := r.body["error"].(map[string]any)["fields"].(map[string]any)
	if s, _ := fields[field].(string); s == "" {
		t.Fatalf("422 without field %s: %s", field, r.raw)
	}
}

// allowCodesAtOnce lifts the one-code-per-phone-per-minute limit for the
// test, for tests that need several codes to one phone.
func allowCodesAtOnce(t *testing.T) {
	saved := server.Accounts.SMSLimits.PhoneMinute
	server.Accounts.SMSLimits.PhoneMinute.Max = 1 << 20
	t.Cleanup(func() { server.Accounts.SMSLimits.PhoneMinute = saved })
}

// smsCount is how many texts to phone the stand-in has now.
func smsCount(t testing.TB, phone string) int {
	t.Helper()
	return len(smsTo(t, phone, 0))
}

// wantNoMoreSMS checks that phone gets no text beyond its n: none is waiting
// in the outbox, and none reaches the stand-in in the next half second.
func wantNoMoreSMS(t testing.TB, phone string, n int) {
	t.Helper()
	var queued int
	if err := database.Get(&queued, `SELECT count(*) FROM sms_outbox WHERE phone = $1`, phone); err != nil {
		t.Fatal(err)
	}
	if queued != n {
		t.Fatalf("%d texts to %s in the outbox, want %d", queued, phone, n)
	}
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got := smsCount(t, phone); got != n {
			t.Fatalf("%d texts to %s at the stand-in, want %d", got, phone, n)
		}
	}
}

// outboxCount counts the outbox's texts of a purpose.
func outboxCount(t testing.TB, purpose string) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM sms_outbox WHERE purpose = $1`, purpose); err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	idNumberRun = regexp.MustCompile(`[0-9]{17}[0-9Xx]`)
	digitRuns   = regexp.MustCompile(`[0-9]+`)
)

// wantText checks what every text must be: signed 【湖北自考】, within two
// segments (134 characters), without an ID number or any of forbidden.
func wantText(t testing.TB, text string, forbidden ...string) {
	t.Helper()
	if !strings.HasPrefix(text, "【湖北自考】") {
		t.Errorf("text without the signature: %q", text)
	}
	if n := utf8.RuneCountInString(text); n > 134 {
		t.Errorf("text of %d characters, more than 134: %q", n, text)
	}
	if idNumberRun.MatchString(text) {
		t.Errorf("text with an ID number: %q", text)
	}
	for _, f := range forbidden {
		if f != "" && strings.Contains(text, f) {
			t.Errorf("text holds %q: %q", f, text)
		}
	}
}

// runsOf lists a text's runs of exactly n digits (not part of a longer one).
func runsOf(text string, n int) []string {
	var out []string
	for _, run := range digitRuns.FindAllString(text, -1) {
		if len(run) == n {
			out = append(out, run)
		}
	}
	return out
}

// wantTicketText checks a text carrying a ticket number: it is the only
// run of exactly 12 digits.
func wantTicketText(t testing.TB, text, ticket string, forbidden ...string) {
	t.Helper()
	wantText(t, text, forbidden...)
	if runs := runsOf(text, 12); len(runs) != 1 || runs[0] != ticket {
		t.Errorf("12-digit runs %v in %q, want only the ticket number %s", runs, text, ticket)
	}
}

// otherCode is a code that is not code.
func otherCode(code string) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1)%1_000_000)
}

// signUpBody is a sign-up with a phone and code ("" for none).
func signUpBody(login, phone, code string) map[string]any {
	b := map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "王小花"}
	if phone != "" || code != "" {
		b["phone"], b["sms_code"] = phone, code
	}
	return b
}

func newLogin() string { return "p-" + uuid.NewString()[:8] + "@example.com" }

// signUpWithPhone signs up an applicant with phone (asking for and reading
// its sign_up code) and returns the login name (password secret1).
func signUpWithPhone(t *testing.T, phone string) string {
	t.Helper()
	login := newLogin()
	r := caller{t: t}.json(http.MethodPost, "/accounts", signUpBody(login, phone, smsCode(t, phone, "sign_up")))
	want(t, r, http.StatusCreated, "")
	return login
}

// bindPhone binds phone to the caller's account with a fresh bind_phone code.
func bindPhone(t *testing.T, c caller, phone string) {
	t.Helper()
	r := c.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": phone, "sms_code": smsCode(t, phone, "bind_phone")})
	want(t, r, http.StatusOK, "")
	if string(r.raw) != `{"phone":"`+phone+`"}` {
		t.Fatalf("bind answered %s", r.raw)
	}
}

// phoneOf is the phone GET /accounts/me shows (nil for none: the field is
// there, null).
func phoneOf(t *testing.T, c caller) any {
	t.Helper()
	r := c.json(http.MethodGet, "/accounts/me", nil)
	want(t, r, http.StatusOK, "")
	v, ok := r.body["phone"]
	if !ok {
		t.Fatalf("GET /accounts/me without phone: %s", r.raw)
	}
	return v
}

// registerWithPhone registers a 专科 in exam area 0106 (pre-registered at
// once) for the applicant c, with phone on the registration.
func registerWithPhone(t *testing.T, c caller, login, phone, name string) person {
	t.Helper()
	idNumber := testenv.IDNumber()
	body := newRegistration("zhuanke", idNumber, name)
	body["personal"].(map[string]any)["phone"] = phone
	r := c.json(http.MethodPost, "/registrations", body)
	want(t, r, http.StatusAccepted, "")
	if r.str("status") != "pre_registered" {
		t.Fatalf("专科 starts pre-registered: %s", r.raw)
	}
	return person{c: c, login: login, id: r.str("registration_id"), idNumber: idNumber, name: name}
}

// wantKinds checks that texts are one of each kind, told by a phrase (in
// any order: two texts sent at once may arrive either way).
func wantKinds(t *testing.T, texts []smsMessage, phrases ...string) {
	t.Helper()
	if len(texts) != len(phrases) {
		t.Fatalf("%d texts, want %d", len(texts), len(phrases))
	}
	for _, phrase := range phrases {
		if textWith(texts, phrase) == "" {
			t.Errorf("no text with %q among %v", phrase, texts)
		}
	}
}

// textWith is the first of texts holding phrase ("" when none does).
func textWith(texts []smsMessage, phrase string) string {
	for _, m := range texts {
		if strings.Contains(m.Text, phrase) {
			return m.Text
		}
	}
	return ""
}

// A sign-up with a phone and its code binds the phone: the phone signs in
// as the login name does, and GET /accounts/me shows it (null for an
// account without). A phone needs its code and a code its phone.
func TestSignUpWithPhone(t *testing.T) {
	c := caller{t: t}
	phone := newPhone()
	code := smsCode(t, phone, "sign_up")
	msgs := smsTo(t, phone, 1)
	wantText(t, msgs[0].Text)
	if runs := runsOf(msgs[0].Text, 6); len(runs) != 1 || runs[0] != code {
		t.Errorf("the code's text %q: 6-digit runs %v", msgs[0].Text, runs)
	}

	login := newLogin()
	r := c.json(http.MethodPost, "/accounts", signUpBody(login, phone, code))
	want(t, r, http.StatusCreated, "")
	if r.str("login_name") != login || r.body["account_id"] == nil {
		t.Fatalf("sign-up answered %s", r.raw)
	}
	byPhone := logIn(t, phone, "secret1")
	me := byPhone.json(http.MethodGet, "/accounts/me", nil)
	want(t, me, http.StatusOK, "")
	if me.str("phone") != phone || me.str("login_name") != login || me.str("role") != "applicant" {
		t.Fatalf("GET /accounts/me: %s", me.raw)
	}
	if got := phoneOf(t, logIn(t, login, "secret1")); got != phone {
		t.Fatalf("signed in by e-mail, phone %v", got)
	}
	want(t, c.json(http.MethodPost, "/sessions", map[string]any{"login_name": phone, "password": "wrong-one"}), http.StatusUnauthorized, "invalid_credentials")
	want(t, c.json(http.MethodPost, "/sessions", map[string]any{"login_name": newPhone(), "password": "secret1"}), http.StatusUnauthorized, "invalid_credentials")

	if got := phoneOf(t, newApplicant(t)); got != nil {
		t.Fatalf("an account without a phone shows phone %v, want null", got)
	}

	// Both or neither.
	wantField(t, c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), newPhone(), "")), "sms_code")
	wantField(t, c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), "", "123456")), "phone")
	wantField(t, c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), "12345678901", "123456")), "phone")
}

// POST /sms-codes answers 202 {} whatever the phone, and sends a code only
// where the purpose fits: sign_up and bind_phone to a phone no account
// holds, reset_password to a phone an applicant holds (not staff).
func TestSMSCodeSentOnlyWhereThePurposeFits(t *testing.T) {
	allowCodesAtOnce(t)
	held, free, staffPhone := newPhone(), newPhone(), newPhone()
	signUpWithPhone(t, held) // its sign_up code: 1 text
	if _, err := database.Exec(`UPDATE accounts SET phone = $2 WHERE login_name = $1`,
		staffLogin(t, accounts.RoleCountyReviewer, "0106"), staffPhone); err != nil {
		t.Fatal(err)
	}
	for _, purpose := range []string{"sign_up", "bind_phone", "reset_password"} {
		h, f, s := askCode(t, held, purpose), askCode(t, free, purpose), askCode(t, staffPhone, purpose)
		for _, r := range []response{h, f, s} {
			wantAccepted(t, r)
		}
	}
	heldTexts, freeTexts := smsTo(t, held, 2), smsTo(t, free, 2)
	wantNoMoreSMS(t, held, 2)
	wantNoMoreSMS(t, free, 2)
	wantNoMoreSMS(t, staffPhone, 0)
	wantKinds(t, heldTexts, "您正在注册", "您正在重置") // its sign-up's, then the reset's
	wantKinds(t, freeTexts, "您正在注册", "您正在绑定")
	for _, m := range append(heldTexts, freeTexts...) {
		wantText(t, m.Text)
		if len(runsOf(m.Text, 6)) != 1 {
			t.Errorf("a code's text without exactly one 6-digit run: %q", m.Text)
		}
	}

	for _, bad := range []struct{ phone, purpose, field string }{
		{"12345678901", "sign_up", "phone"},
		{"1380000000", "sign_up", "phone"},
		{"138000000001", "sign_up", "phone"},
		{"", "sign_up", "phone"},
		{"1380000000x", "sign_up", "phone"},
		{newPhone(), "login", "purpose"},
		{newPhone(), "", "purpose"},
		{newPhone(), "ticket_lookup", "purpose"},
	} {
		wantField(t, askCode(t, bad.phone, bad.purpose), bad.field)
	}
	want(t, caller{t: t}.do(http.MethodPost, "/sms-codes", strings.NewReader("{not json"), "application/json"), http.StatusBadRequest, "malformed_body")
}

// One code per phone per 60 s, whatever the purpose; 10 requests per phone
// per day, whether or not a code went.
func TestSMSCodeLimitsPerPhone(t *testing.T) {
	phone := newPhone()
	wantAccepted(t, askCode(t, phone, "sign_up"))
	wantTooMany(t, askCode(t, phone, "sign_up"), time.Minute)
	wantTooMany(t, askCode(t, phone, "bind_phone"), time.Minute)
	smsTo(t, phone, 1)
	wantNoMoreSMS(t, phone, 1)
	wantAccepted(t, askCode(t, newPhone(), "sign_up")) // another phone is not held back

	if d := accounts.DefaultSMSLimits(); d.PhoneMinute.Max != 1 || d.PhoneMinute.Window != time.Minute ||
		d.PhoneDay.Max != 10 || d.PhoneDay.Window != 24*time.Hour {
		t.Fatalf("default per-phone limits %+v %+v", d.PhoneMinute, d.PhoneDay)
	}
	allowCodesAtOnce(t)
	daily := newPhone()
	for i := range 10 {
		purpose := "sign_up"
		if i%2 == 1 {
			purpose = "reset_password" // no applicant holds it: nothing is sent, yet it counts
		}
		wantAccepted(t, askCode(t, daily, purpose))
	}
	if wait := wantTooMany(t, askCode(t, daily, "sign_up"), 24*time.Hour+time.Minute); wait < 23*time.Hour {
		t.Errorf("the 11th request of the day waits %s, want about a day", wait)
	}
	smsTo(t, daily, 5)
	wantNoMoreSMS(t, daily, 5)
}

// 20 requests per address per hour, sms-codes and ticket-lookups together.
// (TestMain lifted the limit, all tests coming from 127.0.0.1; this test
// applies the default rule under a scope of its own, so that the requests
// of earlier tests do not count.)
func TestSMSLimitPerAddressSharedWithTicketLookups(t *testing.T) {
	def := accounts.DefaultSMSLimits().Address
	if def.Max != 20 || def.Window != time.Hour {
		t.Fatalf("default per-address limit %+v", def)
	}
	saved := server.Accounts.SMSLimits.Address
	server.Accounts.SMSLimits.Address = throttle.Rule{Scope: "sms:address-test-" + uuid.NewString()[:8], Max: def.Max, Window: def.Window}
	t.Cleanup(func() { server.Accounts.SMSLimits.Address = saved })

	lookup := func() response {
		return caller{t: t}.json(http.MethodPost, "/ticket-lookups", map[string]string{"name": "张三", "id_number": testenv.IDNumber()})
	}
	for range 10 {
		wantAccepted(t, askCode(t, newPhone(), "reset_password"))
		wantAccepted(t, lookup())
	}
	wantTooMany(t, askCode(t, newPhone(), "sign_up"), time.Hour)
	wantTooMany(t, lookup(), time.Hour)
}

// A code is checked before anything else: a wrong one is 422 with field
// sms_code, and so are a code after five wrong entries, an expired one, an
// older one after a newer was sent, one of another phone or purpose, and a
// used one.
func TestSMSCodeRules(t *testing.T) {
	allowCodesAtOnce(t)
	c := caller{t: t}
	signUp := func(phone, code string) response {
		return c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), phone, code))
	}

	// Four wrong entries leave the code usable; the right one then works.
	phone := newPhone()
	code := smsCode(t, phone, "sign_up")
	for range 4 {
		wantField(t, signUp(phone, otherCode(code)), "sms_code")
	}
	want(t, signUp(phone, code), http.StatusCreated, "")

	// Used: the same code again is refused as a code, before the phone's
	// holder is looked at.
	wantField(t, signUp(phone, code), "sms_code")

	// Five wrong entries void it.
	phone = newPhone()
	code = smsCode(t, phone, "sign_up")
	for range accounts.MaxWrongEntries {
		wantField(t, signUp(phone, otherCode(code)), "sms_code")
	}
	wantField(t, signUp(phone, code), "sms_code")

	// Expired (10 minutes; set back here).
	phone = newPhone()
	code = smsCode(t, phone, "sign_up")
	if _, err := database.Exec(`UPDATE sms_codes SET expires_at = now() - interval '1 second' WHERE phone = $1 AND purpose = 'sign_up'`, phone); err != nil {
		t.Fatal(err)
	}
	wantField(t, signUp(phone, code), "sms_code")

	// A newer code voids the older.
	phone = newPhone()
	older := smsCode(t, phone, "sign_up")
	newer := smsCode(t, phone, "sign_up")
	for newer == older { // one chance in a million
		newer = smsCode(t, phone, "sign_up")
	}
	wantField(t, signUp(phone, older), "sms_code")
	want(t, signUp(phone, newer), http.StatusCreated, "")

	// Another phone's code.
	mine, theirs := newPhone(), newPhone()
	myCode, theirCode := smsCode(t, mine, "sign_up"), smsCode(t, theirs, "sign_up")
	for theirCode == myCode {
		theirCode = smsCode(t, theirs, "sign_up")
	}
	wantField(t, signUp(mine, theirCode), "sms_code")
	want(t, signUp(theirs, theirCode), http.StatusCreated, "")

	// Another purpose's code: bind_phone for a sign-up, sign_up for a binding.
	phone = newPhone()
	bindCode := smsCode(t, phone, "bind_phone")
	wantField(t, signUp(phone, bindCode), "sms_code")
	phone = newPhone()
	signUpCode := smsCode(t, phone, "sign_up")
	applicant := newApplicant(t)
	wantField(t, applicant.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": phone, "sms_code": signUpCode}), "sms_code")
	if got := phoneOf(t, applicant); got != nil {
		t.Fatalf("a refused binding bound %v", got)
	}

	// A refused sign-up created nothing: its login name is still free.
	login := newLogin()
	phone = newPhone()
	code = smsCode(t, phone, "sign_up")
	wantField(t, c.json(http.MethodPost, "/accounts", signUpBody(login, phone, otherCode(code))), "sms_code")
	want(t, c.json(http.MethodPost, "/accounts", signUpBody(login, phone, code)), http.StatusCreated, "")
}

// phone_taken: the code is right, but another account holds the phone by
// now. Only one code lives per phone and purpose, so the race is between a
// sign-up (sign_up code) and a binding (bind_phone code) of one phone, both
// asked for while it was free: the second to finish gets 409.
func TestPhoneTaken(t *testing.T) {
	allowCodesAtOnce(t)
	c := caller{t: t}

	// A binding first, then a sign-up with its right code.
	phone := newPhone()
	signUpCode, bindCode := smsCode(t, phone, "sign_up"), smsCode(t, phone, "bind_phone")
	binder := newApplicant(t)
	want(t, binder.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": phone, "sms_code": bindCode}), http.StatusOK, "")
	wantField(t, c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), phone, otherCode(signUpCode))), "sms_code") // the code is checked first
	login := newLogin()
	want(t, c.json(http.MethodPost, "/accounts", signUpBody(login, phone, signUpCode)), http.StatusConflict, "phone_taken")
	want(t, c.json(http.MethodPost, "/sessions", map[string]any{"login_name": login, "password": "secret1"}), http.StatusUnauthorized, "invalid_credentials")
	if got := phoneOf(t, logIn(t, phone, "secret1")); got != phone {
		t.Fatalf("the phone signs in to an account with phone %v", got)
	}

	// A sign-up first, then a binding with its right code.
	phone = newPhone()
	signUpCode, bindCode = smsCode(t, phone, "sign_up"), smsCode(t, phone, "bind_phone")
	want(t, c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), phone, signUpCode)), http.StatusCreated, "")
	late := newApplicant(t)
	want(t, late.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": phone, "sms_code": bindCode}), http.StatusConflict, "phone_taken")
	if got := phoneOf(t, late); got != nil {
		t.Fatalf("a refused binding bound %v", got)
	}

	// Both at once: one wins, the other is phone_taken.
	phone = newPhone()
	signUpCode, bindCode = smsCode(t, phone, "sign_up"), smsCode(t, phone, "bind_phone")
	racer := newApplicant(t)
	var signUp, bind response
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		signUp = c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), phone, signUpCode))
	}()
	go func() {
		defer wg.Done()
		bind = racer.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": phone, "sms_code": bindCode})
	}()
	wg.Wait()
	switch {
	case signUp.status == http.StatusCreated:
		want(t, bind, http.StatusConflict, "phone_taken")
	case bind.status == http.StatusOK:
		want(t, signUp, http.StatusConflict, "phone_taken")
	default:
		t.Fatalf("neither won: sign-up %d %s, binding %d %s", signUp.status, signUp.raw, bind.status, bind.raw)
	}
	var holders int
	if err := database.Get(&holders, `SELECT count(*) FROM accounts WHERE phone = $1`, phone); err != nil || holders != 1 {
		t.Fatalf("%d accounts hold the phone (%v)", holders, err)
	}

	// Two sign-ups with the one code: one account; the other finds the code used.
	phone = newPhone()
	signUpCode = smsCode(t, phone, "sign_up")
	answers := make([]response, 2)
	wg.Add(2)
	for i := range answers {
		go func() {
			defer wg.Done()
			answers[i] = c.json(http.MethodPost, "/accounts", signUpBody(newLogin(), phone, signUpCode))
		}()
	}
	wg.Wait()
	statuses := []int{answers[0].status, answers[1].status}
	slices.Sort(statuses)
	if statuses[0] != http.StatusCreated || statuses[1] != http.StatusUnprocessableEntity {
		t.Fatalf("two sign-ups with one code: %d %s, %d %s", answers[0].status, answers[0].raw, answers[1].status, answers[1].raw)
	}
}

// PUT /accounts/me/phone binds a phone with a bind_phone code; binding
// another replaces it: the old phone no longer signs in (and is free for
// someone else), the new one does.
func TestBindPhone(t *testing.T) {
	allowCodesAtOnce(t)
	login := signUp(t)
	c := logIn(t, login, "secret1")
	first, second := newPhone(), newPhone()

	bindPhone(t, c, first)
	if got := phoneOf(t, c); got != first {
		t.Fatalf("bound %v, want %s", got, first)
	}
	logIn(t, first, "secret1")

	wantField(t, c.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": second, "sms_code": ""}), "sms_code")
	wantField(t, c.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": "2" + second[1:], "sms_code": "123456"}), "phone")
	wantField(t, c.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": second, "sms_code": "123456"}), "sms_code") // no code was sent to it
	want(t, caller{t: t}.json(http.MethodPut, "/accounts/me/phone", map[string]string{"phone": second, "sms_code": "123456"}), http.StatusUnauthorized, "unauthenticated")

	bindPhone(t, c, second)
	if got := phoneOf(t, c); got != second {
		t.Fatalf("bound %v, want %s", got, second)
	}
	want(t, caller{t: t}.json(http.MethodPost, "/sessions", map[string]any{"login_name": first, "password": "secret1"}), http.StatusUnauthorized, "invalid_credentials")
	logIn(t, second, "secret1")
	logIn(t, login, "secret1")

	// The old phone is free: a sign_up code goes to it again.
	before := smsCount(t, first)
	wantAccepted(t, askCode(t, first, "sign_up"))
	if got := len(smsTo(t, first, before+1)); got != before+1 {
		t.Fatalf("no sign_up code for the released phone (%d texts)", got)
	}
}

// POST /password-resets with phone, sms_code and new_password: 204, every
// earlier session ends, the new password signs in (by phone and by
// e-mail); a wrong code or an unknown phone is 401 reset_rejected with the
// same body.
func TestPasswordResetBySMS(t *testing.T) {
	allowCodesAtOnce(t)
	c := caller{t: t}
	phone := newPhone()
	login := signUpWithPhone(t, phone)
	sessions := []caller{logIn(t, login, "secret1"), logIn(t, phone, "secret1")}

	code := smsCode(t, phone, "reset_password")
	reset := func(phone, code, password string) response {
		return c.json(http.MethodPost, "/password-resets", map[string]any{"phone": phone, "sms_code": code, "new_password": password})
	}
	wrong := reset(phone, otherCode(code), "newpass1")
	want(t, wrong, http.StatusUnauthorized, "reset_rejected")
	for _, r := range []response{
		reset(newPhone(), code, "newpass1"), // nobody's phone
		reset("not-a-phone", code, "newpass1"),
		reset(phone, "", "newpass1"),
	} {
		want(t, r, http.StatusUnauthorized, "reset_rejected")
		if !bytes.Equal(r.raw, wrong.raw) {
			t.Errorf("resets differ: %s / %s", wrong.raw, r.raw)
		}
	}
	wantField(t, reset(phone, code, "123"), "new_password")
	for _, s := range sessions {
		want(t, s.json(http.MethodGet, "/accounts/me", nil), http.StatusOK, "") // nothing happened yet
	}

	r := reset(phone, code, "newpass1")
	if r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	for _, s := range sessions {
		want(t, s.json(http.MethodGet, "/accounts/me", nil), http.StatusUnauthorized, "unauthenticated")
	}
	want(t, c.json(http.MethodPost, "/sessions", map[string]any{"login_name": phone, "password": "secret1"}), http.StatusUnauthorized, "invalid_credentials")
	logIn(t, phone, "newpass1")
	logIn(t, login, "newpass1")
	want(t, reset(phone, code, "newpass2"), http.StatusUnauthorized, "reset_rejected") // used
}

// The texts of a registration's steps go to the account's bound phone,
// else to the phone on the registration: the pre-registration's, and the
// completion's with the ticket number; no text holds a name or an ID
// number.
func TestSMSOfARegistration(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))

	// With a bound phone: every text goes to it, none to the registration's.
	bound, onForm := newPhone(), newPhone()
	login := signUpWithPhone(t, bound)
	p := registerWithPhone(t, logIn(t, login, "secret1"), login, onForm, "林小雨")
	ticket := p.confirmOnsite(t).str("ticket_number")
	texts := smsTo(t, bound, 3)
	wantNoMoreSMS(t, bound, 3)
	wantNoMoreSMS(t, onForm, 0)
	wantKinds(t, texts, "您正在注册", "预注册", "注册完成")
	wantRegistrationTexts(t, texts, ticket, p)

	// Without: they go to the registration's phone.
	p2Login, p2Phone := signUp(t), newPhone()
	p2 := registerWithPhone(t, logIn(t, p2Login, "secret1"), p2Login, p2Phone, "欧阳小雪")
	ticket2 := p2.confirmOnsite(t).str("ticket_number")
	texts = smsTo(t, p2Phone, 2)
	wantNoMoreSMS(t, p2Phone, 2)
	wantKinds(t, texts, "预注册", "注册完成")
	wantRegistrationTexts(t, texts, ticket2, p2)
}

// wantRegistrationTexts checks a registration's texts: the completion's
// with the ticket number, the pre-registration's.
func wantRegistrationTexts(t *testing.T, texts []smsMessage, ticket string, p person) {
	t.Helper()
	wantTicketText(t, textWith(texts, "注册完成"), ticket, p.name, p.idNumber, p.login)
	wantText(t, textWith(texts, "预注册"), p.name, p.idNumber, p.login, ticket)
}

// 查询准考证: 202 {} whatever matched; a completed registration's ticket
// number goes by SMS to the phone bound to its account (bound after the
// completion here), else to the phone on the registration; an open or
// unknown registration, or a wrong name, sends nothing. 3 look-ups per ID
// number per day.
func TestTicketLookup(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	anon := caller{t: t}
	lookup := func(name, idNumber string) response {
		return anon.json(http.MethodPost, "/ticket-lookups", map[string]string{"name": name, "id_number": idNumber})
	}

	login := signUp(t)
	onForm := newPhone()
	p := registerWithPhone(t, logIn(t, login, "secret1"), login, onForm, "司马小青")
	ticket := p.confirmOnsite(t).str("ticket_number")
	smsTo(t, onForm, 2) // pre-registered, completed

	found := lookup(p.name, p.idNumber)
	wantAccepted(t, found)
	texts := smsTo(t, onForm, 3)
	wantNoMoreSMS(t, onForm, 3)
	wantTicketText(t, texts[0].Text, ticket, p.name, p.idNumber)
	if !strings.Contains(texts[0].Text, "查询") {
		t.Errorf("not the look-up's text: %q", texts[0].Text)
	}

	bound := newPhone()
	bindPhone(t, p.c, bound)
	wantAccepted(t, lookup(" "+p.name+" ", p.idNumber))
	texts = smsTo(t, bound, 2) // the bind code, the ticket
	wantNoMoreSMS(t, bound, 2)
	wantNoMoreSMS(t, onForm, 3)
	wantTicketText(t, texts[0].Text, ticket, p.name, p.idNumber)

	// Nothing goes for an open registration, an unknown one, or a wrong name.
	openLogin := signUp(t)
	openPhone := newPhone()
	open := registerWithPhone(t, logIn(t, openLogin, "secret1"), openLogin, openPhone, "诸葛小明")
	smsTo(t, openPhone, 1) // pre-registered
	sent := outboxCount(t, "ticket_lookup")
	for _, r := range []response{
		lookup(open.name, open.idNumber),
		lookup("张三", testenv.IDNumber()),
		lookup("张三", p.idNumber), // the third look-up of that ID number
	} {
		wantAccepted(t, r)
		if !bytes.Equal(r.raw, found.raw) {
			t.Errorf("look-ups differ: %s / %s", found.raw, r.raw)
		}
	}
	if got := outboxCount(t, "ticket_lookup"); got != sent {
		t.Errorf("%d ticket texts written for look-ups that matched nothing", got-sent)
	}
	wantNoMoreSMS(t, openPhone, 1)
	wantNoMoreSMS(t, bound, 2)

	// 3 per ID number per day.
	if d := accounts.DefaultSMSLimits().IDNumberDay; d.Max != 3 || d.Window != 24*time.Hour {
		t.Fatalf("default per-ID-number limit %+v", d)
	}
	wantTooMany(t, lookup(p.name, p.idNumber), 24*time.Hour)
	wantNoMoreSMS(t, bound, 2)
	unknown := testenv.IDNumber()
	for range 3 {
		wantAccepted(t, lookup("张三", unknown))
	}
	wantTooMany(t, lookup("张三", unknown), 24*time.Hour)

	wantField(t, lookup("张三", "420106199001011230"), "id_number") // wrong check character
	wantField(t, lookup("张三", "abc"), "id_number")
	wantField(t, lookup("", testenv.IDNumber()), "name")
	wantField(t, lookup("Zhang San", testenv.IDNumber()), "name")
}

// GET /accounts/me/tickets lists the tickets of the applicant's completed
// registrations with the contract's fields; [] for none; applicants only.
func TestMyTickets(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	login := signUp(t)
	c := logIn(t, login, "secret1")
	r := c.json(http.MethodGet, "/accounts/me/tickets", nil)
	want(t, r, http.StatusOK, "")
	if string(r.raw) != `{"tickets":[]}` {
		t.Fatalf("no tickets yet: %s", r.raw)
	}

	p := registerWithPhone(t, c, login, newPhone(), "上官小燕")
	r = c.json(http.MethodGet, "/accounts/me/tickets", nil)
	want(t, r, http.StatusOK, "")
	if string(r.raw) != `{"tickets":[]}` {
		t.Fatalf("a pre-registered registration has no ticket: %s", r.raw)
	}
	view := p.confirmOnsite(t)

	r = c.json(http.MethodGet, "/accounts/me/tickets", nil)
	want(t, r, http.StatusOK, "")
	tickets, _ := r.body["tickets"].([]any)
	if len(tickets) != 1 {
		t.Fatalf("tickets %s, want one", r.raw)
	}
	got := tickets[0].(map[string]any)
	for field, value := range map[string]string{
		"ticket_number": view.str("ticket_number"), "kind": "new", "level": "zhuanke",
		"major_code": "590201", "major_name": view.str("major_name"), "exam_area_code": "0106",
	} {
		if got[field] != value || value == "" {
			t.Errorf("ticket %s = %v, want %q", field, got[field], value)
		}
	}
	completedAt, err := time.Parse(time.RFC3339, fmt.Sprint(got["completed_at"]))
	if err != nil || time.Since(completedAt) > time.Minute || time.Since(completedAt) < -time.Minute {
		t.Errorf("completed_at %v (%v)", got["completed_at"], err)
	}
	if len(got) != 7 {
		t.Errorf("ticket fields %v, want the contract's 7", got)
	}

	want(t, staff(t, "county0106@example.com").json(http.MethodGet, "/accounts/me/tickets", nil), http.StatusForbidden, "forbidden")
	want(t, caller{t: t}.json(http.MethodGet, "/accounts/me/tickets", nil), http.StatusUnauthorized, "unauthenticated")
}

// GET /metrics counts the texts sent by purpose and the requests refused
// by a limit, and holds no phone number.
func TestSMSMetrics(t *testing.T) {
	scrapeRaw := func() (string, float64, float64) {
		t.Helper()
		r := caller{t: t}.do(http.MethodGet, strings.TrimSuffix(base, "/api/v1")+"/metrics", nil, "")
		want(t, r, http.StatusOK, "")
		families, err := parseMetrics(bytes.NewReader(r.raw))
		if err != nil {
			t.Fatalf("/metrics is not the text format: %v", err)
		}
		return string(r.raw), sample(families, "zikao_sms_total", "purpose", "sign_up", "result", "sent"),
			sample(families, "zikao_sms_total", "purpose", "sign_up", "result", "throttled")
	}
	_, sentBefore, throttledBefore := scrapeRaw()
	phone := newPhone()
	smsCode(t, phone, "sign_up")
	wantTooMany(t, askCode(t, phone, "sign_up"), time.Minute)

	var text string
	var sent, throttled float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		text, sent, throttled = scrapeRaw()
		if sent > sentBefore || time.Now().After(deadline) {
			break
		}
	}
	if sent <= sentBefore {
		t.Errorf("zikao_sms_total{purpose=\"sign_up\",result=\"sent\"} %v, was %v", sent, sentBefore)
	}
	if throttled != throttledBefore+1 {
		t.Errorf("zikao_sms_total{purpose=\"sign_up\",result=\"throttled\"} %v, was %v", throttled, throttledBefore)
	}
	if !strings.Contains(text, `zikao_sms_total{purpose="sign_up",result="sent"}`) {
		t.Errorf("/metrics lacks the sent series:\n%s", text)
	}
	phonesMu.Lock()
	defer phonesMu.Unlock()
	for _, p := range testPhones {
		// As a number of its own: a float such as 0.13800000000000001
		// holds the digits of 13800000000 and is no phone.
		if regexp.MustCompile(`(^|[^0-9.])` + p + `($|[^0-9])`).MatchString(text) {
			t.Errorf("/metrics holds the phone number %s", p)
		}
	}
}

// A staff account binds a phone as an applicant does, signs in with it,
// and administrators see it in the staff list (null for none).
func TestStaffBindsPhone(t *testing.T) {
	allowCodesAtOnce(t)
	login := staffLogin(t, "county_reviewer", "0106")
	reviewer := logIn(t, login, staffPassword)
	a := admin(t)
	list := a.json(http.MethodGet, "/admin/staff", nil)
	want(t, list, http.StatusOK, "")
	if row := staffOf(t, list, login); row == nil || row["phone"] != nil {
		t.Fatalf("before binding, the staff list shows %v", row)
	}
	phone := newPhone()
	bindPhone(t, reviewer, phone)
	list = a.json(http.MethodGet, "/admin/staff", nil)
	if row := staffOf(t, list, login); row == nil || row["phone"] != phone {
		t.Fatalf("after binding, the staff list shows %v", row)
	}
	want(t, caller{t: t}.json(http.MethodPost, "/sessions", map[string]string{"login_name": phone, "password": staffPassword}), http.StatusCreated, "")
	// A staff phone is not an applicant's: no reset code goes to it.
	before := smsCount(t, phone)
	wantAccepted(t, askCode(t, phone, "reset_password"))
	wantNoMoreSMS(t, phone, before)
}
