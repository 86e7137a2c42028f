package api_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// isPageRoute reports whether a route is a web page's (pages.go), not the
// JSON API's: those answer with HTML.
func isPageRoute(path string) bool {
	return !strings.HasPrefix(path, "/api/") && path != "/healthz" && path != "/metrics"
}

// pageURL is the address of a web page of the test server.
func pageURL(path string) string { return strings.TrimSuffix(base, "/api/v1") + path }

// The public pages answer with HTML, the fixed wording and the security headers.
func TestPublicPagesRender(t *testing.T) {
	for path, words := range map[string][]string{
		"/":                {"登录", "注册账号", "现场确认时间"},
		"/login":           {"登录名", "密码", "忘记密码", "<button type=\"submit\">登录</button>"},
		"/signup":          {"登录名", "确认密码", "密保问题", "密保答案", "注册账号"},
		"/password/forgot": {"登录名", "密保问题", "密保答案", "新密码", "重置密码"},
	} {
		resp, err := http.Get(pageURL(path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, w := range words {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
}

// A signed-in page sends a browser without a session to the sign-in page;
// a form posted from another site is refused.
func TestPagesNeedSessionAndSameOrigin(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(pageURL("/password"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("GET /password without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("POST", pageURL("/login"), strings.NewReader(url.Values{"login_name": {"a@example.com"}, "password": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "跨站请求已被拒绝") {
		t.Fatalf("cross-site POST: %d %s", resp.StatusCode, body)
	}
}
