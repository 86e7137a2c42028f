package api_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/devstack"
	"zikao/workflows"
)

// setWindow gives one exam area its own window for the test sitting.
func setWindow(t testing.TB, area string, from, to time.Time) {
	t.Helper()
	if err := catalog.New(database).SetWindow(context.Background(), area, year, sitting, catalog.Window{StartsAt: from, EndsAt: to}); err != nil {
		t.Fatal(err)
	}
}

// inboxHas reports whether the reviewer's inbox (first 100) holds the
// registration, and since when it has waited there.
func inboxHas(t *testing.T, c caller, id string) (time.Time, bool) {
	t.Helper()
	items, _, _ := inboxPage(t, c, "limit=100")
	for _, it := range items {
		if it.id == id {
			return it.waitingSince, true
		}
	}
	return time.Time{}, false
}

// The county office of the registration's area moves it to another area
// while its report waits for the county review: it appears in the new
// area's inbox with its waiting time, takes that area's window, leaves
// the old office and desk, and finishes there with one ticket of the new
// area's code. The applicant is told by e-mail and SMS.
func TestAreaChangeThroughAPI(t *testing.T) {
	now := time.Now()
	openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	newStart, newEnd := now.Add(-2*time.Hour).Truncate(time.Second), now.AddDate(0, 0, 12).Truncate(time.Second)
	setWindow(t, "0102", newStart, newEnd)
	defer openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))

	login, phone := signUp(t), newPhone()
	applicant := logIn(t, login, "secret1")
	county, province := staff(t, "county0106@example.com"), staff(t, "province@example.com")
	onsite := staff(t, "onsite0106@example.com")
	newCounty, newOnsite := newStaff(t, accounts.RoleCountyReviewer, "0102"), newStaff(t, accounts.RoleOnsiteOperator, "0102")
	otherCounty := newStaff(t, accounts.RoleCountyReviewer, "0103")

	body := newRegistration("zhuanshengben", "", "吴可")
	body["personal"].(map[string]any)["phone"] = phone
	idNumber := body["personal"].(map[string]any)["id_number"].(string)
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	want(t, applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile), 202, "")
	waitFor(t, applicant, id, "county_review")
	since, ok := inboxHas(t, county, id)
	if !ok {
		t.Fatal("not in the county inbox of 0106")
	}

	const reason = "考生已迁居武汉市江岸区，本人申请变更考区"
	path := "/registrations/" + id + "/exam-area"
	move := map[string]any{"exam_area_code": "0102", "reason": reason}
	want(t, otherCounty.json("POST", path, move), 403, "forbidden")
	want(t, newCounty.json("POST", path, move), 403, "forbidden") // not yet its area
	want(t, onsite.json("POST", path, move), 403, "forbidden")
	want(t, applicant.json("POST", path, move), 403, "forbidden")
	want(t, county.json("POST", path, nil), 400, "malformed_body")
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"exam_area_code": "0102", "reason": "  "}, "reason"},
		{map[string]any{"exam_area_code": "9999", "reason": reason}, "exam_area_code"},
		{map[string]any{"exam_area_code": "0106", "reason": reason}, "exam_area_code"}, // its own area
		{map[string]any{"reason": reason}, "exam_area_code"},
		{map[string]any{"exam_area_code": "01\x0002", "reason": reason}, "exam_area_code"},
	} {
		r := county.json("POST", path, bad.body)
		want(t, r, 422, "validation_failed")
		if _, ok := r.body["error"].(map[string]any)["fields"].(map[string]any)[bad.field]; !ok {
			t.Errorf("%v: 422 without the field %s: %s", bad.body, bad.field, r.raw)
		}
	}

	county.headers = map[string]string{"Idempotency-Key": "area-" + id}
	r = county.json("POST", path, move)
	want(t, r, 200, "")
	if r.str("exam_area_code") != "0102" || r.str("status") != "county_review" {
		t.Fatalf("after the change: %s", r.raw)
	}
	w := r.body["confirmation_window"].(map[string]any)
	if s, _ := time.Parse(time.RFC3339, w["starts_at"].(string)); !s.Equal(newStart) {
		t.Errorf("window after the change: %v, want the new area's from %v", w, newStart)
	}
	again := county.json("POST", path, move) // the answer was lost: the same answer, applied once
	want(t, again, 200, "")
	if !bytes.Equal(again.raw, r.raw) {
		t.Errorf("retried change answered\n%s\nfirst\n%s", again.raw, r.raw)
	}
	county.headers = nil

	// The old office no longer sees it; the new one has it, waiting since before.
	want(t, county.json("GET", "/registrations/"+id, nil), 403, "forbidden")
	if _, ok := inboxHas(t, county, id); ok {
		t.Error("still in the old area's inbox")
	}
	if got, ok := inboxHas(t, newCounty, id); !ok || !got.Equal(since) {
		t.Errorf("in the new area's inbox: %v since %v, want since %v", ok, got, since)
	}
	// Operators filter by the new area in the Temporal UI.
	desc, err := temporal.DescribeWorkflow(context.Background(), workflows.WorkflowID(id), "")
	if err != nil {
		t.Fatal(err)
	}
	if sa, _ := desc.TypedSearchAttributes.GetKeyword(workflows.ExamAreaKey); sa != "0102" {
		t.Errorf("ExamArea search attribute %q, want 0102", sa)
	}
	// The history records it: the areas, the reason, who.
	r = province.json("GET", "/registrations/"+id, nil)
	steps := historyEntries(r)
	last := steps[len(steps)-1]
	note, _ := last["note"].(string)
	if last["status"] != "county_review" || last["by_role"] != "county_reviewer" || last["by_account"] != "county0106@example.com" ||
		!strings.Contains(note, "武汉市武昌区（0106）") || !strings.Contains(note, "武汉市江岸区（0102）") || !strings.Contains(note, reason) {
		t.Errorf("the change's history entry: %v", last)
	}

	// The old county's decision is refused; the new one's goes on.
	want(t, county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 403, "forbidden")
	want(t, newCounty.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true}), 200, "")
	want(t, province.json("POST", "/registrations/"+id+"/provincial-review", map[string]any{"approved": true}), 200, "")
	want(t, onsite.json("GET", "/onsite/registrations?id_number="+idNumber, nil), 200, "")
	if found := onsite.json("GET", "/onsite/registrations?id_number="+idNumber, nil); strings.Contains(string(found.raw), id) {
		t.Error("the old area's desk finds it")
	}
	photo := map[string]string{"id_card_number": idNumber, "name": "吴可"}
	want(t, onsite.multipart("/registrations/"+id+"/onsite-check", photo, "photo", jpegFile), 403, "forbidden")
	if found := newOnsite.json("GET", "/onsite/registrations?id_number="+idNumber, nil); !strings.Contains(string(found.raw), id) {
		t.Errorf("the new area's desk does not find it: %s", found.raw)
	}
	r = newOnsite.multipart("/registrations/"+id+"/onsite-check", photo, "photo", jpegFile)
	want(t, r, 200, "")
	ticket := r.str("ticket_number")
	if !regexp.MustCompile(fmt.Sprintf(`^0102%02d%d\d{5}$`, year%100, sitting)).MatchString(ticket) {
		t.Errorf("ticket %q is not of the new area", ticket)
	}
	// Completed: the ticket never changes.
	want(t, province.json("POST", path, map[string]any{"exam_area_code": "0106", "reason": reason}), 409, "registration_closed")
	recordHistory(t, "new-zhuanshengben-area-changed", id)

	mails := mailsTo(t, login, 3) // the change, pre-registered, completed
	var changed bool
	for _, m := range mails {
		if m.Subject == "【湖北自考】您的考区已变更" {
			changed = true
			wantMails(t, []devstack.MailMessage{m}, login, id, [][]string{{m.Subject, "武汉市江岸区", "变更原因：" + reason,
				"武汉市江岸区教育局自考办（样例地址）"}}, []string{"吴可", idNumber, "county0106"})
		}
	}
	if !changed {
		t.Errorf("no e-mail of the change among %d", len(mails))
	}
	var texts []string
	for _, m := range smsTo(t, phone, 3) {
		texts = append(texts, m.Text)
	}
	if !strings.Contains(strings.Join(texts, "\n"), "您的考区已由考试机构变更为武汉市江岸区") {
		t.Errorf("no SMS of the change: %q", texts)
	}
}

// The provincial office moves a pre-registered registration to an area
// whose window has ended: it expires at once. An on-site check at the old
// desk racing a change: exactly one of them wins.
func TestAreaChangeEndsAndRaces(t *testing.T) {
	now := time.Now()
	openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	defer openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	setWindow(t, "0103", now.AddDate(0, 0, -10), now.Add(-time.Minute))
	province, onsite := staff(t, "province@example.com"), staff(t, "onsite0106@example.com")

	applicant := newApplicant(t)
	r := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "郑和"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "pre_registered")
	want(t, province.json("POST", "/registrations/"+id+"/exam-area", map[string]any{"exam_area_code": "0103", "reason": "考生选错考区"}), 200, "")
	waitFor(t, applicant, id, "expired")

	for i := range 4 {
		name := fmt.Sprintf("王%c", '甲'+rune(i))
		body := newRegistration("zhuanke", "", name)
		idNumber := body["personal"].(map[string]any)["id_number"].(string)
		applicant := newApplicant(t)
		r := applicant.json("POST", "/registrations", body)
		want(t, r, 202, "")
		id := r.str("registration_id")
		waitFor(t, applicant, id, "pre_registered")
		var change, check response
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			change = province.json("POST", "/registrations/"+id+"/exam-area", map[string]any{"exam_area_code": "0102", "reason": "考生选错考区"})
		}()
		go func() {
			defer wg.Done()
			check = onsite.multipart("/registrations/"+id+"/onsite-check", map[string]string{"id_card_number": idNumber, "name": name}, "photo", jpegFile)
		}()
		wg.Wait()
		final := province.json("GET", "/registrations/"+id, nil)
		switch {
		case change.status == 200 && check.status == 403:
			if final.str("status") != "pre_registered" || final.str("exam_area_code") != "0102" {
				t.Errorf("the change won, yet: %s", final.raw)
			}
		case check.status == 200 && change.status == 409 && change.errorCode() == "registration_closed":
			if final.str("status") != "completed" || final.str("exam_area_code") != "0106" || !strings.HasPrefix(final.str("ticket_number"), "0106") {
				t.Errorf("the check won, yet: %s", final.raw)
			}
		default:
			t.Errorf("race %d: change %d %s, on-site check %d %s", i, change.status, change.raw, check.status, check.raw)
		}
	}
}

// Moving an area's window sends each applicant whose registration moved a
// notice with the new dates (e-mail and SMS), recorded as a step of its
// own; the status and its waiting time stay.
func TestWindowMoveNotice(t *testing.T) {
	const area = "0105" // no other test registers here
	now := time.Now()
	openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	defer openWindows(t, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	login, phone := signUp(t), newPhone()
	applicant := logIn(t, login, "secret1")
	body := newRegistration("zhuanke", "", "孟浩")
	body["application"].(map[string]any)["exam_area_code"] = area
	body["personal"].(map[string]any)["phone"] = phone
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id := r.str("registration_id")
	before := waitFor(t, applicant, id, "pre_registered")

	starts, ends := now.Add(-2*time.Hour).Truncate(time.Second), now.AddDate(0, 0, 45).Truncate(time.Second)
	r = admin(t).json("PUT", "/admin/windows/"+area, map[string]any{"starts_at": starts.Format(time.RFC3339), "ends_at": ends.Format(time.RFC3339)})
	want(t, r, 200, "")
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	newDates := starts.In(shanghai).Format("2006年1月2日 15:04") + " 至 " + ends.In(shanghai).Format("2006年1月2日 15:04")

	after := applicant.json("GET", "/registrations/"+id, nil)
	steps := historyEntries(after)
	if len(steps) != len(historyEntries(before))+1 || after.str("status") != "pre_registered" {
		t.Fatalf("after the move: %s", after.raw)
	}
	if last := steps[len(steps)-1]; last["status"] != "pre_registered" || last["by_role"] != "admin" || last["note"] != "考区现场确认时间调整为"+newDates {
		t.Errorf("the move's step: %v", last)
	}
	mails := mailsTo(t, login, 2)
	if len(mails) != 2 {
		t.Fatalf("%d e-mails, want pre-registered and the move", len(mails))
	}
	wantMails(t, mails[1:], login, id, [][]string{{"【湖北自考】现场确认时间已调整", "武汉市汉阳区", newDates, "武汉市汉阳区教育局自考办（样例地址）"}},
		[]string{"孟浩", body["personal"].(map[string]any)["id_number"].(string)})
	texts := smsTo(t, phone, 2)
	if len(texts) != 2 || !strings.Contains(texts[0].Text, "现场确认时间已调整为") || !strings.Contains(texts[0].Text, ends.In(shanghai).Format("1月2日")) {
		t.Errorf("texts: %+v", texts)
	}
	recordHistory(t, "new-zhuanke-window-moved", id)
}
