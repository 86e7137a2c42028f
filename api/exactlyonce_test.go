package api_test

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// A decision retried with its Idempotency-Key after the registration has
// moved on, and after its workflow has ended, is answered as the first time
// and applied once: the API sends the update every time and Temporal
// deduplicates it by id.
func TestRetriedDecisionsAreAppliedOnce(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	county, province := staff(t, "county0106@example.com"), staff(t, "province@example.com")
	r := applicant.json("POST", "/registrations", newRegistration("zhuanshengben", "", "吕二十"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")

	county.headers = map[string]string{"Idempotency-Key": "county-" + id}
	reject := map[string]any{"approved": false, "reason": "报告模糊"}
	want(t, county.json("POST", "/registrations/"+id+"/county-review", reject), 200, "")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")
	// The same rejection again: the registration is at county review again,
	// but this decision was made already.
	r = county.json("POST", "/registrations/"+id+"/county-review", reject)
	want(t, r, 200, "")
	if r.str("status") != "county_review" {
		t.Fatalf("retried rejection moved the registration: %s", r.raw)
	}
	want(t, staff(t, "county0106@example.com").json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
	want(t, province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true}), 200, "")

	applicant.headers = map[string]string{"Idempotency-Key": "withdraw-" + id}
	want(t, applicant.json("POST", "/registrations/"+id+"/withdraw", nil), 202, "")
	r = applicant.json("POST", "/registrations/"+id+"/withdraw", nil) // the workflow has ended
	want(t, r, 202, "")
	want(t, county.json("POST", "/registrations/"+id+"/county-review", reject), 200, "")
	applicant.headers = nil
	want(t, applicant.json("POST", "/registrations/"+id+"/withdraw", nil), 409, "registration_closed")

	var counts struct {
		Rejections  int `db:"rejections"`
		Withdrawals int `db:"withdrawals"`
	}
	if err := database.Get(&counts, `SELECT count(*) FILTER (WHERE status = 'awaiting_report' AND by_role = 'county_reviewer') AS rejections,
		count(*) FILTER (WHERE status = 'withdrawn') AS withdrawals FROM registration_history WHERE registration_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if counts.Rejections != 1 || counts.Withdrawals != 1 {
		t.Errorf("history holds %d rejections and %d withdrawals, want 1 and 1", counts.Rejections, counts.Withdrawals)
	}
}

// Parallel uploads of different reports leave one report on file; refused
// uploads and refused photos leave nothing behind.
func TestRefusedUploadsLeaveNothing(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	body := newRegistration("zhuanshengben", "", "施二一")
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	files := countFiles(t)

	var wg sync.WaitGroup
	accepted := make(chan int, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			report := append([]byte(fmt.Sprintf("%%PDF-1.4\n%% report %d of %s\n", i, id)), pdfFile...)
			if applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", report).status == 202 {
				accepted <- i
			}
		}()
	}
	wg.Wait()
	close(accepted)
	if len(accepted) != 1 {
		t.Fatalf("%d of 10 parallel uploads accepted, want 1", len(accepted))
	}
	var reports int
	if err := database.Get(&reports, `SELECT count(*) FROM diploma_reports WHERE registration_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if reports != 1 {
		t.Errorf("%d reports on file after 10 parallel uploads, want 1", reports)
	}
	if got := countFiles(t); got != files+1 {
		t.Errorf("%d files stored for one accepted report, want 1", got-files)
	}

	// A photo for a registration not yet pre-registered is refused and not kept.
	onsite := staff(t, "onsite0106@example.com")
	idNumber := body["personal"].(map[string]any)["id_number"].(string)
	photo := append(append([]byte{}, jpegFile...), []byte(id)...)
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "施二一"}, "photo", photo), 409, "not_pre_registered")
	if got := countFiles(t); got != files+1 {
		t.Errorf("a refused photo left %d file(s)", got-files-1)
	}
}

func countFiles(t *testing.T) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM files`); err != nil {
		t.Fatal(err)
	}
	return n
}
