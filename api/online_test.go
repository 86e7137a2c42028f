package api_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zikao/internal/accounts"
	"zikao/internal/idcard"
	"zikao/internal/identity"
	"zikao/internal/registering"
	"zikao/internal/testenv"
	"zikao/workflows"
)

// A try's files: the portrait and ID card photo of the same (sample)
// person match; seed picks the person.
type tryFiles struct {
	idCard, video, portrait []byte
}

func matching(seed int) tryFiles {
	return tryFiles{idCard: identity.SampleIDCardPhoto(seed), video: identity.SampleVideo(4096), portrait: identity.SamplePortrait(seed)}
}

func mismatching(seed int) tryFiles {
	return tryFiles{idCard: identity.SampleIDCardPhoto(seed + 1), video: identity.SampleVideo(4096), portrait: identity.SamplePortrait(seed)}
}

// challenge asks for the digits of a try and returns the challenge's id.
func challenge(t testing.TB, c caller, id string) string {
	t.Helper()
	r := c.json("POST", "/registrations/"+id+"/online-verification/challenge", nil)
	want(t, r, 201, "")
	if len(r.str("digits")) != 4 {
		t.Fatalf("digits: %s", r.raw)
	}
	return r.str("challenge_id")
}

// tryOnline sends a try (the files that are not nil).
func tryOnline(c caller, id, challengeID string, f tryFiles) response {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("challenge_id", challengeID)
	for field, data := range map[string][]byte{"id_card_photo": f.idCard, "video": f.video, "portrait": f.portrait} {
		if data != nil {
			fw, _ := w.CreateFormFile(field, field+".bin")
			_, _ = fw.Write(data)
		}
	}
	_ = w.Close()
	return c.do(http.MethodPost, "/registrations/"+id+"/online-verification", &buf, w.FormDataContentType())
}

// preRegistered makes a 专科 registration (pre-registered at once) of a
// fresh applicant and returns the applicant and its id.
func preRegistered(t *testing.T) (caller, string) {
	t.Helper()
	p := registerPerson(t, "", "韩梅梅")
	return p.c, p.id
}

// person is an applicant with a 专科 registration, pre-registered at once:
// its login name (for the e-mails), ID number and name (for the on-site
// check).
type person struct {
	c                         caller
	login, id, idNumber, name string
}

// registerPerson signs up an applicant and registers a 专科 in exam area
// 0106 for idNumber (a fresh one when empty).
func registerPerson(t *testing.T, idNumber, name string) person {
	t.Helper()
	if idNumber == "" {
		idNumber = testenv.IDNumber()
	}
	login := signUp(t)
	p := person{c: logIn(t, login, "secret1"), login: login, idNumber: idNumber, name: name}
	r := p.c.json("POST", "/registrations", newRegistration("zhuanke", idNumber, name))
	want(t, r, 202, "")
	if r.str("status") != "pre_registered" {
		t.Fatalf("专科 starts pre-registered: %s", r.raw)
	}
	p.id = r.str("registration_id")
	return p
}

// view reads the registration as its applicant sees it.
func (p person) view() response {
	p.c.t.Helper()
	r := p.c.json("GET", "/registrations/"+p.id, nil)
	want(p.c.t, r, 200, "")
	return r
}

// confirmOnsite completes the registration at the office's desk.
func (p person) confirmOnsite(t *testing.T) response {
	t.Helper()
	r := staff(t, "onsite0106@example.com").multipart("/registrations/"+p.id+"/onsite-check",
		map[string]string{"id_card_number": p.idNumber, "name": p.name}, "photo", jpegFile)
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("the on-site check: %s", r.raw)
	}
	return r
}

func online(r response) map[string]any {
	o, _ := r.body["online_verification"].(map[string]any)
	return o
}

// wantOnline checks the view's online verification: whether it is
// available, the tries left, the last result ("" for null).
func wantOnline(t *testing.T, r response, available bool, triesLeft int, lastResult string) {
	t.Helper()
	o := online(r)
	var last any
	if lastResult != "" {
		last = lastResult
	}
	if o["available"] != available || o["tries_left"] != float64(triesLeft) || o["last_result"] != last {
		t.Fatalf("online verification %v, want available %v, %d tries left, last result %q: %s", o, available, triesLeft, lastResult, r.raw)
	}
}

// count counts the rows of a table (tickets, online_tries, …) of a registration.
func count(t *testing.T, table, registrationID string) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM `+table+` WHERE registration_id = $1`, registrationID); err != nil {
		t.Fatal(err)
	}
	return n
}

// photoOf returns the bytes of a registration's photo.
func photoOf(t *testing.T, registrationID string) []byte {
	t.Helper()
	var id string
	if err := database.Get(&id, `SELECT photo_file_id FROM registrations WHERE id = $1`, registrationID); err != nil {
		t.Fatal(err)
	}
	f, err := server.Registering.Files.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

// toIdentityReview makes three failed tries (face mismatches of seed) and
// asks for the manual check.
func toIdentityReview(t *testing.T, p person, seed int) response {
	t.Helper()
	for range 3 {
		want(t, tryOnline(p.c, p.id, challenge(t, p.c, p.id), mismatching(seed)), 200, "")
	}
	r := p.c.json("POST", "/registrations/"+p.id+"/identity-review-request", nil)
	want(t, r, 202, "")
	if r.str("status") != "identity_review" || r.str("status_label") != "人工核验中" {
		t.Fatalf("manual check asked: %s", r.raw)
	}
	return r
}

// inIdentityInbox tells whether a reviewer's identity inbox lists the
// registration, on any page.
func inIdentityInbox(t *testing.T, c caller, id string) bool {
	t.Helper()
	next := ""
	for {
		items, _, n := inboxPage(t, c, "stage=identity&limit=200&after="+url.QueryEscape(next))
		for _, it := range items {
			if it.id == id {
				return true
			}
		}
		if n == "" {
			return false
		}
		next = n
	}
}

// notInRecords makes a valid ID number, of no other call, whose sequence
// digits (15–17) are 999: the identity service's records do not know it.
func notInRecords(t *testing.T) string {
	t.Helper()
	first17 := testenv.IDNumber()[:14] + identity.NotInRecordsSequence
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		sum += int(first17[i]-'0') * weights[i]
	}
	n, err := idcard.Parse(first17+string("10X98765432"[sum%11]), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return string(n)
}

// picture encodes a w×h picture of one colour, with other colours in its
// two top corner squares of 40×40 pixels, as JPEG or PNG.
func picture(t *testing.T, w, h int, background, left, right color.RGBA, asPNG bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{background}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 0, 40, 40), &image.Uniform{left}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(w-40, 0, w, 40), &image.Uniform{right}, image.Point{}, draw.Src)
	var b bytes.Buffer
	var err error
	if asPNG {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// padded is data followed by zeros up to n bytes: still of data's type by
// content.
func padded(data []byte, n int) []byte {
	return append(append([]byte{}, data...), make([]byte, n-len(data))...)
}

func TestOnlineVerificationMatch(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, "", "韩梅梅")
	r := p.view()
	wantOnline(t, r, true, 3, "")
	if o := online(r); o["review_reason"] != nil || !strings.Contains(r.str("next_step"), "网上验证") {
		t.Fatalf("online verification offered at first: %s", r.raw)
	}
	r = tryOnline(p.c, p.id, challenge(t, p.c, p.id), matching(1))
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("a match completes: %s", r.raw)
	}
	wantOnline(t, r, false, 3, "") // a match is no failure: last_result stays null
	steps := historyEntries(r)
	if last := steps[len(steps)-1]; last["status"] != "completed" || last["by_role"] != "applicant" || last["note"] != "网上验证通过，注册完成" {
		t.Errorf("the completion's history entry: %v", last)
	}
	if !bytes.Equal(photoOf(t, p.id), identity.SamplePortrait(1)) {
		t.Error("the portrait did not become the registration's photo")
	}
	if n := count(t, "tickets", p.id); n != 1 {
		t.Errorf("%d tickets", n)
	}
	// Completed: no further try, no new challenge.
	want(t, p.c.json("POST", "/registrations/"+p.id+"/online-verification/challenge", nil), 409, "not_pre_registered")
	recordHistory(t, "online-match", p.id)

	// The completion e-mail is the on-site one, with the ticket number.
	wantMails(t, mailsTo(t, p.login, 2), p.login, p.id, [][]string{
		{"【湖北自考】预注册成功，请按时到考区现场确认", "武汉市武昌区教育局自考办（样例地址）"},
		{"【湖北自考】注册完成，准考证号已生成", "准考证号：" + r.str("ticket_number")},
	}, []string{p.name, p.idNumber})
}

func TestOnlineVerificationThreeMismatchesThenManualCheck(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	c, id := preRegistered(t)
	// Too early for a manual check.
	want(t, c.json("POST", "/registrations/"+id+"/identity-review-request", nil), 409, "identity_review_not_available")
	for left := 2; left >= 0; left-- {
		r := tryOnline(c, id, challenge(t, c, id), mismatching(2))
		want(t, r, 200, "")
		o := online(r)
		if r.str("status") != "pre_registered" || o["tries_left"] != float64(left) || o["last_result"] != "face_mismatch" {
			t.Fatalf("after a mismatch: %s", r.raw)
		}
		if left > 0 {
			want(t, c.json("POST", "/registrations/"+id+"/identity-review-request", nil), 409, "identity_review_not_available")
		}
	}
	r := c.json("GET", "/registrations/"+id, nil)
	if o := online(r); o["available"] != false || !strings.Contains(r.str("next_step"), "人工核验") {
		t.Fatalf("after three mismatches: %s", r.raw)
	}
	want(t, c.json("POST", "/registrations/"+id+"/online-verification/challenge", nil), 409, "online_verification_closed")
	r = c.json("POST", "/registrations/"+id+"/identity-review-request", nil)
	want(t, r, 202, "")
	if r.str("status") != "identity_review" || r.str("status_label") != "人工核验中" {
		t.Fatalf("manual check asked: %s", r.raw)
	}
	want(t, c.json("POST", "/registrations/"+id+"/identity-review-request", nil), 409, "not_pre_registered")
	county := staff(t, "county0106@example.com")
	if !inIdentityInbox(t, county, id) {
		t.Fatal("not in the county's identity inbox")
	}
	// The files of the last try, as uploaded.
	last := mismatching(2)
	for f, wantFile := range map[string]struct {
		data []byte
		ct   string
	}{"id_card_photo": {last.idCard, "image/jpeg"}, "portrait": {last.portrait, "image/jpeg"}, "video": {last.video, "video/mp4"}} {
		r := county.do("GET", "/registrations/"+id+"/online-verification/"+f, nil, "")
		if r.status != 200 || !bytes.Equal(r.raw, wantFile.data) || r.header.Get("Content-Type") != wantFile.ct ||
			r.header.Get("Cache-Control") != "private, no-store" {
			t.Fatalf("%s: %d %v", f, r.status, r.header)
		}
	}
	want(t, county.json("POST", "/registrations/"+id+"/identity-review", map[string]any{"approved": false}), 422, "validation_failed")
	r = county.json("POST", "/registrations/"+id+"/identity-review", map[string]any{"approved": true})
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("approved: %s", r.raw)
	}
	if !bytes.Equal(photoOf(t, id), last.portrait) {
		t.Error("the last try's portrait did not become the registration's photo")
	}
	if inIdentityInbox(t, county, id) {
		t.Error("still in the identity inbox once approved")
	}
	want(t, county.json("POST", "/registrations/"+id+"/identity-review", map[string]any{"approved": true}), 409, "not_awaiting_review")
	recordHistory(t, "online-three-failures-identity-approved", id)
}

// A video under 2,048 bytes (an MP4 by content) fails the liveness check:
// it uses a try, and the applicant may try again.
func TestOnlineLivenessFailedUsesATry(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, "", "韩梅梅")
	f := matching(3)
	f.video = identity.SampleVideo(1000)
	r := tryOnline(p.c, p.id, challenge(t, p.c, p.id), f)
	want(t, r, 200, "")
	if r.str("status") != "pre_registered" {
		t.Fatalf("after a failed liveness check: %s", r.raw)
	}
	wantOnline(t, r, true, 2, "liveness_failed")
	steps := historyEntries(r)
	if note, _ := steps[len(steps)-1]["note"].(string); !strings.Contains(note, "活体检测") || !strings.Contains(note, "剩余 2 次") {
		t.Errorf("history note %q", note)
	}
	want(t, p.c.json("POST", "/registrations/"+p.id+"/identity-review-request", nil), 409, "identity_review_not_available")
	r = tryOnline(p.c, p.id, challenge(t, p.c, p.id), matching(3))
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("a match after a failed liveness check: %s", r.raw)
	}
	if n := count(t, "online_tries", p.id); n != 2 {
		t.Errorf("%d tries recorded, want 2", n)
	}
}

// An ID number the records do not know closes online verification at once,
// without using a try: the next step is on site, where it completes.
func TestOnlineNotInRecordsClosesAtOnce(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, notInRecords(t), "韩梅梅")
	r := tryOnline(p.c, p.id, challenge(t, p.c, p.id), matching(4))
	want(t, r, 200, "")
	if r.str("status") != "pre_registered" {
		t.Fatalf("not in the records: %s", r.raw)
	}
	wantOnline(t, r, false, 3, "not_in_records")
	if s := r.str("next_step"); !strings.Contains(s, "现场确认") || strings.Contains(s, "网上验证") || strings.Contains(s, "人工核验") {
		t.Errorf("next step: %s", s)
	}
	want(t, p.c.json("POST", "/registrations/"+p.id+"/online-verification/challenge", nil), 409, "online_verification_closed")
	want(t, p.c.json("POST", "/registrations/"+p.id+"/identity-review-request", nil), 409, "identity_review_not_available")
	wantOnline(t, p.view(), false, 3, "not_in_records")
	p.confirmOnsite(t)
	recordHistory(t, "online-not-in-records", p.id)
}

// A file that breaks its rule is refused beside its field (422): no try is
// used, nothing is stored, and the same challenge then makes a try.
func TestOnlineBadFilesUseNoTry(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, "", "韩梅梅")
	const seed = 5
	blue, red, white := color.RGBA{20, 45, 140, 255}, color.RGBA{220, 30, 30, 255}, color.RGBA{255, 255, 255, 255}
	with := func(change func(*tryFiles)) tryFiles {
		f := matching(seed)
		change(&f)
		return f
	}
	cases := []struct {
		what, field, says string
		files             tryFiles
		challengeID       string // "" for the test's challenge
	}{
		{"portrait 400×600", "portrait", "480 × 640", with(func(f *tryFiles) { f.portrait = picture(t, 400, 600, blue, blue, blue, false) }), ""},
		{"portrait 640×480", "portrait", "480 × 640", with(func(f *tryFiles) { f.portrait = picture(t, 640, 480, blue, blue, blue, false) }), ""},
		{"portrait over 102,400 bytes", "portrait", "100 KB", with(func(f *tryFiles) { f.portrait = padded(identity.SamplePortrait(seed), 102401) }), ""},
		{"portrait not blue", "portrait", "blue background", with(func(f *tryFiles) { f.portrait = picture(t, 480, 640, blue, red, white, false) }), ""},
		{"portrait with one white corner", "portrait", "blue background", with(func(f *tryFiles) { f.portrait = picture(t, 480, 640, blue, blue, white, false) }), ""},
		{"portrait PNG", "portrait", "must be JPG", with(func(f *tryFiles) { f.portrait = picture(t, 480, 640, blue, blue, blue, true) }), ""},
		{"ID card photo PDF", "id_card_photo", "must be JPG/PNG", with(func(f *tryFiles) { f.idCard = pdfFile }), ""},
		{"ID card photo over 5 MiB", "id_card_photo", "5 MB", with(func(f *tryFiles) { f.idCard = padded(identity.SampleIDCardPhoto(seed), 5<<20+1) }), ""},
		{"video neither MP4 nor WebM", "video", "must be MP4/WebM", with(func(f *tryFiles) { f.video = padded([]byte("RIFF\x00\x00\x00\x00AVI LIST"), 4096) }), ""},
		{"video a JPEG", "video", "must be MP4/WebM", with(func(f *tryFiles) { f.video = identity.SamplePortrait(seed) }), ""},
		{"video over 20 MiB", "video", "20 MB", with(func(f *tryFiles) { f.video = identity.SampleVideo(20<<20 + 1) }), ""},
		{"no portrait", "portrait", "required", with(func(f *tryFiles) { f.portrait = nil }), ""},
		{"no ID card photo", "id_card_photo", "required", with(func(f *tryFiles) { f.idCard = nil }), ""},
		{"no video", "video", "required", with(func(f *tryFiles) { f.video = nil }), ""},
		{"empty video", "video", "empty", with(func(f *tryFiles) { f.video = []byte{} }), ""},
		{"no challenge", "challenge_id", "challenge_id is required", matching(seed), " "},
	}
	ch := challenge(t, p.c, p.id)
	filesBefore := countFiles(t)
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			c := p.c
			c.t = t
			id := ch
			if tc.challengeID != "" {
				id = tc.challengeID
			}
			r := tryOnline(c, p.id, id, tc.files)
			want(t, r, 422, "validation_failed")
			e := r.body["error"].(map[string]any)
			zh, _ := e["fields"].(map[string]any)
			en, _ := e["fields_en"].(map[string]any)
			msg, _ := en[tc.field].(string)
			if zh[tc.field] == nil || !strings.Contains(msg, tc.says) {
				t.Errorf("fields do not say %q beside %s: %s", tc.says, tc.field, r.raw)
			}
			if len(zh) != 1 {
				t.Errorf("fields name more than %s: %s", tc.field, r.raw)
			}
		})
	}
	wantOnline(t, p.view(), true, 3, "")
	if n := count(t, "online_tries", p.id); n != 0 {
		t.Fatalf("%d tries recorded after refused files", n)
	}
	if got := countFiles(t); got != filesBefore {
		t.Errorf("refused files left %d file(s)", got-filesBefore)
	}
	r := tryOnline(p.c, p.id, ch, matching(seed))
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("the same challenge after refused files: %s", r.raw)
	}
}

// When the identity service cannot answer (stopped, or answering garbage),
// the try is answered 503 with Retry-After and uses neither a try nor the
// challenge: the same challenge works once the service is back, and the
// files sent meanwhile are stored once.
func TestOnlineServiceUnavailableUsesNoTry(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, "", "韩梅梅")
	const seed = 6
	stopped := httptest.NewServer(http.NotFoundHandler())
	stopped.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>502 Bad Gateway</html>")
	}))
	defer garbage.Close()
	unknown := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"result": "maybe"}`)
	}))
	defer unknown.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	original := server.Registering.Identity
	defer func() { server.Registering.Identity = original }()

	ch := challenge(t, p.c, p.id)
	files := matching(seed)
	files.video = identity.SampleVideo(4096 + seed) // of this test only
	filesBefore := countFiles(t)
	for _, s := range []struct{ what, url string }{{"stopped", stopped.URL}, {"answering garbage", garbage.URL},
		{"answering an unknown result", unknown.URL}, {"answering 503", failing.URL}} {
		server.Registering.Identity = identity.NewClient(s.url, "u", "k", 2*time.Second)
		r := tryOnline(p.c, p.id, ch, files)
		want(t, r, 503, "verification_unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("service %s: 503 without Retry-After", s.what)
		}
		wantOnline(t, p.view(), true, 3, "")
	}
	server.Registering.Identity = original
	if n := count(t, "online_tries", p.id); n != 0 {
		t.Fatalf("%d tries recorded while the service was away", n)
	}
	r := tryOnline(p.c, p.id, ch, files)
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("the same challenge once the service is back: %s", r.raw)
	}
	if got := countFiles(t); got != filesBefore+3 {
		t.Errorf("%d files stored for the three of a try sent five times", got-filesBefore)
	}
}

// gatedVerifier holds the first verification until released, and answers
// every later one as a service that is down.
type gatedVerifier struct {
	real    registering.Verifier
	calls   atomic.Int32
	firstIn chan struct{} // closed when the first verification arrives
	release chan struct{} // the first verification waits for it
}

func (g *gatedVerifier) Verify(ctx context.Context, r identity.Request) (string, error) {
	if g.calls.Add(1) == 1 {
		close(g.firstIn)
		<-g.release
		return g.real.Verify(ctx, r)
	}
	return "", identity.ErrUnavailable
}

// A client sends its try again with the same Idempotency-Key while the
// first is still with the identity service, and the service fails the
// second: the first, a match, still completes the registration at once
// (the second's clean-up used to delete the files the first was recording,
// whose completion then failed on the foreign keys, retried for ever).
func TestOnlineRetryAnsweredUnavailableSparesTheTryInFlight(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, "", "韩梅梅")
	const seed = 14
	original := server.Registering.Identity
	gate := &gatedVerifier{real: original, firstIn: make(chan struct{}), release: make(chan struct{})}
	server.Registering.Identity = gate
	defer func() { server.Registering.Identity = original }()
	c := p.c
	c.headers = map[string]string{"Idempotency-Key": "try-" + p.id}
	files := matching(seed)
	files.video = identity.SampleVideo(4096 + seed) // of this test only: stored by these requests
	ch := challenge(t, p.c, p.id)
	first := make(chan response)
	go func() { first <- tryOnline(c, p.id, ch, files) }()
	<-gate.firstIn
	want(t, tryOnline(c, p.id, ch, files), 503, "verification_unavailable")
	close(gate.release)
	select {
	case r := <-first:
		want(t, r, 200, "")
		if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
			t.Fatalf("the try in flight: %s", r.raw)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the try in flight did not complete within 15 s")
	}
	if !bytes.Equal(photoOf(t, p.id), files.portrait) || count(t, "online_tries", p.id) != 1 {
		t.Error("the try in flight was not recorded with its files")
	}
}

// A challenge expired, used by a try, voided by a newer one or another
// registration's is refused (409 challenge_expired) and costs no try.
func TestOnlineChallengeExpiredUsedVoidedOrAnothers(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p, other := registerPerson(t, "", "韩梅梅"), registerPerson(t, "", "李雷")
	const seed = 7

	expired := challenge(t, p.c, p.id)
	if _, err := database.Exec(`UPDATE online_challenges SET expires_at = now() - interval '1 second' WHERE id = $1`, expired); err != nil {
		t.Fatal(err)
	}
	want(t, tryOnline(p.c, p.id, expired, matching(seed)), 409, "challenge_expired")

	used := challenge(t, p.c, p.id)
	r := tryOnline(p.c, p.id, used, mismatching(seed))
	want(t, r, 200, "")
	wantOnline(t, r, true, 2, "face_mismatch")
	want(t, tryOnline(p.c, p.id, used, matching(seed)), 409, "challenge_expired")
	want(t, tryOnline(p.c, p.id, used, mismatching(seed)), 409, "challenge_expired")

	voided := challenge(t, p.c, p.id)
	newer := challenge(t, p.c, p.id)
	want(t, tryOnline(p.c, p.id, voided, matching(seed)), 409, "challenge_expired")

	others := challenge(t, other.c, other.id)
	want(t, tryOnline(p.c, p.id, others, matching(seed)), 409, "challenge_expired")
	want(t, tryOnline(p.c, p.id, "not-a-challenge", matching(seed)), 409, "challenge_expired")
	// Nor may the other applicant use this registration's challenge.
	want(t, tryOnline(other.c, p.id, newer, matching(seed)), 403, "forbidden")

	wantOnline(t, p.view(), true, 2, "face_mismatch")
	if n := count(t, "online_tries", p.id); n != 1 {
		t.Fatalf("%d tries recorded, want 1", n)
	}
	// The newest challenge, and the other registration's own, still work.
	r = tryOnline(p.c, p.id, newer, matching(seed))
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("the newest challenge: %s", r.raw)
	}
	r = tryOnline(other.c, other.id, others, matching(seed+1))
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("the other registration's challenge: %s", r.raw)
	}
}

// A try sent twice with one Idempotency-Key, one after the other or at the
// same moment, uses one try; a match issues one ticket.
func TestOnlineDoubleSubmissionUsesOneTry(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	const seed = 8
	twice := func(t *testing.T, p person, key string, f tryFiles, concurrently bool) [2]response {
		c := p.c
		c.headers = map[string]string{"Idempotency-Key": key}
		ch := challenge(t, p.c, p.id)
		var out [2]response
		if !concurrently {
			out[0] = tryOnline(c, p.id, ch, f)
			out[1] = tryOnline(c, p.id, ch, f)
			return out
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out[i] = tryOnline(c, p.id, ch, f)
			}()
		}
		close(start)
		wg.Wait()
		return out
	}
	for _, concurrently := range []bool{false, true} {
		t.Run(map[bool]string{false: "sequentially", true: "concurrently"}[concurrently], func(t *testing.T) {
			p := registerPerson(t, "", "韩梅梅")
			p.c.t = t
			for i, r := range twice(t, p, "mismatch-"+p.id, mismatching(seed), concurrently) {
				if r.status != 200 || r.str("status") != "pre_registered" || online(r)["tries_left"] != float64(2) {
					t.Errorf("mismatch %d: %d %s", i+1, r.status, r.raw)
				}
			}
			wantOnline(t, p.view(), true, 2, "face_mismatch")
			if n := count(t, "online_tries", p.id); n != 1 {
				t.Errorf("%d tries recorded for one try sent twice", n)
			}
			rs := twice(t, p, "match-"+p.id, matching(seed), concurrently)
			for i, r := range rs {
				if r.status != 200 || r.str("status") != "completed" || r.str("ticket_number") != rs[0].str("ticket_number") {
					t.Errorf("match %d: %d %s", i+1, r.status, r.raw)
				}
			}
			if n := count(t, "tickets", p.id); n != 1 {
				t.Errorf("%d tickets for one match sent twice", n)
			}
			if n := count(t, "online_tries", p.id); n != 2 {
				t.Errorf("%d tries recorded for two tries each sent twice", n)
			}
			var completions int
			if err := database.Get(&completions, `SELECT count(*) FROM registration_history WHERE registration_id = $1 AND status = 'completed'`, p.id); err != nil {
				t.Fatal(err)
			}
			if completions != 1 {
				t.Errorf("%d completions in the history", completions)
			}
		})
	}
}

// The office refuses the manual check: the applicant sees the reason and is
// sent on site (by e-mail too), may not ask again nor try online, and the
// on-site operator completes the registration.
func TestOnlineIdentityReviewRefusedThenOnsite(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	const reason = "人像与身份证照片不一致"
	p := registerPerson(t, "", "韩梅梅")
	toIdentityReview(t, p, 9)
	county := staff(t, "county0106@example.com")
	want(t, county.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": false, "reason": "  "}), 422, "validation_failed")
	r := county.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": false, "reason": reason})
	want(t, r, 200, "")
	if r.str("status") != "pre_registered" || online(r)["review_reason"] != reason {
		t.Fatalf("refused: %s", r.raw)
	}
	r = p.view()
	wantOnline(t, r, false, 0, "face_mismatch")
	if online(r)["review_reason"] != reason || !strings.Contains(r.str("next_step"), reason) || !strings.Contains(r.str("next_step"), "现场确认") {
		t.Fatalf("the applicant's view of the refusal: %s", r.raw)
	}
	want(t, p.c.json("POST", "/registrations/"+p.id+"/identity-review-request", nil), 409, "identity_review_not_available")
	want(t, p.c.json("POST", "/registrations/"+p.id+"/online-verification/challenge", nil), 409, "online_verification_closed")
	want(t, county.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": true}), 409, "not_awaiting_review")
	if inIdentityInbox(t, county, p.id) {
		t.Error("still in the identity inbox once refused")
	}
	done := p.confirmOnsite(t)
	recordHistory(t, "online-identity-refused-onsite", p.id)

	wantMails(t, mailsTo(t, p.login, 3), p.login, p.id, [][]string{
		{"【湖北自考】预注册成功，请按时到考区现场确认", "武汉市武昌区教育局自考办（样例地址）"},
		{"【湖北自考】人工核验未通过，请到考区现场确认", "原因：" + reason, "武汉市武昌区教育局自考办（样例地址）"},
		{"【湖北自考】注册完成，准考证号已生成", "准考证号：" + done.str("ticket_number")},
	}, []string{p.name, p.idNumber, "county0106"})
}

// Who may see the files of a manual check and decide it, and when.
func TestOnlineIdentityReviewScope(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	p := registerPerson(t, "", "韩梅梅")
	waiting := registerPerson(t, "", "李雷") // pre-registered, one failed try
	want(t, tryOnline(waiting.c, waiting.id, challenge(t, waiting.c, waiting.id), mismatching(10)), 200, "")
	toIdentityReview(t, p, 10)
	county, province, onsite := staff(t, "county0106@example.com"), staff(t, "province@example.com"), staff(t, "onsite0106@example.com")
	otherCounty := newStaff(t, accounts.RoleCountyReviewer, "0102")
	kinds := []string{"id_card_photo", "portrait", "video"}

	for _, f := range kinds {
		path := "/registrations/" + p.id + "/online-verification/" + f
		want(t, otherCounty.json("GET", path, nil), 403, "forbidden")
		want(t, p.c.json("GET", path, nil), 403, "forbidden")
		want(t, onsite.json("GET", path, nil), 403, "forbidden")
		want(t, waiting.c.json("GET", path, nil), 403, "forbidden")
		if r := province.do("GET", path, nil, ""); r.status != 200 || len(r.raw) == 0 {
			t.Errorf("the provincial reviewer's %s: %d", f, r.status)
		}
		// Not awaiting a manual check: no files, though the try has some.
		want(t, county.json("GET", "/registrations/"+waiting.id+"/online-verification/"+f, nil), 409, "not_awaiting_review")
	}
	want(t, county.json("GET", "/registrations/"+p.id+"/online-verification/photo", nil), 404, "not_found")
	want(t, otherCounty.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": true}), 403, "forbidden")
	want(t, onsite.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": true}), 403, "forbidden")
	want(t, p.c.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": true}), 403, "forbidden")
	want(t, county.json("POST", "/registrations/"+waiting.id+"/identity-review", map[string]any{"approved": true}), 409, "not_awaiting_review")

	// The inboxes: the county's own area and the province list it.
	if !inIdentityInbox(t, county, p.id) || !inIdentityInbox(t, province, p.id) {
		t.Error("not in the county's or the province's identity inbox")
	}
	if inIdentityInbox(t, otherCounty, p.id) {
		t.Error("in another area's identity inbox")
	}
	if inIdentityInbox(t, county, waiting.id) {
		t.Error("a pre-registered registration in the identity inbox")
	}
	want(t, onsite.json("GET", "/reviews?stage=identity", nil), 403, "forbidden")
	want(t, p.c.json("GET", "/reviews?stage=identity", nil), 403, "forbidden")

	// The provincial office approves.
	r := province.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": true})
	want(t, r, 200, "")
	steps := historyEntries(r)
	if last := steps[len(steps)-1]; r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) ||
		last["by_role"] != "provincial_reviewer" || last["by_account"] != "province@example.com" {
		t.Fatalf("approved by the province: %s", r.raw)
	}
	for _, f := range kinds {
		want(t, county.json("GET", "/registrations/"+p.id+"/online-verification/"+f, nil), 409, "not_awaiting_review")
	}
}

// A registration awaiting the manual check may be withdrawn by its
// applicant and annulled by the office, as in the other open states.
func TestOnlineIdentityReviewWithdrawnOrAnnulled(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	county := staff(t, "county0106@example.com")
	withdrawn, annulled := registerPerson(t, "", "韩梅梅"), registerPerson(t, "", "李雷")
	toIdentityReview(t, withdrawn, 11)
	toIdentityReview(t, annulled, 12)

	r := withdrawn.c.json("POST", "/registrations/"+withdrawn.id+"/withdraw", nil)
	want(t, r, 202, "")
	if r.str("status") != "withdrawn" {
		t.Fatalf("withdrawn: %s", r.raw)
	}
	const reason = "冒用他人身份证号注册"
	r = county.json("POST", "/registrations/"+annulled.id+"/annul", map[string]any{"reason": reason})
	want(t, r, 200, "")
	if r.str("status") != "annulled" || r.str("annulment_reason") != reason {
		t.Fatalf("annulled: %s", r.raw)
	}
	for _, p := range []person{withdrawn, annulled} {
		if inIdentityInbox(t, county, p.id) {
			t.Errorf("%s still in the identity inbox", p.id)
		}
		want(t, county.json("POST", "/registrations/"+p.id+"/identity-review", map[string]any{"approved": true}), 409, "not_awaiting_review")
		want(t, county.json("GET", "/registrations/"+p.id+"/online-verification/portrait", nil), 409, "not_awaiting_review")
		if n := count(t, "tickets", p.id); n != 0 {
			t.Errorf("%s: %d tickets", p.id, n)
		}
	}
	// Both may register again at once.
	want(t, withdrawn.c.json("POST", "/registrations", newRegistration("zhuanke", withdrawn.idNumber, withdrawn.name)), 202, "")
}

// When the confirmation window ends, a registration awaiting the manual
// check does not expire, and its approval completes it; one pre-registered
// with tries left expires, and so does one whose manual check is refused
// after the end.
func TestOnlineIdentityReviewOutlivesTheWindow(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	ctx := context.Background()
	inReview, trying := registerPerson(t, "", "韩梅梅"), registerPerson(t, "", "李雷")
	refused := registerPerson(t, "", "韩梅梅")
	toIdentityReview(t, inReview, 13)
	toIdentityReview(t, refused, 13)
	want(t, tryOnline(trying.c, trying.id, challenge(t, trying.c, trying.id), mismatching(13)), 200, "")
	wantOnline(t, trying.view(), true, 2, "face_mismatch")

	end := time.Now().Add(3 * time.Second)
	soon := workflows.Window{StartsAt: time.Now().Add(-time.Hour), EndsAt: end}
	for _, p := range []person{inReview, trying, refused} {
		if err := workflows.ChangeWindow(ctx, temporal, p.id, soon, "end-soon-"+p.id); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, trying.c, trying.id, "expired")
	time.Sleep(time.Until(end.Add(time.Second)))
	for _, p := range []person{inReview, refused} {
		if r := p.view(); r.str("status") != "identity_review" || online(r)["available"] != false {
			t.Fatalf("awaiting the manual check after the window's end: %s", r.raw)
		}
	}
	county := staff(t, "county0106@example.com")
	if !inIdentityInbox(t, county, inReview.id) {
		t.Error("not in the identity inbox after the window's end")
	}
	r := county.json("POST", "/registrations/"+inReview.id+"/identity-review", map[string]any{"approved": true})
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("approved after the window's end: %s", r.raw)
	}
	want(t, trying.c.json("POST", "/registrations/"+trying.id+"/online-verification/challenge", nil), 409, "not_pre_registered")

	// A refusal after the window's end is accepted; the registration, back
	// to pre-registered with its window over, then expires.
	r = county.json("POST", "/registrations/"+refused.id+"/identity-review", map[string]any{"approved": false, "reason": "人像与身份证照片不一致"})
	want(t, r, 200, "")
	waitFor(t, refused.c, refused.id, "expired")
	if n := count(t, "tickets", refused.id); n != 0 {
		t.Errorf("%d tickets for a refused manual check", n)
	}
}
