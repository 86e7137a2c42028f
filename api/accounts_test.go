package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/db"
)

func TestSignUpRules(t *testing.T) {
	c := caller{t: t}
	login := "Mixed." + uuid.NewString()[:8] + "@Example.com"
	r := c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 2, "security_answer": "x"})
	want(t, r, 201, "")
	if r.str("login_name") != login || r.body["account_id"] == nil {
		t.Fatalf("sign-up answer %s", r.raw)
	}
	// The same e-mail in other case is taken.
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": strings.ToLower(login), "password": "secret1", "security_question_id": 2, "security_answer": "x"}), 409, "login_name_taken")

	r = c.json("POST", "/accounts", map[string]any{"login_name": "not-an-email", "password": "12345", "security_question_id": 99, "security_answer": " "})
	want(t, r, 422, "validation_failed")
	e := r.body["error"].(map[string]any)
	fields, fieldsEN := e["fields"].(map[string]any), e["fields_en"].(map[string]any)
	for _, f := range []string{"login_name", "password", "security_question_id", "security_answer"} {
		if fields[f] == nil || fieldsEN[f] == nil || strings.Contains(fields[f].(string), " / ") {
			t.Errorf("field %s: %v / %v", f, fields[f], fieldsEN[f])
		}
	}
	want(t, c.do("POST", "/accounts", strings.NewReader("{not json"), "application/json"), 400, "malformed_body")
}

func TestLoginLogoutAndSessions(t *testing.T) {
	c := caller{t: t}
	login := uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	want(t, c.json("POST", "/sessions", map[string]any{"login_name": login, "password": "wrong-one"}), 401, "invalid_credentials")
	want(t, c.json("POST", "/sessions", map[string]any{"login_name": "nobody-" + login, "password": "secret1"}), 401, "invalid_credentials")

	r := c.json("POST", "/sessions", map[string]any{"login_name": strings.ToUpper(login), "password": "secret1"})
	want(t, r, 201, "")
	if r.str("role") != "applicant" || r.str("expires_at") == "" {
		t.Fatalf("session answer %s", r.raw)
	}
	me := caller{t: t, token: r.str("token")}
	want(t, me.json("GET", "/accounts/me", nil), 200, "")
	if got := me.do("DELETE", "/sessions/current", nil, ""); got.status != 204 {
		t.Fatalf("logout: %d %s", got.status, got.raw)
	}
	want(t, me.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	want(t, caller{t: t, token: "forged"}.json("GET", "/accounts/me", nil), 401, "unauthenticated")
}

func TestPasswordReset(t *testing.T) {
	c := caller{t: t}
	login := uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 3, "security_answer": "Wuhan  Hubei"}), 201, "")
	other := logIn(t, login, "secret1")

	wrongAnswer := c.json("POST", "/password-resets", map[string]any{"login_name": login, "security_question_id": 3, "security_answer": "Beijing", "new_password": "newpass1"})
	want(t, wrongAnswer, 401, "reset_rejected")
	wrongQuestion := c.json("POST", "/password-resets", map[string]any{"login_name": login, "security_question_id": 1, "security_answer": "Wuhan Hubei", "new_password": "newpass1"})
	unknown := c.json("POST", "/password-resets", map[string]any{"login_name": "nobody-" + login, "security_question_id": 3, "security_answer": "Wuhan Hubei", "new_password": "newpass1"})
	// The same answer whatever was wrong, so the answer tells nothing.
	if string(wrongQuestion.raw) != string(wrongAnswer.raw) || string(unknown.raw) != string(wrongAnswer.raw) || unknown.status != 401 {
		t.Fatalf("resets differ: %s / %s / %s", wrongAnswer.raw, wrongQuestion.raw, unknown.raw)
	}
	want(t, c.json("POST", "/password-resets", map[string]any{"login_name": login, "security_question_id": 3, "security_answer": "x", "new_password": "123"}), 422, "validation_failed")

	// Case, full-width letters and spaces do not matter.
	r := c.json("POST", "/password-resets", map[string]any{"login_name": login, "security_question_id": 3, "security_answer": "  ｗｕｈａｎ hubei ", "new_password": "newpass1"})
	if r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	want(t, c.json("POST", "/sessions", map[string]any{"login_name": login, "password": "secret1"}), 401, "invalid_credentials")
	logIn(t, login, "newpass1")
	want(t, other.json("GET", "/accounts/me", nil), 401, "unauthenticated") // a reset ends every session
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	c := caller{t: t}
	login := uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	a, b := logIn(t, login, "secret1"), logIn(t, login, "secret1")

	r := a.json("PUT", "/accounts/me/password", map[string]any{"old_password": "wrong", "new_password": "secret2"})
	want(t, r, 401, "invalid_credentials")
	if msg := r.body["error"].(map[string]any)["message"]; msg != "原密码错误" {
		t.Errorf("message %v, want 原密码错误", msg)
	}
	want(t, a.json("PUT", "/accounts/me/password", map[string]any{"old_password": "secret1", "new_password": "short"}), 422, "validation_failed")
	if r := a.json("PUT", "/accounts/me/password", map[string]any{"old_password": "secret1", "new_password": "secret2"}); r.status != 204 {
		t.Fatalf("change password: %d %s", r.status, r.raw)
	}
	want(t, a.json("GET", "/accounts/me", nil), 200, "")
	want(t, b.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	logIn(t, login, "secret2")
}

func TestFailedLoginsAreThrottled(t *testing.T) {
	c := caller{t: t}
	login := uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	for i := 0; i < 5; i++ {
		want(t, c.json("POST", "/sessions", map[string]any{"login_name": login, "password": "wrong"}), 401, "invalid_credentials")
	}
	// Locked: even the right password is refused for a while.
	r := c.json("POST", "/sessions", map[string]any{"login_name": login, "password": "secret1"})
	want(t, r, 429, "too_many_attempts")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Resets count apart, and lock out the same way.
	for i := 0; i < 5; i++ {
		want(t, c.json("POST", "/password-resets", map[string]any{"login_name": login, "security_question_id": 1, "security_answer": "b", "new_password": "newpass1"}), 401, "reset_rejected")
	}
	want(t, c.json("POST", "/password-resets", map[string]any{"login_name": login, "security_question_id": 1, "security_answer": "a", "new_password": "newpass1"}), 429, "too_many_attempts")
}

func TestCatalog(t *testing.T) {
	c := caller{t: t}
	r := c.json("GET", "/catalog/security-questions", nil)
	want(t, r, 200, "")
	if qs := r.body["questions"].([]any); len(qs) != 6 {
		t.Errorf("%d security questions, want 6", len(qs))
	}

	r = c.json("GET", "/catalog/exam-areas", nil)
	want(t, r, 200, "")
	areas := r.body["exam_areas"].([]any)
	if len(areas) != 29 {
		t.Errorf("%d exam areas, want 29", len(areas))
	}
	var wuchang map[string]any
	for _, a := range areas {
		if a.(map[string]any)["code"] == "0106" {
			wuchang = a.(map[string]any)
		}
	}
	if wuchang["name"] != "武昌区" || wuchang["city"] != "武汉市" || wuchang["office_address"] == "" || wuchang["confirmation_window"] == nil {
		t.Errorf("0106 = %v", wuchang)
	}

	for level, n := range map[string]int{"zhuanke": 2, "zhuanshengben": 8, "": 10} {
		r = c.json("GET", "/catalog/majors?level="+level, nil)
		want(t, r, 200, "")
		majors := r.body["majors"].([]any)
		if len(majors) != n {
			t.Errorf("level %q: %d majors, want %d", level, len(majors), n)
		}
		for _, m := range majors {
			if mm := m.(map[string]any); mm["host_school"] == "" || (level != "" && mm["level"] != level) {
				t.Errorf("level %q: major %v", level, mm)
			}
		}
	}
	want(t, c.json("GET", "/catalog/majors?level=benke", nil), 422, "validation_failed")
}

func TestErrorsAndHealth(t *testing.T) {
	c := caller{t: t}
	want(t, c.json("GET", "/no-such-thing", nil), 404, "not_found")
	want(t, c.json("GET", "/registrations/mine", nil), 401, "unauthenticated")
	want(t, c.json("PATCH", "/sessions", nil), 405, "method_not_allowed")
	big := `{"login_name":"` + strings.Repeat("a", 70<<10) + `"}`
	want(t, c.do("POST", "/sessions", strings.NewReader(big), "application/json"), 413, "request_too_large")

	r := c.do("GET", strings.TrimSuffix(base, "/api/v1")+"/healthz", nil, "")
	if r.status != 200 {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	n, err := db.Migrate(context.Background(), database)
	if err != nil || n != 0 {
		t.Fatalf("second migration run applied %d (%v), want 0", n, err)
	}
}

// Every route the server has is documented in the OpenAPI document.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	r := caller{t: t}.json("GET", "/openapi.json", nil)
	want(t, r, 200, "")
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatal(err)
	}
	h, err := server.Handler(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range h.Routes() {
		path := route.Path
		if isPageRoute(path) {
			continue // a web page (pages.go), not the JSON API
		}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		if doc.Paths[path][strings.ToLower(route.Method)] == nil {
			t.Errorf("%s %s is not in openapi.json", route.Method, path)
		}
	}
}

// Parallel wrong passwords cannot get more tries than the limit.
func TestParallelLoginsAreThrottled(t *testing.T) {
	c := caller{t: t}
	login := uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.json("POST", "/sessions", map[string]any{"login_name": login, "password": "wrong"})
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[401] > 5 || counts[401]+counts[429] != 20 {
		t.Fatalf("answers %v: at most 5 passwords may be checked", counts)
	}
}

// An applicant's account never becomes a staff account.
func TestStaffCannotTakeOverAnApplicantAccount(t *testing.T) {
	c := caller{t: t}
	login := "county-" + uuid.NewString()[:8] + "@example.com"
	want(t, c.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	applicant := logIn(t, login, "secret1")
	store := accounts.NewStore(database)
	if _, err := store.CreateStaff(context.Background(), strings.ToUpper(login), "staff-pass", accounts.RoleCountyReviewer, "0106"); !errors.Is(err, accounts.ErrNotStaff) {
		t.Fatalf("CreateStaff over an applicant: %v, want ErrNotStaff", err)
	}
	if r := applicant.json("GET", "/accounts/me", nil); r.str("role") != "applicant" {
		t.Fatalf("the applicant's session became %s", r.str("role"))
	}

	// Updating a staff account ends its sessions; staff cannot reset by question.
	staffLogin := "reviewer-" + uuid.NewString()[:8] + "@example.com"
	if _, err := store.CreateStaff(context.Background(), staffLogin, "staff-pass", accounts.RoleCountyReviewer, "0106"); err != nil {
		t.Fatal(err)
	}
	reviewer := logIn(t, staffLogin, "staff-pass")
	if _, err := store.CreateStaff(context.Background(), staffLogin, "staff-pass2", accounts.RoleCountyReviewer, "0102"); err != nil {
		t.Fatal(err)
	}
	want(t, reviewer.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	want(t, c.json("POST", "/password-resets", map[string]any{"login_name": staffLogin, "security_question_id": 1, "security_answer": "a", "new_password": "newpass1"}), 401, "reset_rejected")
}

// Wrong passwords from one address lock the login name for that address
// only; from every address together they only slow it down, a second at a
// time: nobody can lock another person out (OWASP).
func TestLoginFailuresLockOnlyTheirAddress(t *testing.T) {
	h, err := server.Handler([]string{"127.0.0.1"}) // believes X-Forwarded-For
	if err != nil {
		t.Fatal(err)
	}
	proxied := httptest.NewServer(h)
	defer proxied.Close()
	login := uuid.NewString()[:8] + "@example.com"
	want(t, caller{t: t}.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	session := func(address, password string) response {
		c := caller{t: t, headers: map[string]string{"X-Forwarded-For": address}}
		return c.json("POST", proxied.URL+"/api/v1/sessions", map[string]any{"login_name": login, "password": password})
	}

	for i := 0; i < 5; i++ {
		want(t, session("10.0.0.1", "wrong"), 401, "invalid_credentials")
	}
	r := session("10.0.0.1", "secret1")
	want(t, r, 429, "too_many_attempts")
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 14*60 {
		t.Errorf("address A refused for %q s, want about 15 minutes", r.header.Get("Retry-After"))
	}
	want(t, session("10.0.0.2", "secret1"), 201, "")

	// Failures from many addresses, each below its pair's limit, up to the
	// login name's: the owner is then slowed down, never locked out.
	limit := server.Accounts.LoginLimits.PerLogin
	for i := 5; i < limit.Max; i++ {
		want(t, session(fmt.Sprintf("10.0.1.%d", i/4), "wrong"), 401, "invalid_credentials")
	}
	r = session("10.0.0.3", "secret1")
	if r.status == 429 {
		want(t, r, 429, "too_many_attempts")
		wait, _ := strconv.Atoi(r.header.Get("Retry-After"))
		if wait < 1 || time.Duration(wait)*time.Second > limit.Delay {
			t.Fatalf("slowed down for %q s, want %s", r.header.Get("Retry-After"), limit.Delay)
		}
		time.Sleep(time.Duration(wait) * time.Second)
		r = session("10.0.0.3", "secret1")
	}
	want(t, r, 201, "")
}
