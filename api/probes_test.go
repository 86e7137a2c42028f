package api_test

import (
	"testing"
	"time"
)

// Only the answers that reveal something about a person count toward the
// look-up limit: not registration_not_open, validation errors or the
// caller's own registration in progress.
func TestProbesCountOnlyRevealingAnswers(t *testing.T) {
	prober := newApplicant(t)
	me := prober.json("GET", "/accounts/me", nil)
	want(t, me, 200, "")
	failures := func() int {
		t.Helper()
		var n int
		err := database.Get(&n, `SELECT count(*) FROM throttle_attempts WHERE scope = 'lookup:account' AND key = $1 AND failed_at IS NOT NULL`,
			int64(me.body["account_id"].(float64)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	limit := server.LookupLimits.PerLogin.Max

	openWindows(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	defer openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	for i := 0; i <= limit; i++ {
		want(t, prober.json("POST", "/registrations", newRegistration("zhuanke", "", "张三")), 409, "registration_not_open")
	}
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	for i := 0; i <= limit; i++ {
		want(t, prober.json("POST", "/registrations", map[string]any{"kind": "new", "agree_terms": true}), 422, "validation_failed")
	}
	if n := failures(); n != 0 {
		t.Fatalf("%d failures counted, want 0", n)
	}

	// Another account's registration in progress reveals the ID number's.
	taken := newRegistration("zhuanke", "", "李四")
	want(t, newApplicant(t).json("POST", "/registrations", taken), 202, "")
	want(t, prober.json("POST", "/registrations", taken), 409, "registration_in_progress")
	if n := failures(); n != 1 {
		t.Fatalf("%d failures counted, want 1", n)
	}
	// The prober's own does not.
	want(t, prober.json("POST", "/registrations", newRegistration("zhuanke", "", "张三")), 202, "")
	for i := 0; i <= limit; i++ {
		want(t, prober.json("POST", "/registrations", newRegistration("zhuanke", "", "张三")), 409, "registration_in_progress")
	}
	want(t, prober.json("POST", "/enrolled-records/lookup", map[string]any{"name": "王芬", "id_number": fangID, "ticket_number": fangSocial}), 404, "enrolment_not_found")
	if n := failures(); n != 2 {
		t.Fatalf("%d failures counted, want 2", n)
	}
}
