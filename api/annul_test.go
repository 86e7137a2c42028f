package api_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/accounts"
)

// historyEntries returns the history entries of a view.
func historyEntries(r response) []map[string]any {
	var out []map[string]any
	for _, h := range r.body["history"].([]any) {
		out = append(out, h.(map[string]any))
	}
	return out
}

// Somebody registered with another person's ID number: the county office
// of the exam area annuls the registration with a reason, which the
// applicant sees and is sent; the real person registers at once. Only the
// county office of that area and the provincial office may annul; staff see
// who made each step, applicants do not.
func TestAnnulmentThroughAPI(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	login := signUp(t)
	impostor, realPerson := logIn(t, login, "secret1"), newApplicant(t)
	county, onsite := staff(t, "county0106@example.com"), staff(t, "onsite0106@example.com")
	otherCounty := newStaff(t, accounts.RoleCountyReviewer, "0102")

	body := newRegistration("zhuanshengben", "", "赵敏")
	r := impostor.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, impostor, id, "awaiting_report")
	want(t, impostor.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")

	const reason = "经核实，冒用他人身份证号注册"
	path := "/registrations/" + id + "/annul"
	want(t, otherCounty.json("POST", path, map[string]any{"reason": reason}), 403, "forbidden")
	want(t, onsite.json("POST", path, map[string]any{"reason": reason}), 403, "forbidden")
	want(t, impostor.json("POST", path, map[string]any{"reason": reason}), 403, "forbidden")
	want(t, realPerson.json("POST", path, map[string]any{"reason": reason}), 403, "forbidden")
	want(t, county.json("POST", "/registrations/"+uuid.NewString()+"/annul", map[string]any{"reason": reason}), 404, "registration_not_found")
	r = county.json("POST", path, map[string]any{"reason": "  "})
	want(t, r, 422, "validation_failed")
	if _, ok := r.body["error"].(map[string]any)["fields"].(map[string]any)["reason"]; !ok {
		t.Errorf("422 without the field reason: %s", r.raw)
	}
	want(t, county.json("POST", path, nil), 400, "malformed_body")

	county.headers = map[string]string{"Idempotency-Key": "annul-" + id}
	r = county.json("POST", path, map[string]any{"reason": reason})
	want(t, r, 200, "")
	if r.str("status") != "annulled" || r.str("status_label") != "已作废" || r.str("annulment_reason") != reason ||
		!strings.Contains(r.str("next_step"), reason) || !strings.Contains(r.str("next_step"), "请联系考区办公室") ||
		!strings.Contains(r.str("next_step"), "武汉市武昌区教育局自考办（样例地址）") {
		t.Fatalf("after the annulment: %s", r.raw)
	}
	// The reviewer's client retries (its answer was lost): the same answer.
	again := county.json("POST", path, map[string]any{"reason": reason})
	want(t, again, 200, "")
	if !bytes.Equal(again.raw, r.raw) {
		t.Errorf("retried annulment answered\n%s\nfirst\n%s", again.raw, r.raw)
	}
	county.headers = nil
	want(t, county.json("POST", path, map[string]any{"reason": reason}), 409, "registration_closed")
	want(t, impostor.json("POST", "/registrations/"+id+"/withdraw", nil), 409, "registration_closed")
	recordHistory(t, "new-zhuanshengben-annulled", id)

	// The applicant sees the reason, in the view and its history, but not who.
	r = impostor.json("GET", "/registrations/"+id, nil)
	want(t, r, 200, "")
	steps := historyEntries(r)
	if r.str("annulment_reason") != reason || !strings.Contains(steps[len(steps)-1]["note"].(string), reason) {
		t.Errorf("the applicant's view: %s", r.raw)
	}
	if bytes.Contains(r.raw, []byte("by_account")) {
		t.Errorf("the applicant's view names accounts: %s", r.raw)
	}
	// The reviewer sees who made each step: the applicant, the system, the reviewer.
	r = county.json("GET", "/registrations/"+id, nil)
	want(t, r, 200, "")
	wantBy := []string{login, "", login, "county0106@example.com"} // submitted, diploma check, report, annulled
	steps = historyEntries(r)
	if len(steps) != len(wantBy) {
		t.Fatalf("history %s", r.raw)
	}
	for i, h := range steps {
		by, _ := h["by_account"].(string)
		if by != wantBy[i] {
			t.Errorf("step %d (%s by %s): by_account %q, want %q", i+1, h["status"], h["by_role"], by, wantBy[i])
		}
	}

	// The real person registers with their ID number at once.
	r = realPerson.json("POST", "/registrations", body)
	want(t, r, 202, "")
	// And the impostor's account may register again (with its own ID number).
	want(t, impostor.json("POST", "/registrations", newRegistration("zhuanke", "", "赵敏")), 202, "")

	wantMails(t, mailsTo(t, login, 1)[:1], login, id, [][]string{
		{"【湖北自考】本次注册已作废", "原因：" + reason, "武汉市武昌区教育局自考办（样例地址）"},
	}, []string{"赵敏", body["personal"].(map[string]any)["id_number"].(string), "county0106"})
}

// The provincial office annuls too; a completed registration is closed.
func TestProvincialAnnulmentAndClosedRegistrations(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	province, onsite := staff(t, "province@example.com"), staff(t, "onsite0106@example.com")

	applicant := newApplicant(t)
	r := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "周芷若"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	r = province.json("POST", "/registrations/"+id+"/annul", map[string]any{"reason": "重复注册"})
	want(t, r, 200, "")
	steps := historyEntries(r)
	last := steps[len(steps)-1]
	if r.str("status") != "annulled" || last["by_role"] != "provincial_reviewer" || last["by_account"] != "province@example.com" ||
		last["note"] != "省考办已作废本次注册：重复注册" {
		t.Fatalf("after the provincial annulment: %s", r.raw)
	}

	completed := newApplicant(t)
	body := newRegistration("zhuanke", "", "张无忌")
	r = completed.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id = r.str("registration_id")
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": body["personal"].(map[string]any)["id_number"].(string), "name": "张无忌"}, "photo", jpegFile), 200, "")
	want(t, province.json("POST", "/registrations/"+id+"/annul", map[string]any{"reason": "重复注册"}), 409, "registration_closed")
	want(t, staff(t, "county0106@example.com").json("POST", "/registrations/"+id+"/annul", map[string]any{"reason": "重复注册"}), 409, "registration_closed")
	r = completed.json("GET", "/registrations/"+id, nil)
	if r.str("status") != "completed" || r.body["annulment_reason"] != nil {
		t.Errorf("a refused annulment changed the registration: %s", r.raw)
	}
}
