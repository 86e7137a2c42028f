package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/testenv"
)

// Found by a security review of the pages: each test failed before its fix.

func applicantLogin(t *testing.T) string {
	t.Helper()
	login := "applicant-" + uuid.NewString()[:8] + "@example.com"
	if _, err := server.Accounts.SignUp(context.Background(), login, "secret1", 1, "x"); err != nil {
		t.Fatal(err)
	}
	return login
}

// The page after signing in is a path of this site, whatever ?next= says:
// browsers drop a tab from a Location ("/\t/evil.example" is "//evil.example").
func TestSignInStaysOnThisSite(t *testing.T) {
	login := applicantLogin(t)
	for _, next := range []string{"/\t/evil.example/phish", "/\\evil.example", "//evil.example", "https://evil.example/", "/\r\n/evil.example"} {
		req, _ := http.NewRequest("POST", pageURL("/login"), strings.NewReader(url.Values{
			"login_name": {login}, "password": {"secret1"}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", pageURL(""))
		resp, err := http.DefaultTransport.RoundTrip(req) // the raw answer, not followed
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/me" {
			t.Errorf("next %q: %d to %q, want 303 to /me", next, resp.StatusCode, loc)
		}
	}
	// A page that needs a session sends to sign-in with its path only: a
	// look-up's query holds an ID number.
	w := newWebClient(t)
	w.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := w.get("/search?id_number=" + testenv.IDNumber())
	if loc := p.header.Get("Location"); loc != "/login?next=%2Fsearch" {
		t.Errorf("signed-out look-up sent to %q", loc)
	}
	if rp := w.get("/login").header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("Referrer-Policy %q", rp)
	}
}

// The 在籍注册 form that fails for another reason (no agreement) still
// counts a wrong enrolment guess, as 验证 does; otherwise it would list a
// person's records to unlimited guesses.
func TestEnrolledFormCountsWrongGuesses(t *testing.T) {
	w, _ := webSignIn(t, applicantLogin(t), "secret1")
	limit := server.LookupLimits.PerLogin.Max
	var p webPage
	for i := range limit + 1 {
		p = w.post("/me/enrolled", url.Values{"name": {"王芳"}, "id_number": {"420106199604202344"},
			"ticket_number": {"01062010000" + string(rune('2'+i))}, "personal.phone": {"13800000000"}})
	}
	if p.status != http.StatusTooManyRequests {
		t.Errorf("guess %d: %d, want 429", limit+1, p.status)
	}
	p = w.post("/me/enrolled", url.Values{"name": {"王芳"}, "id_number": {"420106199604202344"},
		"ticket_number": {"010620100001"}, "personal.phone": {"13800000000"}})
	if p.status != http.StatusTooManyRequests || strings.Contains(p.body, `value="010621200007"`) {
		t.Errorf("the right guess after the limit: %d, records listed: %v", p.status, strings.Contains(p.body, `value="010621200007"`))
	}
}

// A link on another site cannot spend a reviewer's look-ups (the cookie
// goes with a cross-site navigation): the page shows the empty form.
func TestCrossSiteLinksDoNotLookUp(t *testing.T) {
	for _, c := range []struct{ role, area, path string }{
		{accounts.RoleCountyReviewer, "0106", "/search"},
		{accounts.RoleOnsiteOperator, "0106", "/onsite"},
	} {
		w, _ := webSignIn(t, staffLogin(t, c.role, c.area), staffPassword)
		for range server.StaffLookupLimits.PerLogin.Max + 1 {
			req, _ := http.NewRequest("GET", pageURL(c.path+"?id_number="+testenv.IDNumber()), nil)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			if p := w.do(req); p.status != http.StatusOK {
				t.Errorf("%s from another site: %d", c.path, p.status)
			}
		}
		if c.path == "/onsite" {
			continue // not counted: the desk polls it
		}
		// The person's own look-ups are counted: misses lock after the limit.
		var p webPage
		for range server.StaffLookupLimits.PerLogin.Max + 1 {
			p = w.get(c.path + "?id_number=" + testenv.IDNumber())
		}
		if p.status != http.StatusTooManyRequests {
			t.Errorf("%s: look-up %d finding nothing answered %d, want 429", c.path, server.StaffLookupLimits.PerLogin.Max+1, p.status)
		}
	}
}

// Behind a TLS proxy (X-Forwarded-Proto: https) the session cookie is
// Secure; the security answer is never typed back into a refused form.
func TestSecureCookieAndSecretsNotEchoed(t *testing.T) {
	login := applicantLogin(t)
	req, _ := http.NewRequest("POST", pageURL("/login"), strings.NewReader(url.Values{
		"login_name": {login}, "password": {"secret1"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", pageURL(""))
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") {
		t.Errorf("cookie behind a TLS proxy: %q", c)
	}

	w := newWebClient(t)
	p := w.post("/password/forgot", url.Values{"login_name": {login}, "security_question_id": {"1"},
		"security_answer": {"the-secret-answer"}, "new_password": {"x"}})
	if p.status < 400 || strings.Contains(p.body, "the-secret-answer") {
		t.Errorf("refused reset: %d, answer typed back: %v", p.status, strings.Contains(p.body, "the-secret-answer"))
	}
}
