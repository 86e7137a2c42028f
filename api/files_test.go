package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/files"
)

// reportBytes is a JPEG report no other test uploads (files are stored
// once per content).
func reportBytes() []byte {
	return append(append([]byte(nil), jpegFile...), uuid.NewString()...)
}

// awaitingReport submits a 专升本 registration that waits for its report.
func awaitingReport(t *testing.T, applicant caller, name string) string {
	t.Helper()
	r := applicant.json("POST", "/registrations", newRegistration("zhuanshengben", "", name))
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	return id
}

// A report goes to the object store sealed (PostgreSQL keeps no bytes, the
// bucket no plaintext); staff's fetches of it are recorded and listed for
// administrators, the applicant's are not; once retention purges it a
// fetch answers 410 file_purged, and purging again deletes nothing.
func TestReportStoredRecordedAndPurged(t *testing.T) {
	ctx := context.Background()
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant, county, a := newApplicant(t), staff(t, "county0106@example.com"), admin(t)
	id := awaitingReport(t, applicant, "孙丽")
	report := reportBytes()
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", report), 202, "")

	sum := sha256.Sum256(report)
	var inDatabase bool
	if err := database.Get(&inDatabase, `SELECT data IS NOT NULL FROM files WHERE sha256 = $1`, sum[:]); err != nil || inDatabase {
		t.Fatalf("PostgreSQL holds the report's bytes: %v, %v", inDatabase, err)
	}
	raw, err := server.Registering.Files.Objects().Raw(ctx, sum[:])
	if err != nil || bytes.Contains(raw, report[len(jpegFile):]) {
		t.Fatalf("the bucket's object: %d bytes, %v (must exist and not hold the plaintext)", len(raw), err)
	}

	for _, c := range []caller{county, county, applicant} {
		if dl := c.do("GET", "/registrations/"+id+"/diploma-report", nil, ""); dl.status != 200 || !bytes.Equal(dl.raw, report) {
			t.Fatalf("download: %d, %d bytes", dl.status, len(dl.raw))
		}
	}
	r := a.json("GET", "/admin/file-access?registration_id="+id, nil)
	want(t, r, 200, "")
	accesses := r.body["accesses"].([]any)
	if len(accesses) != 2 {
		t.Fatalf("accesses: %s; want the county reviewer's two", r.raw)
	}
	for _, x := range accesses {
		e := x.(map[string]any)
		if e["by_account"] != "county0106@example.com" || e["registration_id"] != id || e["kind"] != "report" {
			t.Errorf("access: %v", e)
		}
	}
	want(t, a.json("GET", "/admin/file-access?registration_id=not-a-uuid", nil), 422, "validation_failed")
	want(t, a.json("GET", "/admin/file-access?limit=501", nil), 422, "validation_failed")
	want(t, county.json("GET", "/admin/file-access", nil), 403, "forbidden")
	page := webAdmin(t).get("/admin/file-access?registration_id=" + id)
	wantPage(t, page, 200, "文件访问记录", "county0106@example.com", "学历认证报告", id)

	// The registration ends without completion, long enough ago.
	want(t, applicant.json("POST", "/registrations/"+id+"/withdraw", nil), 202, "")
	waitFor(t, applicant, id, "withdrawn")
	retention := files.Retention{Online: 30 * 24 * time.Hour, Reports: 180 * 24 * time.Hour}
	if p := purgeAll(t, retention); p != 0 {
		t.Fatalf("purged %d files before their time", p)
	}
	if _, err := database.Exec(`UPDATE registrations SET updated_at = now() - interval '181 days' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`UPDATE files SET created_at = now() - interval '181 days' WHERE sha256 = $1`, sum[:]); err != nil {
		t.Fatal(err)
	}
	if p := purgeAll(t, retention); p != 1 {
		t.Fatalf("purged %d files, want the report", p)
	}
	want(t, county.do("GET", "/registrations/"+id+"/diploma-report", nil, ""), 410, "file_purged")
	want(t, applicant.do("GET", "/registrations/"+id+"/diploma-report", nil, ""), 410, "file_purged")
	if _, err := server.Registering.Files.Objects().Raw(ctx, sum[:]); err == nil {
		t.Fatal("the purged report's object is still in the bucket")
	}
	if p := purgeAll(t, retention); p != 0 {
		t.Fatalf("a second purge deleted %d files", p)
	}
	if got := len(a.json("GET", "/admin/file-access?registration_id="+id, nil).body["accesses"].([]any)); got != 2 {
		t.Fatalf("%d accesses after the purge (the failed fetches are not accesses)", got)
	}
}

// purgeAll runs retention's purge of files to the end, returning how many
// it purged.
func purgeAll(t *testing.T, r files.Retention) int {
	t.Helper()
	n, after := 0, ""
	for {
		p, err := server.Registering.Files.PurgeDue(context.Background(), r, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		n += p.Files
		if p.Last == "" {
			return n
		}
		after = p.Last
	}
}

// With the object store down an upload answers 503 and stores nothing;
// the client's retry with the same Idempotency-Key once it is back is
// accepted once.
func TestUploadWhileObjectStoreDown(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	id := awaitingReport(t, applicant, "周强")
	report := reportBytes()
	keyed := applicant
	keyed.headers = map[string]string{"Idempotency-Key": "report-" + uuid.NewString()}
	if err := s3.Kill(); err != nil {
		t.Fatal(err)
	}
	r := keyed.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", report)
	restartErr := s3.Restart(context.Background())
	want(t, r, 503, "temporarily_unavailable")
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	sum := sha256.Sum256(report)
	var rows int
	if err := database.Get(&rows, `SELECT count(*) FROM files WHERE sha256 = $1`, sum[:]); err != nil || rows != 0 {
		t.Fatalf("%d rows of the refused upload (%v)", rows, err)
	}
	for range 2 {
		r = keyed.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", report)
		want(t, r, 202, "")
	}
	if err := database.Get(&rows, `SELECT count(*) FROM diploma_reports WHERE registration_id = $1`, id); err != nil || rows != 1 {
		t.Fatalf("%d reports after the retries (%v)", rows, err)
	}
}
