package api_test

import (
	"testing"
	"time"
)

// 王芳 of the demo data holds two enrolment records in exam area 0106.
const (
	fangName   = "王芳"
	fangID     = "420106199604202344"
	fangSocial = "010620100001"
	fangSystem = "010621200007"
)

func TestEnrolmentLookup(t *testing.T) {
	applicant := newApplicant(t)
	r := applicant.json("POST", "/enrolled-records/lookup", map[string]any{"name": fangName, "id_number": fangID, "ticket_number": fangSocial})
	want(t, r, 200, "")
	records := r.body["records"].([]any)
	if len(records) != 2 {
		t.Fatalf("records: %s", r.raw)
	}
	first := records[0].(map[string]any)
	if first["ticket_number"] != fangSocial || first["source"] != "social" || first["level"] != "zhuanshengben" ||
		first["major_name"] != "行政管理" || first["exam_area_code"] != "0106" || first["id_number"] != nil {
		t.Errorf("first record: %v", first)
	}
	if second := records[1].(map[string]any); second["ticket_number"] != fangSystem || second["source"] != "system" {
		t.Errorf("second record: %v", second)
	}

	// Any part wrong: the same 404.
	for _, body := range []map[string]any{
		{"name": "王芬", "id_number": fangID, "ticket_number": fangSocial},
		{"name": fangName, "id_number": "11010519491231002X", "ticket_number": fangSocial},
		{"name": fangName, "id_number": fangID, "ticket_number": "010620100002"},
	} {
		want(t, applicant.json("POST", "/enrolled-records/lookup", body), 404, "enrolment_not_found")
	}
	want(t, applicant.json("POST", "/enrolled-records/lookup", map[string]any{"name": fangName, "id_number": fangID, "ticket_number": "0106"}), 422, "validation_failed")
	want(t, staff(t, "province@example.com").json("POST", "/enrolled-records/lookup", map[string]any{"name": fangName, "id_number": fangID, "ticket_number": fangSocial}), 403, "forbidden")
}

func TestEnrolmentLookupIsThrottled(t *testing.T) {
	applicant := newApplicant(t)
	for i := 0; i < 5; i++ {
		want(t, applicant.json("POST", "/enrolled-records/lookup", map[string]any{"name": "王芬", "id_number": fangID, "ticket_number": fangSocial}), 404, "enrolment_not_found")
	}
	r := applicant.json("POST", "/enrolled-records/lookup", map[string]any{"name": fangName, "id_number": fangID, "ticket_number": fangSocial})
	want(t, r, 429, "too_many_attempts")
}

func TestEnrolledPathThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	onsite := staff(t, "onsite0106@example.com")

	// The ID number has enrolment records: 新生注册 is refused.
	want(t, applicant.json("POST", "/registrations", newRegistration("zhuanke", fangID, fangName)), 409, "id_number_enrolled")

	enrolled := func(verify, selected string) map[string]any {
		return map[string]any{"kind": "enrolled", "agree_terms": true, "name": fangName, "id_number": fangID,
			"verify_ticket_number": verify, "selected_ticket_number": selected,
			"personal": map[string]any{"phone": "13912345678", "ethnicity": "汉族", "address": "武汉市武昌区中北路"}}
	}
	want(t, applicant.json("POST", "/registrations", enrolled("010620100002", fangSystem)), 404, "enrolment_not_found")
	want(t, applicant.json("POST", "/registrations", enrolled(fangSocial, "010699999999")), 422, "validation_failed")
	missingPhone := enrolled(fangSocial, fangSystem)
	missingPhone["personal"] = map[string]any{}
	want(t, applicant.json("POST", "/registrations", missingPhone), 422, "validation_failed")

	r := applicant.json("POST", "/registrations", enrolled(fangSocial, fangSystem))
	want(t, r, 202, "")
	id := r.str("registration_id")
	if r.str("kind") != "enrolled" || r.str("status") != "pre_registered" || r.str("level") != "zhuanke" ||
		r.str("major_code") != "590201" || r.body["ticket_number"] != nil {
		t.Fatalf("enrolled registration: %s", r.raw)
	}
	applicantView := r.body["applicant"].(map[string]any)
	if applicantView["gender"] != "female" || applicantView["birth_date"] != "1996-04-20" || applicantView["phone"] != "13912345678" {
		t.Errorf("personal data: %v", applicantView)
	}

	r = onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": fangID, "name": fangName}, "photo", jpegFile)
	want(t, r, 200, "")
	if r.str("status") != "completed" || r.str("ticket_number") != fangSystem {
		t.Fatalf("after the on-site check: %s", r.raw)
	}
	var issued int
	if err := database.Get(&issued, `SELECT count(*) FROM tickets WHERE registration_id = $1`, id); err != nil || issued != 0 {
		t.Errorf("a new ticket number was issued for an enrolled registration (%d, %v)", issued, err)
	}
	recordHistory(t, "enrolled", id)

	// Confirmed: neither path registers that ID number again.
	other := newApplicant(t)
	want(t, other.json("POST", "/registrations", enrolled(fangSocial, fangSocial)), 409, "id_number_registered")
	want(t, other.json("POST", "/registrations", newRegistration("zhuanke", fangID, fangName)), 409, "id_number_enrolled")
}

// Refused submissions tell whether an ID number is enrolled or registered:
// they count toward the look-up limit, so nobody can probe ID numbers freely.
func TestRefusedSubmissionsAreThrottled(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	prober := newApplicant(t)
	for i := 0; i < 5; i++ {
		want(t, prober.json("POST", "/registrations", newRegistration("zhuanke", fangID, fangName)), 409, "id_number_enrolled")
	}
	r := prober.json("POST", "/registrations", newRegistration("zhuanke", "", "张三"))
	want(t, r, 429, "too_many_attempts")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Successful submissions do not count: another applicant registers as often as needed.
	ok := newApplicant(t)
	for i := 0; i < 6; i++ {
		r := ok.json("POST", "/registrations", newRegistration("zhuanke", "", "李四"))
		want(t, r, 202, "")
		want(t, ok.json("POST", "/registrations/"+r.str("registration_id")+"/withdraw", nil), 202, "")
	}
}
