package api_test

import (
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/testenv"
)

// The administration endpoints, as (method, path) with a plausible body.
var adminEndpoints = []struct{ method, path string }{
	{"GET", "/admin/staff"},
	{"POST", "/admin/staff"},
	{"PATCH", "/admin/staff/1"},
	{"GET", "/admin/windows"},
	{"PUT", "/admin/windows/0117"},
	{"POST", "/admin/enrolled-records"},
	{"GET", "/admin/dashboard"},
	{"GET", "/admin/dashboard?format=csv"},
}

func admin(t *testing.T) caller { return staff(t, "admin@example.com") }

func TestAdminEndpointsAreForAdminsOnly(t *testing.T) {
	others := map[string]caller{
		"applicant":           newApplicant(t),
		"county_reviewer":     staff(t, "county0106@example.com"),
		"provincial_reviewer": staff(t, "province@example.com"),
		"onsite_operator":     staff(t, "onsite0106@example.com"),
	}
	for _, e := range adminEndpoints {
		var body any
		if e.method != "GET" {
			body = map[string]any{}
		}
		want(t, caller{t: t}.json(e.method, e.path, body), 401, "unauthenticated")
		for role, c := range others {
			if r := c.json(e.method, e.path, body); r.status != 403 || r.errorCode() != "forbidden" {
				t.Errorf("%s %s as %s: %d %s, want 403 forbidden", e.method, e.path, role, r.status, r.raw)
			}
		}
	}
}

// staffOf finds an account in the staff list.
func staffOf(t *testing.T, list response, login string) map[string]any {
	t.Helper()
	for _, s := range list.body["staff"].([]any) {
		if a := s.(map[string]any); a["login_name"] == login {
			return a
		}
	}
	return nil
}

func accountID(r response) string {
	return strconv.FormatInt(int64(r.body["account_id"].(float64)), 10)
}

func TestAdminCreatesAndListsStaff(t *testing.T) {
	a := admin(t)
	applicant := signUp(t)
	login := "county-" + uuid.NewString()[:8] + "@example.com"
	r := a.json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "staff-pass", "role": "county_reviewer", "exam_area_code": "0102"})
	want(t, r, 201, "")
	if r.str("login_name") != login || r.str("role") != "county_reviewer" || r.str("exam_area_code") != "0102" || r.body["disabled"] != false {
		t.Fatalf("created: %s", r.raw)
	}
	reviewer := logIn(t, login, "staff-pass")
	if me := reviewer.json("GET", "/accounts/me", nil); me.str("role") != "county_reviewer" || me.str("exam_area_code") != "0102" {
		t.Fatalf("the new reviewer: %s", me.raw)
	}

	// Taken login names, staff's or an applicant's (in any case): 409, and nothing changes.
	for _, taken := range []string{login, strings.ToUpper(applicant), "admin@example.com"} {
		want(t, a.json("POST", "/admin/staff", map[string]any{"login_name": taken, "password": "other-pass", "role": "admin"}), 409, "login_name_taken")
	}
	logIn(t, login, "staff-pass")
	logIn(t, applicant, "secret1")

	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"password": "staff-pass", "role": "admin"}, "login_name"},
		{map[string]any{"login_name": "x-" + login, "password": "short", "role": "admin"}, "password"},
		{map[string]any{"login_name": "x-" + login, "password": "staff-pass", "role": "applicant"}, "role"},
		{map[string]any{"login_name": "x-" + login, "password": "staff-pass", "role": "county_reviewer"}, "exam_area_code"},
		{map[string]any{"login_name": "x-" + login, "password": "staff-pass", "role": "onsite_operator", "exam_area_code": "9999"}, "exam_area_code"},
		{map[string]any{"login_name": "x-" + login, "password": "staff-pass", "role": "provincial_reviewer", "exam_area_code": "0106"}, "exam_area_code"},
	} {
		r := a.json("POST", "/admin/staff", bad.body)
		want(t, r, 422, "validation_failed")
		if f := r.body["error"].(map[string]any)["fields"].(map[string]any); f[bad.field] == nil {
			t.Errorf("%v: fields %v, want %s", bad.body, f, bad.field)
		}
	}
	want(t, a.json("POST", "/admin/staff", "not an object"), 400, "malformed_body")

	// The list: staff only, by login name.
	list := a.json("GET", "/admin/staff", nil)
	want(t, list, 200, "")
	if s := staffOf(t, list, login); s == nil || s["exam_area_code"] != "0102" || s["disabled"] != false {
		t.Errorf("the new reviewer in the list: %v", s)
	}
	if staffOf(t, list, applicant) != nil {
		t.Error("an applicant is listed as staff")
	}
	var logins []string
	for _, s := range list.body["staff"].([]any) {
		m := s.(map[string]any)
		if m["role"] == "applicant" {
			t.Errorf("applicant listed: %v", m)
		}
		logins = append(logins, strings.ToLower(m["login_name"].(string)))
	}
	if !slices.IsSorted(logins) {
		t.Errorf("not ordered by login name: %v", logins)
	}
}

func TestAdminChangesStaffRoleAndArea(t *testing.T) {
	a := admin(t)
	login := "op-" + uuid.NewString()[:8] + "@example.com"
	r := a.json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "staff-pass", "role": "onsite_operator", "exam_area_code": "0106"})
	want(t, r, 201, "")
	path := "/admin/staff/" + accountID(r)
	op := logIn(t, login, "staff-pass")

	// A county reviewer keeps the area; the change ends the open session
	// at once (as disabling does), and a new one has the new role.
	r = a.json("PATCH", path, map[string]any{"role": "county_reviewer"})
	want(t, r, 200, "")
	if r.str("role") != "county_reviewer" || r.str("exam_area_code") != "0106" {
		t.Fatalf("role changed: %s", r.raw)
	}
	want(t, op.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	op = logIn(t, login, "staff-pass")
	if me := op.json("GET", "/accounts/me", nil); me.str("role") != "county_reviewer" {
		t.Errorf("the new session has role %s", me.str("role"))
	}
	r = a.json("PATCH", path, map[string]any{"exam_area_code": "0102"})
	want(t, r, 200, "")
	if r.str("exam_area_code") != "0102" {
		t.Fatalf("area changed: %s", r.raw)
	}
	want(t, op.json("GET", "/accounts/me", nil), 401, "unauthenticated") // a new area too
	op = logIn(t, login, "staff-pass")
	// A change to nothing new (the same area again) leaves the session.
	want(t, a.json("PATCH", path, map[string]any{"exam_area_code": "0102"}), 200, "")
	want(t, op.json("GET", "/accounts/me", nil), 200, "")
	// A provincial reviewer has no area: dropped, and refused when given.
	want(t, a.json("PATCH", path, map[string]any{"role": "provincial_reviewer", "exam_area_code": "0106"}), 422, "validation_failed")
	r = a.json("PATCH", path, map[string]any{"role": "provincial_reviewer"})
	want(t, r, 200, "")
	if r.body["exam_area_code"] != nil {
		t.Fatalf("a provincial reviewer with an area: %s", r.raw)
	}
	want(t, a.json("PATCH", path, map[string]any{"role": "county_reviewer"}), 422, "validation_failed")
	want(t, a.json("PATCH", path, map[string]any{"role": "county_reviewer", "exam_area_code": "9999"}), 422, "validation_failed")
	want(t, a.json("PATCH", path, map[string]any{"role": "applicant"}), 422, "validation_failed")
	want(t, a.json("PATCH", path, map[string]any{"password": "short"}), 422, "validation_failed")
	want(t, a.json("PATCH", path, map[string]any{"disabled": "yes"}), 400, "malformed_body")

	// Unknown accounts and applicants' are not staff: 404.
	applicant := newApplicant(t)
	me := applicant.json("GET", "/accounts/me", nil)
	for _, id := range []string{accountID(me), "999999999", "abc", "-1"} {
		want(t, a.json("PATCH", "/admin/staff/"+id, map[string]any{"disabled": true}), 404, "not_found")
	}
	if applicant.json("GET", "/accounts/me", nil).status != 200 {
		t.Error("the applicant's session ended")
	}
}

func TestAdminDisablesAndEnablesStaff(t *testing.T) {
	a := admin(t)
	login := "dis-" + uuid.NewString()[:8] + "@example.com"
	r := a.json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "staff-pass", "role": "provincial_reviewer"})
	want(t, r, 201, "")
	path := "/admin/staff/" + accountID(r)
	reviewer := logIn(t, login, "staff-pass")
	want(t, reviewer.json("GET", "/reviews?stage=provincial", nil), 200, "")

	r = a.json("PATCH", path, map[string]any{"disabled": true})
	want(t, r, 200, "")
	if r.body["disabled"] != true {
		t.Fatalf("disabled: %s", r.raw)
	}
	want(t, reviewer.json("GET", "/reviews?stage=provincial", nil), 401, "unauthenticated")
	want(t, caller{t: t}.json("POST", "/sessions", map[string]any{"login_name": login, "password": "staff-pass"}), 401, "invalid_credentials")
	if s := staffOf(t, a.json("GET", "/admin/staff", nil), login); s == nil || s["disabled"] != true {
		t.Errorf("listed as %v", s)
	}

	r = a.json("PATCH", path, map[string]any{"disabled": false})
	want(t, r, 200, "")
	if r.body["disabled"] != false {
		t.Fatalf("enabled: %s", r.raw)
	}
	want(t, logIn(t, login, "staff-pass").json("GET", "/reviews?stage=provincial", nil), 200, "")
}

func TestAdminResetsStaffPassword(t *testing.T) {
	a := admin(t)
	login := "pw-" + uuid.NewString()[:8] + "@example.com"
	r := a.json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "staff-pass", "role": "onsite_operator", "exam_area_code": "0106"})
	want(t, r, 201, "")
	op := logIn(t, login, "staff-pass")
	want(t, a.json("PATCH", "/admin/staff/"+accountID(r), map[string]any{"password": "new-staff-pass"}), 200, "")
	want(t, op.json("GET", "/accounts/me", nil), 401, "unauthenticated")
	want(t, caller{t: t}.json("POST", "/sessions", map[string]any{"login_name": login, "password": "staff-pass"}), 401, "invalid_credentials")
	logIn(t, login, "new-staff-pass")
}

// Administrators cannot lock themselves out: they cannot disable their own
// account or change their own role (422, field named).
func TestAdminCannotDisableOrDemoteThemselves(t *testing.T) {
	login := "adm-" + uuid.NewString()[:8] + "@example.com"
	r := admin(t).json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "admin-pass", "role": "admin"})
	want(t, r, 201, "")
	self := logIn(t, login, "admin-pass")
	path := "/admin/staff/" + accountID(r)
	for field, change := range map[string]map[string]any{
		"disabled": {"disabled": true},
		"role":     {"role": "provincial_reviewer"},
	} {
		r := self.json("PATCH", path, change)
		want(t, r, 422, "validation_failed")
		if f := r.body["error"].(map[string]any)["fields"].(map[string]any); f[field] == nil {
			t.Errorf("%v: fields %v, want %s", change, f, field)
		}
	}
	want(t, self.json("PATCH", path, map[string]any{"disabled": false, "role": "admin"}), 200, "")
	want(t, self.json("GET", "/admin/staff", nil), 200, "")
	// Another administrator may.
	want(t, admin(t).json("PATCH", path, map[string]any{"disabled": true}), 200, "")
	want(t, self.json("GET", "/admin/staff", nil), 401, "unauthenticated")
}

// registerIn submits a 专科 registration in an exam area and waits until it
// is pre-registered; it returns the applicant and the registration id.
func registerIn(t *testing.T, area string) (caller, string) {
	t.Helper()
	c := newApplicant(t)
	body := newRegistration("zhuanke", "", "李四")
	body["application"].(map[string]any)["exam_area_code"] = area
	r := c.json("POST", "/registrations", body)
	want(t, r, 202, "")
	waitFor(t, c, r.str("registration_id"), "pre_registered")
	return c, r.str("registration_id")
}

func TestAdminMovesAWindow(t *testing.T) {
	const area = "0115" // no other test registers here
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant, id := registerIn(t, area)
	a := admin(t)

	starts, ends := time.Now().Add(-2*time.Hour).Truncate(time.Second), time.Now().AddDate(0, 0, 40).Truncate(time.Second)
	r := a.json("PUT", "/admin/windows/"+area, map[string]any{"starts_at": starts.Format(time.RFC3339), "ends_at": ends.Format(time.RFC3339)})
	want(t, r, 200, "")
	if r.body["moved"].(float64) < 1 || len(r.body["not_moved"].([]any)) != 0 {
		t.Fatalf("moved: %s", r.raw)
	}
	w := r.body["window"].(map[string]any)
	if w["exam_area_code"] != area || w["ends_at"] != ends.Format(time.RFC3339) {
		t.Errorf("window: %v", w)
	}
	v := applicant.json("GET", "/registrations/"+id, nil)
	cw := v.body["confirmation_window"].(map[string]any)
	if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(ends) {
		t.Errorf("the registration's window ends %v, want %v", cw["ends_at"], ends)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	if !strings.Contains(v.str("next_step"), ends.In(shanghai).Format("2006年1月2日 15:04")) {
		t.Errorf("next step does not name the new end: %s", v.str("next_step"))
	}

	// The list shows it, and every area.
	list := a.json("GET", "/admin/windows", nil)
	want(t, list, 200, "")
	found := false
	for _, x := range list.body["windows"].([]any) {
		if m := x.(map[string]any); m["exam_area_code"] == area {
			got, _ := time.Parse(time.RFC3339, m["ends_at"].(string))
			found = got.Equal(ends)
		}
	}
	if !found || len(list.body["windows"].([]any)) < 20 {
		t.Errorf("the windows: %s", list.raw)
	}

	// Moving to the same window again moves nobody.
	r = a.json("PUT", "/admin/windows/"+area, map[string]any{"starts_at": starts.Format(time.RFC3339), "ends_at": ends.Format(time.RFC3339)})
	want(t, r, 200, "")
	if r.body["moved"].(float64) != 0 {
		t.Errorf("moved again: %s", r.raw)
	}

	// Refusals: the end before the start or past; bad times; unknown area.
	for _, bad := range []map[string]any{
		{"starts_at": ends.Format(time.RFC3339), "ends_at": starts.Format(time.RFC3339)},
		{"starts_at": time.Now().Add(-48 * time.Hour).Format(time.RFC3339), "ends_at": time.Now().Add(-time.Hour).Format(time.RFC3339)},
		{"starts_at": "2027-03-01", "ends_at": ends.Format(time.RFC3339)},
		{"ends_at": ends.Format(time.RFC3339)},
	} {
		want(t, a.json("PUT", "/admin/windows/"+area, bad), 422, "validation_failed")
	}
	want(t, a.json("PUT", "/admin/windows/9999", map[string]any{"starts_at": starts.Format(time.RFC3339), "ends_at": ends.Format(time.RFC3339)}), 404, "not_found")
	cw = applicant.json("GET", "/registrations/"+id, nil).body["confirmation_window"].(map[string]any)
	if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(ends) {
		t.Errorf("a refused move changed the window: %v", cw)
	}
}

// enrolledRow is a good row of an import file with fresh numbers.
func enrolledRow() (row, ticket string) {
	ticket = fmt.Sprintf("0113%08d", rand.IntN(100000000))
	return "赵六," + testenv.IDNumber() + "," + ticket + ",590201,行政管理,zhuanke,0113,social\n", ticket
}

const enrolledHeader = "name,id_number,ticket_number,major_code,major_name,level,exam_area_code,source\n"

func enrolledCount(t *testing.T, tickets ...string) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM enrolled_records WHERE ticket_number = ANY($1)`, "{"+strings.Join(tickets, ",")+"}"); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAdminImportsEnrolledRecords(t *testing.T) {
	a := admin(t)
	row1, t1 := enrolledRow()
	row2, t2 := enrolledRow()
	r := a.multipart("/admin/enrolled-records", nil, "file", []byte(enrolledHeader+row1+row2))
	want(t, r, 200, "")
	if r.body["loaded"] != 2.0 || r.body["added"] != 2.0 {
		t.Fatalf("import: %s", r.raw)
	}
	if n := enrolledCount(t, t1, t2); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}
	r = a.multipart("/admin/enrolled-records", nil, "file", []byte(enrolledHeader+row1+row2))
	want(t, r, 200, "")
	if r.body["loaded"] != 2.0 || r.body["unchanged"] != 2.0 {
		t.Fatalf("import again: %s", r.raw)
	}

	// A bad line: every bad line is told, in Chinese and English, and nothing is loaded.
	good, t3 := enrolledRow()
	_, t4 := enrolledRow()
	badID := "赵六,110105194912310021," + t4 + ",590201,行政管理,zhuanke,0113,social\n" // check character
	r = a.multipart("/admin/enrolled-records", nil, "file", []byte(enrolledHeader+good+badID+"赵六,,123,590201,行政管理,zhuanke,0113,social\n"))
	want(t, r, 422, "validation_failed")
	rows, _ := r.body["rows"].([]any)
	var lines []int
	for _, x := range rows {
		m := x.(map[string]any)
		lines = append(lines, int(m["line"].(float64)))
		if msg, _ := m["message"].(string); !strings.ContainsFunc(msg, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) || m["message_en"] == "" {
			t.Errorf("row without a Chinese message: %v", m)
		}
	}
	if !slices.Equal(lines, []int{3, 4}) {
		t.Fatalf("bad lines %v, want [3 4]: %s", lines, r.raw)
	}
	if n := enrolledCount(t, t3, t4); n != 0 {
		t.Fatalf("%d records of a bad file stored", n)
	}

	r = a.multipart("/admin/enrolled-records", nil, "file", []byte("name,id\n"))
	want(t, r, 422, "validation_failed")
	if rows, _ := r.body["rows"].([]any); len(rows) != 1 || rows[0].(map[string]any)["line"] != 1.0 {
		t.Errorf("wrong header: %s", r.raw)
	}
	want(t, a.multipart("/admin/enrolled-records", map[string]string{"x": "y"}, "", nil), 422, "validation_failed")
	want(t, a.json("POST", "/admin/enrolled-records", map[string]any{}), 400, "malformed_body")
}

// dashboardCounts reads the dashboard as area → status → count.
func dashboardCounts(t *testing.T, a caller) map[string]map[string]int {
	t.Helper()
	r := a.json("GET", "/admin/dashboard", nil)
	want(t, r, 200, "")
	out := map[string]map[string]int{}
	for _, x := range r.body["counts"].([]any) {
		m := x.(map[string]any)
		area := m["exam_area_code"].(string)
		if out[area] == nil {
			out[area] = map[string]int{}
		}
		out[area][m["status"].(string)] = int(m["count"].(float64))
	}
	return out
}

func TestAdminDashboard(t *testing.T) {
	const area = "0113"
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	a := admin(t)
	before := dashboardCounts(t, a)
	registerIn(t, area)
	c, id := registerIn(t, area)
	want(t, c.json("POST", "/registrations/"+id+"/withdraw", nil), 202, "")
	waitFor(t, c, id, "withdrawn")
	after := dashboardCounts(t, a)
	if got := after[area]["pre_registered"] - before[area]["pre_registered"]; got != 1 {
		t.Errorf("pre_registered in %s grew by %d, want 1", area, got)
	}
	if got := after[area]["withdrawn"] - before[area]["withdrawn"]; got != 1 {
		t.Errorf("withdrawn in %s grew by %d, want 1", area, got)
	}

	// The CSV says the same as the JSON (read again if a workflow of
	// another test moved meanwhile).
	for try := 1; ; try++ {
		fromJSON := dashboardCounts(t, a)
		r := a.do("GET", "/admin/dashboard?format=csv", nil, "")
		if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("CSV: %d %v", r.status, r.header)
		}
		records, err := csv.NewReader(strings.NewReader(string(r.raw))).ReadAll()
		if err != nil || len(records) == 0 || strings.Join(records[0], ",") != "exam_area_code,status,count" {
			t.Fatalf("CSV %q: %v", r.raw, err)
		}
		fromCSV := map[string]map[string]int{}
		for _, rec := range records[1:] {
			n, _ := strconv.Atoi(rec[2])
			if fromCSV[rec[0]] == nil {
				fromCSV[rec[0]] = map[string]int{}
			}
			fromCSV[rec[0]][rec[1]] = n
		}
		if fmt.Sprint(fromCSV) == fmt.Sprint(fromJSON) {
			break
		}
		if try == 3 {
			t.Fatalf("CSV %v, JSON %v", fromCSV, fromJSON)
		}
	}
	want(t, a.json("GET", "/admin/dashboard?format=xml", nil), 422, "validation_failed")
}
