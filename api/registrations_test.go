package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zikao/internal/accounts"
	"zikao/internal/idcard"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/testenv"
	"zikao/workflows"
)

// newRegistration is the body of a 新生注册 for a fresh valid ID number.
func newRegistration(level, idNumber, name string) map[string]any {
	if idNumber == "" {
		idNumber = testenv.IDNumber()
	}
	n, _ := idcard.Parse(idNumber, time.Now())
	app := map[string]any{"major_type": "social", "level": level, "major_code": "590201", "exam_area_code": "0106"}
	if level == "zhuanshengben" {
		app["major_code"], app["prior_school"], app["prior_diploma_number"] = "120402", "湖北大学", "104871201806000123"
	}
	return map[string]any{
		"kind": "new", "agree_terms": true,
		"personal": map[string]any{"name": name, "id_number": idNumber, "gender": n.Gender(),
			"birth_date": n.BirthDate().Format(time.DateOnly), "ethnicity": "汉族", "phone": "13800000000", "address": "武汉市武昌区"},
		"application": app,
	}
}

// waitFor polls the registration until it reaches status.
func waitFor(t testing.TB, c caller, id, status string) response {
	t.Helper()
	return pollFor(t, c, id, status, 50*time.Millisecond)
}

// pollFor is waitFor asking every interval.
func pollFor(t testing.TB, c caller, id, status string, interval time.Duration) response {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := c.json("GET", "/registrations/"+id, nil)
		if r.str("status") == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration %s is %s, want %s", id, r.str("status"), status)
		}
		time.Sleep(interval)
	}
}

func historyOf(r response) []string {
	var out []string
	for _, h := range r.body["history"].([]any) {
		out = append(out, h.(map[string]any)["status"].(string))
	}
	return out
}

// recordHistory writes the workflow's history to workflows/testdata when
// ZIKAO_RECORD_HISTORIES is set, for the replay test.
func recordHistory(t *testing.T, name, registrationID string) {
	testenv.RecordHistory(t, temporal, name, registrationID)
}

var ticketFormat = regexp.MustCompile(`^0106271\d{5}$`)

func TestLongestPathThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	county, province, onsite := staff(t, "county0106@example.com"), staff(t, "province@example.com"), staff(t, "onsite0106@example.com")
	if _, err := accounts.NewStore(database).CreateStaff(context.Background(), "county0102@example.com", "password", accounts.RoleCountyReviewer, "0102"); err != nil {
		t.Fatal(err)
	}
	otherCounty, otherApplicant := logIn(t, "county0102@example.com", "password"), newApplicant(t)

	body := newRegistration("zhuanshengben", "", "欧阳•娜娜") // U+2022, as some keyboards type it
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	if r.str("status") != "diploma_check" || r.str("host_school") != "华中师范大学" {
		t.Fatalf("submission answer %s", r.raw)
	}
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "张三")), 409, "registration_in_progress")
	// Another account, the same ID number: told it is the ID number's.
	r = otherApplicant.json("POST", "/registrations", body)
	want(t, r, 409, "registration_in_progress")
	if msg := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "身份证号") {
		t.Errorf("message %q does not say the ID number is taken", msg)
	}

	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.json("GET", "/registrations/mine", nil), 200, "")

	// Scope: other applicants and other areas' staff see nothing of it.
	want(t, otherApplicant.json("GET", "/registrations/"+id, nil), 403, "forbidden")
	want(t, otherCounty.json("GET", "/registrations/"+id, nil), 403, "forbidden")
	want(t, otherApplicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 403, "forbidden")

	// The report: checked by content, then county review.
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", []byte("plain text, not a PDF")), 415, "unsupported_file_type")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", bytes.Repeat(pdfFile, 5<<20/len(pdfFile)+1)), 413, "file_too_large")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "short"}, "file", pdfFile), 422, "validation_failed")
	r = applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "abcd1234efgh"}, "file", pdfFile)
	want(t, r, 202, "")
	if r.str("status") != "county_review" {
		t.Fatalf("after upload: %s", r.raw)
	}
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 409, "not_awaiting_report")

	// Reviewers: inbox, download, order, scope.
	r = county.json("GET", "/reviews?stage=county", nil)
	want(t, r, 200, "")
	found := false
	for _, v := range r.body["reviews"].([]any) {
		found = found || v.(map[string]any)["registration_id"] == id
	}
	if !found {
		t.Fatalf("registration not in the county inbox: %s", r.raw)
	}
	if r := otherCounty.json("GET", "/reviews?stage=county", nil); len(r.body["reviews"].([]any)) != 0 {
		t.Fatalf("another area's inbox shows %s", r.raw)
	}
	want(t, county.json("GET", "/reviews?stage=provincial", nil), 403, "forbidden")
	if dl := county.do("GET", "/registrations/"+id+"/diploma-report", nil, ""); dl.status != 200 || !bytes.Equal(dl.raw, pdfFile) || dl.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("report download: %d %s", dl.status, dl.header)
	}
	want(t, province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true}), 409, "not_awaiting_review")
	want(t, applicant.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 403, "forbidden")
	want(t, otherCounty.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 403, "forbidden")
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": false}), 422, "validation_failed")

	// The same decision sent twice with one Idempotency-Key is applied once.
	county.headers = map[string]string{"Idempotency-Key": "county-approval-1"}
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
	r = county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true})
	want(t, r, 200, "")
	if r.str("status") != "provincial_review" {
		t.Fatalf("after county approval: %s", r.raw)
	}
	county.headers = nil
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 409, "not_awaiting_review")

	r = province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true})
	want(t, r, 200, "")
	if r.str("status") != "pre_registered" || r.str("next_step") == "" {
		t.Fatalf("after provincial approval: %s", r.raw)
	}

	// On site: look-up, identity, photo.
	idNumber := body["personal"].(map[string]any)["id_number"].(string)
	r = onsite.json("GET", "/onsite/registrations?id_number="+idNumber, nil)
	want(t, r, 200, "")
	if regs := r.body["registrations"].([]any); len(regs) != 1 {
		t.Fatalf("on-site look-up: %s", r.raw)
	}
	want(t, onsite.json("GET", "/onsite/registrations?id_number=123", nil), 422, "validation_failed")
	want(t, county.json("GET", "/onsite/registrations?id_number="+idNumber, nil), 403, "forbidden")
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": testenv.IDNumber(), "name": "欧阳·娜娜"}, "photo", jpegFile), 409, "identity_mismatch")
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "欧阳娜娜"}, "photo", jpegFile), 409, "identity_mismatch")
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "欧阳·娜娜"}, "photo", pdfFile), 415, "unsupported_file_type")
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "欧阳·娜娜"}, "photo", bytes.Repeat(jpegFile, 6<<20/len(jpegFile))), 413, "file_too_large")
	want(t, onsite.json("POST", "/registrations/"+id+"/onsite-check", map[string]any{"id_card_number": idNumber}), 400, "malformed_body")
	onsite.headers = map[string]string{"Idempotency-Key": "onsite-" + id}
	r = onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "欧阳·娜娜"}, "photo", jpegFile)
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("after the on-site check: %s", r.raw)
	}
	// The operator's client retries (its answer was lost): the same answer,
	// although the workflow has ended.
	again := onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "欧阳·娜娜"}, "photo", jpegFile)
	want(t, again, 200, "")
	if again.str("ticket_number") != r.str("ticket_number") {
		t.Fatalf("retried on-site check: %s", again.raw)
	}
	onsite.headers = nil
	wantHistory := "[diploma_check awaiting_report county_review provincial_review pre_registered completed]"
	if got := historyOf(r); fmtSlice(got) != wantHistory {
		t.Errorf("history %v, want %s", got, wantHistory)
	}
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": "欧阳·娜娜"}, "photo", jpegFile), 409, "not_pre_registered")
	want(t, applicant.json("POST", "/registrations/"+id+"/withdraw", nil), 409, "registration_closed")
	recordHistory(t, "new-zhuanshengben-reviewed", id)

	// Registered and confirmed: that ID number cannot register again.
	want(t, otherApplicant.json("POST", "/registrations", newRegistration("zhuanke", idNumber, "欧阳·娜娜")), 409, "id_number_registered")
}

func fmtSlice(s []string) string {
	b := "["
	for i, v := range s {
		if i > 0 {
			b += " "
		}
		b += v
	}
	return b + "]"
}

func TestRejectionAndWithdrawalThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	county, province := staff(t, "county0106@example.com"), staff(t, "province@example.com")
	r := applicant.json("POST", "/registrations", newRegistration("zhuanshengben", "", "李雷"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"report_number": "R2020001", "certificate_number": "C2020001"}, "file", jpegFile), 202, "")
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
	r = province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": false, "reason": "证书编号与报告不符"})
	want(t, r, 200, "")
	if r.str("status") != "awaiting_report" || r.str("rejection_reason") != "证书编号与报告不符" {
		t.Fatalf("after rejection: %s", r.raw)
	}
	r = applicant.json("POST", "/registrations/"+id+"/withdraw", nil)
	want(t, r, 202, "")
	if r.str("status") != "withdrawn" {
		t.Fatalf("after withdrawal: %s", r.raw)
	}
	want(t, applicant.json("POST", "/registrations/"+id+"/withdraw", nil), 409, "registration_closed")
	recordHistory(t, "new-zhuanshengben-rejected-withdrawn", id)
	// Withdrawn: the applicant may register again.
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "李雷")), 202, "")
}

func TestDiplomaFoundAndZhuankeThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	onsite := staff(t, "onsite0106@example.com")

	found := newApplicant(t)
	r := found.json("POST", "/registrations", newRegistration("zhuanshengben", "420106199503151234", "李明"))
	want(t, r, 202, "")
	liMing := r.str("registration_id")
	r = waitFor(t, found, liMing, "pre_registered")
	if got := fmtSlice(historyOf(r)); got != "[diploma_check pre_registered]" {
		t.Errorf("history %s", got)
	}

	zhuanke := newApplicant(t)
	body := newRegistration("zhuanke", "", "韩梅梅")
	r = zhuanke.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	if r.str("status") != "pre_registered" {
		t.Fatalf("专科 starts pre-registered: %s", r.raw)
	}
	r = onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": body["personal"].(map[string]any)["id_number"].(string), "name": "韩梅梅"}, "photo", jpegFile)
	want(t, r, 200, "")
	if !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("ticket: %s", r.raw)
	}
	recordHistory(t, "new-zhuanke", id)

	r = onsite.multipart("/registrations/"+liMing+"/onsite-check", map[string]string{"id_card_number": "420106199503151234", "name": "李明"}, "photo", jpegFile)
	want(t, r, 200, "")
	recordHistory(t, "new-zhuanshengben-found", liMing)
}

func TestSubmissionValidation(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	body := newRegistration("zhuanshengben", "", "张三")
	p, a := body["personal"].(map[string]any), body["application"].(map[string]any)
	body["agree_terms"] = false
	p["id_number"] = p["id_number"].(string)[:17] + map[bool]string{true: "1", false: "2"}[p["id_number"].(string)[17] != '1']
	p["name"] = "Zhang San"
	p["phone"] = "12345"
	a["prior_school"] = ""
	a["prior_diploma_number"] = "12AB"
	a["exam_area_code"] = "9999"
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 422, "validation_failed")
	fields := r.body["error"].(map[string]any)["fields"].(map[string]any)
	for _, f := range []string{"agree_terms", "personal.id_number", "personal.name", "personal.phone", "application.prior_school", "application.prior_diploma_number", "application.exam_area_code"} {
		if fields[f] == nil {
			t.Errorf("no message for %s: %s", f, r.raw)
		}
	}

	body = newRegistration("zhuanke", "", "张三")
	p, a = body["personal"].(map[string]any), body["application"].(map[string]any)
	p["gender"] = map[string]string{"male": "female", "female": "male"}[p["gender"].(string)]
	p["birth_date"] = "1970-01-01"
	a["major_code"] = "120402" // a 专升本 major
	r = applicant.json("POST", "/registrations", body)
	want(t, r, 422, "validation_failed")
	fields = r.body["error"].(map[string]any)["fields"].(map[string]any)
	for _, f := range []string{"personal.gender", "personal.birth_date", "application.major_code"} {
		if fields[f] == nil {
			t.Errorf("no message for %s: %s", f, r.raw)
		}
	}
	want(t, applicant.json("POST", "/registrations", map[string]any{"kind": "other"}), 422, "validation_failed")

	// A submission retried with its Idempotency-Key gets the registration it made.
	applicant.headers = map[string]string{"Idempotency-Key": "submit-" + uuid.NewString()}
	first := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "张三"))
	want(t, first, 202, "")
	for i := 0; i < 6; i++ { // never throttled: nothing was refused
		again := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "张三"))
		want(t, again, 202, "")
		if again.str("registration_id") != first.str("registration_id") {
			t.Fatalf("retried submission made %s, first %s", again.str("registration_id"), first.str("registration_id"))
		}
	}
	applicant.headers = nil
	want(t, applicant.json("POST", "/registrations/"+first.str("registration_id")+"/withdraw", nil), 202, "")

	// No open window in the exam area: registration is refused.
	openWindows(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "张三")), 409, "registration_not_open")
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
}

// Twenty simultaneous submissions for one ID number, from twenty accounts,
// make exactly one registration.
func TestConcurrentSubmissionsOneRegistration(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	body := newRegistration("zhuanke", "", "周杰")
	callers := make([]caller, 20)
	for i := range callers {
		callers[i] = newApplicant(t)
	}
	statuses := make([]int, len(callers))
	codes := make([]string, len(callers))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := c.json("POST", "/registrations", body)
			statuses[i], codes[i] = r.status, r.errorCode()
		}()
	}
	close(start)
	wg.Wait()
	accepted := 0
	for i, s := range statuses {
		switch {
		case s == 202:
			accepted++
		case s != 409 || codes[i] != "registration_in_progress":
			t.Errorf("submission %d: %d %s", i, s, codes[i])
		}
	}
	var rows int
	if err := database.Get(&rows, `SELECT count(*) FROM registrations WHERE id_number = $1`, body["personal"].(map[string]any)["id_number"]); err != nil {
		t.Fatal(err)
	}
	if accepted != 1 || rows != 1 {
		t.Fatalf("%d accepted, %d rows; want exactly one", accepted, rows)
	}
}

// A registration left pre-registered when the window closes expires.
func TestExpiryOnRealServer(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().Add(2*time.Second))
	defer openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	r := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "赵敏"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	r = waitFor(t, applicant, id, "expired")
	if r.str("next_step") == "" {
		t.Error("an expired registration says what to do next")
	}
	recordHistory(t, "new-zhuanke-expired", id)
}

// A registration row whose workflow never started (the API stopped in
// between, or Temporal did not answer) is started by the reconciler.
func TestUnstartedRegistrationIsStartedByTheReconciler(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	me := applicant.json("GET", "/accounts/me", nil)
	idNumber := testenv.IDNumber()
	n, _ := idcard.Parse(idNumber, time.Now())
	orphan := &registrations.Registration{ID: uuid.NewString(), AccountID: int64(me.body["account_id"].(float64)), Kind: "new",
		Status: "pre_registered", Name: "孙悟", IDNumber: idNumber, Gender: n.Gender(), BirthDate: n.BirthDate(), Phone: "13800000000",
		MajorType: "social", Level: "zhuanke", MajorCode: "590201", ExamAreaCode: "0106", Year: year, Sitting: sitting, TermsAgreedAt: time.Now()}
	if err := registrations.NewStore(database).Create(context.Background(), orphan, "考生提交注册申请"); err != nil {
		t.Fatal(err)
	}
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", idNumber, "孙悟")), 409, "registration_in_progress")
	// No workflow runs it yet: a decision is to be sent again later.
	r := applicant.json("POST", "/registrations/"+orphan.ID+"/withdraw", nil)
	want(t, r, 503, "temporarily_unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	// Too fresh to be taken for an orphan: its workflow may be starting.
	sweep(t)
	if workflowStatus(t, orphan.ID) != "missing" {
		t.Fatal("the reconciler started the workflow of a registration less than a minute old")
	}
	age(t, orphan.ID)
	if sw := sweep(t); sw.Started != 1 {
		t.Fatalf("sweep %+v, want one workflow started", sw)
	}
	if st := workflowStatus(t, orphan.ID); st != "running" {
		t.Fatalf("workflow %s after the sweep, want running", st)
	}
	if sw := sweep(t); sw.Started+sw.Closed+sw.Restored != 0 {
		t.Fatalf("second sweep repaired again: %+v", sw)
	}
}

// A submission retried with its Idempotency-Key after Temporal did not
// answer starts the workflow the first attempt could not (it used to answer
// 202 for a registration without one).
func TestRetriedSubmissionStartsItsWorkflow(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	me := applicant.json("GET", "/accounts/me", nil)
	who := accounts.Account{ID: int64(me.body["account_id"].(float64)), Role: accounts.RoleApplicant}
	var in registering.Submission
	raw, _ := json.Marshal(newRegistration("zhuanke", "", "孙悟空"))
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	down, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	away := *server.Registering
	away.Temporal, away.StartTimeout = down, 2*time.Second
	_, err = away.Submit(context.Background(), who, in, "retry-me")
	if !errors.Is(err, registering.ErrUnavailable) {
		t.Fatalf("submission with Temporal away: %v, want ErrUnavailable", err)
	}
	r := applicant.do("POST", "/registrations", bytes.NewReader(raw), "application/json")
	want(t, r, 409, "registration_in_progress") // without the key: another submission
	applicant.headers = map[string]string{"Idempotency-Key": "retry-me"}
	r = applicant.do("POST", "/registrations", bytes.NewReader(raw), "application/json")
	want(t, r, 202, "")
	if st := workflowStatus(t, r.str("registration_id")); st != "running" {
		t.Fatalf("workflow %s after the retried submission, want running", st)
	}
}

// A registration whose workflow an operator terminated is closed as
// withdrawn by the reconciler; its report stays on file.
func TestTerminatedRegistrationIsClosedByTheReconciler(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	r := applicant.json("POST", "/registrations", newRegistration("zhuanshengben", "", "沈十七"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")
	if err := temporal.TerminateWorkflow(context.Background(), workflows.WorkflowID(id), "", "stuck"); err != nil {
		t.Fatal(err)
	}
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "沈十七")), 409, "registration_in_progress")
	age(t, id)
	if sw := sweep(t); sw.Closed != 1 {
		t.Fatalf("sweep %+v, want one registration closed", sw)
	}
	r = applicant.json("GET", "/registrations/"+id, nil)
	if r.str("status") != "withdrawn" || r.body["report"] == nil {
		t.Fatalf("terminated registration: %s", r.raw)
	}
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "沈十七")), 202, "")
}

// A step written by a workflow task that Temporal never committed leaves
// the row ahead of its workflow (here: withdrawn while the workflow waits
// for the on-site check); the reconciler sets it back.
func TestRowAheadOfItsWorkflowIsSetBack(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	r := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "周二四"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	err := registrations.NewStore(database).Record(context.Background(), registrations.Transition{RegistrationID: id, Seq: 2,
		Status: "withdrawn", At: time.Now(), ByRole: "applicant", Note: "考生已撤销注册", UpdateID: "withdraw/lost", HistoryLength: 3})
	if err != nil {
		t.Fatal(err)
	}
	age(t, id)
	if sw := sweep(t); sw.Restored != 1 {
		t.Fatalf("sweep %+v, want one registration restored", sw)
	}
	r = applicant.json("GET", "/registrations/"+id, nil)
	if r.str("status") != "pre_registered" || len(r.body["history"].([]any)) != 1 {
		t.Fatalf("after the sweep: %s", r.raw)
	}
}

// sweep runs the reconciler once.
func sweep(t *testing.T) registering.Sweep {
	t.Helper()
	sw, err := registering.NewReconciler(server.Registering, database).Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// age makes a registration look untouched for two minutes.
func age(t *testing.T, id string) {
	t.Helper()
	_, err := database.Exec(`UPDATE registrations SET created_at = created_at - interval '2 minutes',
		updated_at = updated_at - interval '2 minutes', checked_at = checked_at - interval '2 minutes' WHERE id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
}

// workflowStatus is "missing", "running" or "closed".
func workflowStatus(t *testing.T, registrationID string) string {
	t.Helper()
	d, err := temporal.DescribeWorkflow(context.Background(), workflows.WorkflowID(registrationID), "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return "missing"
	case err != nil:
		t.Fatal(err)
	case d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	}
	return "closed"
}

// The county office rejects the report; a new one passes both reviews.
func TestCountyRejectionThenNewReportThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	county, province, onsite := staff(t, "county0106@example.com"), staff(t, "province@example.com"), staff(t, "onsite0106@example.com")
	body := newRegistration("zhuanshengben", "", "杨十九")
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", jpegFile), 202, "")
	r = county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": false, "reason": "报告照片不清晰"})
	want(t, r, 200, "")
	if r.str("status") != "awaiting_report" || r.str("rejection_reason") != "报告照片不清晰" {
		t.Fatalf("after the county rejection: %s", r.raw)
	}
	r = applicant.json("GET", "/registrations/mine", nil)
	if !strings.Contains(r.str("next_step"), "报告照片不清晰") {
		t.Errorf("next step does not give the reason: %s", r.str("next_step"))
	}
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGJ"}, "file", pdfFile), 202, "")
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
	want(t, province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true}), 200, "")
	r = onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": body["personal"].(map[string]any)["id_number"].(string), "name": "杨十九"}, "photo", jpegFile)
	want(t, r, 200, "")
	if got := fmtSlice(historyOf(r)); got != "[diploma_check awaiting_report county_review awaiting_report county_review provincial_review pre_registered completed]" {
		t.Errorf("history %s", got)
	}
	if r.body["rejection_reason"] != nil {
		t.Errorf("rejection reason after approval: %v", r.body["rejection_reason"])
	}
	recordHistory(t, "new-zhuanshengben-county-rejected", id)
}

// Before the window opens, registration is possible but not the on-site check.
func TestOnsiteCheckBeforeTheWindowOpens(t *testing.T) {
	openWindows(t, time.Now().Add(24*time.Hour), time.Now().AddDate(0, 0, 30))
	defer openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant, onsite := newApplicant(t), staff(t, "onsite0106@example.com")
	body := newRegistration("zhuanke", "", "许二十")
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	if !strings.Contains(r.str("next_step"), "现场确认") {
		t.Errorf("next step: %s", r.str("next_step"))
	}
	want(t, onsite.multipart("/registrations/"+r.str("registration_id")+"/onsite-check",
		map[string]string{"id_card_number": body["personal"].(map[string]any)["id_number"].(string), "name": "许二十"}, "photo", jpegFile),
		409, "outside_confirmation_window")
}

// An administrator moves the window (zikao window set): an open
// registration keeps to the new one, in its workflow and in its view.
func TestWindowMovedByAdministrator(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant, onsite := newApplicant(t), staff(t, "onsite0106@example.com")
	body := newRegistration("zhuanke", "", "孔廿四")
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	ctx := context.Background()
	windowOf := func() time.Time {
		w := applicant.json("GET", "/registrations/"+id, nil).body["confirmation_window"].(map[string]any)
		end, _ := time.Parse(time.RFC3339, w["ends_at"].(string))
		return end
	}

	later := workflows.Window{StartsAt: time.Now().Add(24 * time.Hour).Truncate(time.Second), EndsAt: time.Now().AddDate(0, 0, 40).Truncate(time.Second)}
	if err := workflows.ChangeWindow(ctx, temporal, id, later, "move-1"); err != nil {
		t.Fatal(err)
	}
	// The same request again, even with other dates, was applied already.
	if err := workflows.ChangeWindow(ctx, temporal, id, workflows.Window{StartsAt: later.StartsAt, EndsAt: later.EndsAt.Add(time.Hour)}, "move-1"); err != nil {
		t.Fatal(err)
	}
	if end := windowOf(); !end.Equal(later.EndsAt) {
		t.Fatalf("window ends %s, want %s", end, later.EndsAt)
	}
	// A window in the past would expire the area's registrations at once: refused.
	err := workflows.ChangeWindow(ctx, temporal, id, workflows.Window{StartsAt: time.Now().Add(-48 * time.Hour), EndsAt: time.Now().Add(-time.Hour)}, "move-2")
	if code, _ := workflows.IsRefusal(err); code != workflows.ErrInvalidDecision {
		t.Fatalf("window in the past: %v", err)
	}
	// The window now opens tomorrow: no on-site check today.
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check",
		map[string]string{"id_card_number": body["personal"].(map[string]any)["id_number"].(string), "name": "孔廿四"}, "photo", jpegFile),
		409, "outside_confirmation_window")

	// Moved to close in two seconds: the registration expires then.
	soon := workflows.Window{StartsAt: time.Now().Add(-time.Hour), EndsAt: time.Now().Add(2 * time.Second)}
	if err := workflows.ChangeWindow(ctx, temporal, id, soon, "move-3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, applicant, id, "expired")
	recordHistory(t, "new-zhuanke-window-moved", id)
}
