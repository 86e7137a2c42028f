package api_test

import (
	"testing"
	"time"
)

// BenchmarkLongestPath runs the longest path — 专升本, diploma not found,
// report, county and provincial approval, on-site check — through the HTTP
// API, PostgreSQL, Temporal and the worker, one registration after another,
// and reports completed registrations per second. Bound it with -benchtime:
//
//	go test -run '^$' -bench LongestPath -benchtime 20x ./api/
func BenchmarkLongestPath(b *testing.B) {
	openWindows(b, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	county, province, onsite := staff(b, "county0106@example.com"), staff(b, "province@example.com"), staff(b, "onsite0106@example.com")
	start := time.Now()
	for i := 0; i < b.N; i++ {
		applicant := newApplicant(b)
		body := newRegistration("zhuanshengben", "", "秦十八")
		r := applicant.json("POST", "/registrations", body)
		want(b, r, 202, "")
		id := r.str("registration_id")
		waitFor(b, applicant, id, "awaiting_report")
		want(b, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")
		want(b, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
		want(b, province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true}), 200, "")
		idNumber := body["personal"].(map[string]any)["id_number"].(string)
		want(b, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "秦十八"}, "photo", jpegFile), 200, "")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
}
