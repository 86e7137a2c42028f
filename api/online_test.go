package api_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"zikao/internal/identity"
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
	c := newApplicant(t)
	r := c.json("POST", "/registrations", newRegistration("zhuanke", "", "韩梅梅"))
	want(t, r, 202, "")
	return c, r.str("registration_id")
}

func online(r response) map[string]any {
	o, _ := r.body["online_verification"].(map[string]any)
	return o
}

func TestOnlineVerificationMatch(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	c, id := preRegistered(t)
	r := c.json("GET", "/registrations/"+id, nil)
	if o := online(r); o["available"] != true || o["tries_left"] != float64(3) || o["last_result"] != nil {
		t.Fatalf("online verification at first: %s", r.raw)
	}
	r = tryOnline(c, id, challenge(t, c, id), matching(1))
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("a match completes: %s", r.raw)
	}
}

func TestOnlineVerificationThreeMismatchesThenManualCheck(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	c, id := preRegistered(t)
	for left := 2; left >= 0; left-- {
		r := tryOnline(c, id, challenge(t, c, id), mismatching(2))
		want(t, r, 200, "")
		o := online(r)
		if r.str("status") != "pre_registered" || o["tries_left"] != float64(left) || o["last_result"] != "face_mismatch" {
			t.Fatalf("after a mismatch: %s", r.raw)
		}
	}
	want(t, c.json("POST", "/registrations/"+id+"/online-verification/challenge", nil), 409, "online_verification_closed")
	r := c.json("POST", "/registrations/"+id+"/identity-review-request", nil)
	want(t, r, 202, "")
	if r.str("status") != "identity_review" || r.str("status_label") != "人工核验中" {
		t.Fatalf("manual check asked: %s", r.raw)
	}
	county := staff(t, "county0106@example.com")
	r = county.json("GET", "/reviews?stage=identity", nil)
	want(t, r, 200, "")
	found := false
	for _, v := range r.body["reviews"].([]any) {
		found = found || v.(map[string]any)["registration_id"] == id
	}
	if !found {
		t.Fatalf("not in the county's identity inbox: %s", r.raw)
	}
	for _, f := range []string{"id_card_photo", "portrait", "video"} {
		if r := county.do("GET", "/registrations/"+id+"/online-verification/"+f, nil, ""); r.status != 200 {
			t.Fatalf("%s: %d %s", f, r.status, r.raw)
		}
	}
	r = county.json("POST", "/registrations/"+id+"/identity-review", map[string]any{"approved": true})
	want(t, r, 200, "")
	if r.str("status") != "completed" || !ticketFormat.MatchString(r.str("ticket_number")) {
		t.Fatalf("approved: %s", r.raw)
	}
}
