package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"zikao/activities"
	"zikao/internal/files"
	"zikao/internal/identity"
	"zikao/workflows"
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
// fetch answers 410 file_purged, and a second run of the job deletes
// nothing.
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

	// The registration ends without completion, longer ago than the
	// reports' period of these tests' worker (an hour, retentionPeriods).
	want(t, applicant.json("POST", "/registrations/"+id+"/withdraw", nil), 202, "")
	waitFor(t, applicant, id, "withdrawn")
	if n := runRetention(t, workflows.RetentionJobFiles); n != 0 {
		t.Fatalf("purged %d files before their time", n)
	}
	if _, err := database.Exec(`UPDATE registrations SET updated_at = now() - interval '2 hours' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`UPDATE files SET created_at = now() - interval '2 days' WHERE sha256 = $1`, sum[:]); err != nil {
		t.Fatal(err)
	}
	if n := runRetention(t, workflows.RetentionJobFiles); n != 1 {
		t.Fatalf("purged %d files, want the report", n)
	}
	want(t, county.do("GET", "/registrations/"+id+"/diploma-report", nil, ""), 410, "file_purged")
	want(t, applicant.do("GET", "/registrations/"+id+"/diploma-report", nil, ""), 410, "file_purged")
	if _, err := server.Registering.Files.Objects().Raw(ctx, sum[:]); err == nil {
		t.Fatal("the purged report's object is still in the bucket")
	}
	if n := runRetention(t, workflows.RetentionJobFiles); n != 0 {
		t.Fatalf("a second run purged %d files", n)
	}
	if got := len(a.json("GET", "/admin/file-access?registration_id="+id, nil).body["accesses"].([]any)); got != 2 {
		t.Fatalf("%d accesses after the purge (the refused fetches are not accesses)", got)
	}
}

// runRetention runs a retention job's workflow, as its schedule does, on
// the tests' worker, and returns how many files it purged.
func runRetention(t *testing.T, job string) int {
	t.Helper()
	ctx := context.Background()
	run, err := temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "retention-test-" + uuid.NewString(), TaskQueue: taskQueue},
		workflows.RetentionWorkflowName, workflows.RetentionInput{Job: job})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.RetentionResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res.Deleted[activities.RetainFiles]
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

// Online verification's ID card photo and video go once the registration
// has ended for longer than their period; the portrait, the completed
// registration's photo (used on exam notices), stays.
func TestVerificationFilesPurgedPortraitKept(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	c, id := preRegistered(t)
	try := tryFiles{idCard: identity.SampleIDCardPhoto(77), video: identity.SampleVideo(4873), portrait: identity.SamplePortrait(77)}
	r := tryOnline(c, id, challenge(t, c, id), try)
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("the try: %s", r.raw)
	}
	var stored struct {
		IDCard   string `db:"id_card_photo_file_id"`
		Video    string `db:"video_file_id"`
		Portrait string `db:"portrait_file_id"`
	}
	if err := database.Get(&stored, `SELECT id_card_photo_file_id, video_file_id, portrait_file_id FROM online_tries WHERE registration_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`UPDATE registrations SET updated_at = now() - interval '2 hours' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`UPDATE files SET created_at = now() - interval '2 days' WHERE id IN ($1, $2, $3)`, stored.IDCard, stored.Video, stored.Portrait); err != nil {
		t.Fatal(err)
	}
	if n := runRetention(t, workflows.RetentionJobFiles); n != 2 {
		t.Fatalf("purged %d files, want the ID card photo and the video", n)
	}
	for _, f := range []string{stored.IDCard, stored.Video} {
		if _, err := server.Registering.Files.Get(context.Background(), f); !errors.Is(err, files.ErrPurged) {
			t.Errorf("file %s after the purge: %v", f, err)
		}
	}
	if !bytes.Equal(photoOf(t, id), try.portrait) {
		t.Error("the completed registration's photo is gone")
	}
}
