package api_test

import (
	"bytes"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the API's /metrics (checked against openapi.json like every
// answer).
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	r := caller{t: t}.do("GET", strings.TrimSuffix(base, "/api/v1")+"/metrics", nil, "")
	want(t, r, 200, "")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q", ct)
	}
	families, err := parseMetrics(bytes.NewReader(r.raw))
	if err != nil {
		t.Fatalf("/metrics is not the text format: %v", err)
	}
	return families
}

func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// sample is the value of the series of name whose labels include labels
// (summed over the others): a counter's or gauge's value, a histogram's
// count.
func sample(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := families[name]
	if f == nil {
		return 0
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if have[pairs[i]] != pairs[i+1] {
			return false
		}
	}
	return true
}

// Personal data or identifiers that no label may hold: ID numbers, login
// names (e-mail addresses), registration IDs.
var notALabel = regexp.MustCompile(`\d{17}[\dXx]|@|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-`)

// After a 专科 registration through the on-site check, a 专升本 one waiting
// for its county review, a throttled login and an unmatched path, /metrics
// shows the requests by route template and status, their latencies, the
// throttled attempt and the backlog; no label holds personal data.
func TestMetricsAfterEndToEndRun(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	before := scrape(t)
	if sample(before, "zikao_backlog_up") != 1 {
		t.Fatal("zikao_backlog_up is not 1")
	}

	// 专科: pre-registered at once, completed by the on-site check.
	onsite := staff(t, "onsite0106@example.com")
	zhuanke := newApplicant(t)
	body := newRegistration("zhuanke", "", "韩梅梅")
	idNumber := body["personal"].(map[string]any)["id_number"].(string)
	r := zhuanke.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	want(t, zhuanke.json("GET", "/registrations/"+id, nil), 200, "")
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "韩梅梅"}, "photo", jpegFile), 200, "")

	// 专升本 with an unknown diploma: its report waits for the county review.
	waiting := newApplicant(t)
	r = waiting.json("POST", "/registrations", newRegistration("zhuanshengben", "", "欧阳娜娜"))
	want(t, r, 202, "")
	reviewID := r.str("registration_id")
	t.Cleanup(func() { waiting.json("POST", "/registrations/"+reviewID+"/withdraw", nil) })
	waitFor(t, waiting, reviewID, "awaiting_report")
	want(t, waiting.multipart("/registrations/"+reviewID+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")
	// Make it overdue: it entered county review four days ago.
	if _, err := database.Exec(`UPDATE registration_history SET at = at - interval '4 days'
		WHERE registration_id = $1 AND status = 'county_review'`, reviewID); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`UPDATE registrations SET stage_since = stage_since - interval '4 days' WHERE id = $1`, reviewID); err != nil {
		t.Fatal(err)
	}

	// A throttled login: five wrong passwords, then 429.
	login := uuid.NewString()[:8] + "@example.com"
	anyone := caller{t: t}
	want(t, anyone.json("POST", "/accounts", map[string]any{"login_name": login, "password": "secret1", "security_question_id": 1, "security_answer": "a"}), 201, "")
	for range 5 {
		want(t, anyone.json("POST", "/sessions", map[string]any{"login_name": login, "password": "wrong"}), 401, "invalid_credentials")
	}
	want(t, anyone.json("POST", "/sessions", map[string]any{"login_name": login, "password": "secret1"}), 429, "too_many_attempts")

	// A path that names nothing, holding an ID number; a method of the client's own.
	want(t, anyone.json("GET", "/no-such-thing/"+idNumber, nil), 404, "not_found")
	want(t, anyone.json("X"+idNumber, "/registrations/mine", nil), 405, "method_not_allowed")

	after := scrape(t)
	moved := func(name string, by float64, labels ...string) {
		t.Helper()
		if d := sample(after, name, labels...) - sample(before, name, labels...); d < by {
			t.Errorf("%s%v moved by %v, want at least %v", name, labels, d, by)
		}
	}
	submit := []string{"method", "POST", "route", "/api/v1/registrations"}
	moved("zikao_http_requests_total", 2, append(submit, "status", "202")...)
	moved("zikao_http_request_duration_seconds", 2, submit...)
	onsiteCheck := []string{"method", "POST", "route", "/api/v1/registrations/:id/onsite-check"}
	moved("zikao_http_requests_total", 1, append(onsiteCheck, "status", "200")...)
	moved("zikao_http_request_duration_seconds", 1, onsiteCheck...)
	moved("zikao_http_requests_total", 1, "method", "GET", "route", "/api/v1/registrations/:id", "status", "200")
	moved("zikao_http_requests_total", 1, "method", "POST", "route", "/api/v1/registrations/:id/diploma-report", "status", "202")
	moved("zikao_http_requests_total", 5, "method", "POST", "route", "/api/v1/sessions", "status", "401")
	moved("zikao_http_requests_total", 1, "method", "POST", "route", "/api/v1/sessions", "status", "429")
	moved("zikao_http_throttled_total", 1, "route", "/api/v1/sessions")
	moved("zikao_http_requests_total", 1, "method", "GET", "route", "unmatched", "status", "404")
	moved("zikao_http_requests_total", 1, "method", "other", "route", "unmatched", "status", "405")
	moved("zikao_http_requests_total", 1, "method", "GET", "route", "/metrics", "status", "200")

	// The backlog, from the read model.
	area := []string{"exam_area", "0106"}
	for _, s := range []struct {
		name   string
		labels []string
		least  float64
	}{
		{"zikao_backlog_up", nil, 1},
		{"zikao_open_registrations", append([]string{"status", "county_review"}, area...), 1},
		{"zikao_reviews_waiting", append([]string{"stage", "county"}, area...), 1},
		{"zikao_reviews_overdue", append([]string{"stage", "county"}, area...), 1},
		{"zikao_reviews_oldest_waiting_seconds", append([]string{"stage", "county"}, area...), 4 * 24 * 3600},
		{"zikao_reviews_overdue_after_seconds", nil, 72 * 3600},
	} {
		if got := sample(after, s.name, s.labels...); got < s.least {
			t.Errorf("%s%v = %v, want at least %v", s.name, s.labels, got, s.least)
		}
	}
	if got := sample(after, "zikao_open_registrations", "status", "completed"); got != 0 {
		t.Errorf("completed registrations counted as open: %v", got)
	}

	series := 0
	for name, f := range after {
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				if notALabel.MatchString(l.GetValue()) {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	t.Logf("%d families, %d series", len(after), series)
}

// Each engine counts into a registry of its own: a second one starts at
// nothing, whatever the first has counted.
func TestMetricsRegistryPerEngine(t *testing.T) {
	h, err := server.Handler(nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	get("/api/v1/catalog/exam-areas")
	families, err := parseMetrics(get("/metrics").Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := sample(families, "zikao_http_requests_total", "route", "/api/v1/catalog/exam-areas"); got != 1 {
		t.Errorf("the new engine counted %v requests, want 1", got)
	}
}
