package api_test

import (
	"encoding/base64"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/testenv"
)

// Each test here uses exam areas of its own and staff accounts of its own
// (the look-up limit counts per account), so that no other test's
// registrations or attempts change what it sees.

// toCountyReview takes a new 专升本 registration in an exam area (its
// diploma unknown to the registry) to county review, through the API.
func toCountyReview(t *testing.T, area string) (id string, applicant caller) {
	t.Helper()
	applicant = newApplicant(t)
	body := newRegistration("zhuanshengben", "", "欧阳娜娜")
	body["application"].(map[string]any)["exam_area_code"] = area
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	id = r.str("registration_id")
	waitFor(t, applicant, id, "awaiting_report")
	r = applicant.multipart("/registrations/"+id+"/diploma-report", map[string]string{"verification_code": "ABCD1234EFGH"}, "file", pdfFile)
	want(t, r, 202, "")
	if r.str("status") != "county_review" {
		t.Fatalf("after the upload: %s", r.raw)
	}
	return id, applicant
}

// setWaitingSince sets when a registration entered its stage.
func setWaitingSince(t *testing.T, id string, since time.Time) {
	t.Helper()
	if _, err := database.Exec(`UPDATE registrations SET stage_since = $2 WHERE id = $1`, id, since); err != nil {
		t.Fatal(err)
	}
}

// inboxItem is what the paging tests read of an inbox item.
type inboxItem struct {
	id           string
	waitingSince time.Time
	overdue      bool
}

// inboxPage reads a page of the inbox.
func inboxPage(t *testing.T, c caller, query string) (items []inboxItem, total int, next string) {
	t.Helper()
	r := c.json("GET", "/reviews?"+query, nil)
	want(t, r, 200, "")
	for _, v := range r.body["reviews"].([]any) {
		m := v.(map[string]any)
		since, err := time.Parse(time.RFC3339Nano, m["waiting_since"].(string))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, inboxItem{id: m["registration_id"].(string), waitingSince: since, overdue: m["overdue"].(bool)})
	}
	next, _ = r.body["next"].(string)
	if r.body["next"] != nil && next == "" {
		t.Fatalf("next is neither a cursor nor null: %s", r.raw)
	}
	return items, int(r.body["total"].(float64)), next
}

func ids(items []inboxItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out
}

func wantIDs(t *testing.T, what string, got []inboxItem, want ...string) {
	t.Helper()
	g := ids(got)
	if len(g) != len(want) {
		t.Fatalf("%s: %v, want %v", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: %v, want %v", what, g, want)
		}
	}
}

// Seven registrations waiting in one exam area, walked three at a time:
// oldest first (ties by registration id), each seen exactly once although
// decisions take registrations out of the list between the pages.
func TestInboxPagesThroughDecisions(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	const area = "0117"
	county := newStaff(t, accounts.RoleCountyReviewer, area)
	province := newStaff(t, accounts.RoleProvincialReviewer, "")
	type waiting struct {
		id    string
		since time.Time
	}
	var regs []waiting
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 7 {
		id, _ := toCountyReview(t, area)
		// Pairs that entered the stage at the same moment, the newest first
		// written: the order is the time, then the id.
		since := base.Add(-time.Duration(i/2) * time.Minute)
		setWaitingSince(t, id, since)
		regs = append(regs, waiting{id, since})
	}
	sort.Slice(regs, func(i, j int) bool {
		if !regs[i].since.Equal(regs[j].since) {
			return regs[i].since.Before(regs[j].since)
		}
		return regs[i].id < regs[j].id
	})
	order := make([]string, len(regs))
	for i, r := range regs {
		order[i] = r.id
	}

	// Everything at once: the order, the waiting times, none overdue.
	all, total, next := inboxPage(t, county, "stage=county")
	wantIDs(t, "the whole inbox", all, order...)
	if total != 7 || next != "" {
		t.Fatalf("the whole inbox: total %d, next %q; want 7 and none", total, next)
	}
	for i, it := range all {
		if !it.waitingSince.Equal(regs[i].since) || it.overdue {
			t.Fatalf("item %d: waiting since %s, overdue %v; want since %s, not overdue", i, it.waitingSince, it.overdue, regs[i].since)
		}
	}
	// A provincial reviewer filtering on the area sees the same.
	byArea, total, _ := inboxPage(t, province, "stage=county&exam_area="+area)
	wantIDs(t, "the provincial view of the area", byArea, order...)
	if total != 7 {
		t.Fatalf("the provincial view of the area: total %d, want 7", total)
	}

	approve := func(id string) {
		t.Helper()
		r := county.json("POST", "/registrations/"+id+"/county-review", map[string]any{"approved": true})
		want(t, r, 200, "")
		if r.str("status") != "provincial_review" {
			t.Fatalf("after approval: %s", r.raw)
		}
	}
	var seen []inboxItem
	page, total, next := inboxPage(t, county, "limit=3")
	wantIDs(t, "page 1", page, order[0:3]...)
	if total != 7 || next == "" {
		t.Fatalf("page 1: total %d, next %q", total, next)
	}
	seen = append(seen, page...)
	approve(order[1]) // one already seen leaves: paging by offset would now skip order[3]

	page, total, next = inboxPage(t, county, "limit=3&after="+url.QueryEscape(next))
	wantIDs(t, "page 2", page, order[3:6]...)
	if total != 6 || next == "" {
		t.Fatalf("page 2: total %d, next %q", total, next)
	}
	seen = append(seen, page...)
	approve(order[0])

	page, total, next = inboxPage(t, county, "limit=3&after="+url.QueryEscape(next))
	wantIDs(t, "page 3", page, order[6])
	if total != 5 || next != "" {
		t.Fatalf("page 3: total %d, next %q; want 5 and none", total, next)
	}
	seen = append(seen, page...)
	wantIDs(t, "all pages", seen, order...)

	// A full last page has no next; an empty page after a stale cursor is fine.
	page, _, next = inboxPage(t, county, "limit=5")
	wantIDs(t, "five of five", page, order[2:7]...)
	if next != "" {
		t.Fatalf("a full last page gives next %q", next)
	}

	// The approved ones wait at the provincial stage, in the order they got there.
	page, total, _ = inboxPage(t, province, "stage=provincial&exam_area="+area)
	wantIDs(t, "the provincial stage", page, order[1], order[0])
	if total != 2 {
		t.Fatalf("the provincial stage: total %d, want 2", total)
	}
	// Over every area, the provincial reviewer sees them among the others.
	page, total, _ = inboxPage(t, province, "stage=county&limit=200")
	if total < 5 {
		t.Fatalf("every area: total %d", total)
	}
	found := 0
	for _, it := range page {
		for _, id := range order[2:] {
			if it.id == id {
				found++
			}
		}
	}
	if found != 5 {
		t.Fatalf("every area's first page holds %d of the area's 5", found)
	}
}

// A county reviewer sees the own area only; limit, after and exam_area are
// checked.
func TestInboxScopeAndValidation(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	const area = "0114"
	county, other := newStaff(t, accounts.RoleCountyReviewer, area), newStaff(t, accounts.RoleCountyReviewer, "0113")
	province := newStaff(t, accounts.RoleProvincialReviewer, "")
	id, _ := toCountyReview(t, area)

	page, total, _ := inboxPage(t, county, "")
	wantIDs(t, "own area", page, id)
	if total != 1 {
		t.Fatalf("own area: total %d", total)
	}
	page, _, _ = inboxPage(t, county, "exam_area="+area)
	wantIDs(t, "own area by filter", page, id)
	page, total, _ = inboxPage(t, other, "stage=county")
	if len(page) != 0 || total != 0 {
		t.Fatalf("another area's reviewer sees %v (total %d)", ids(page), total)
	}
	want(t, county.json("GET", "/reviews?exam_area=0113", nil), 403, "forbidden")
	want(t, county.json("GET", "/reviews?stage=provincial", nil), 403, "forbidden")
	page, _, _ = inboxPage(t, province, "stage=county&exam_area=0113")
	if len(page) != 0 {
		t.Fatalf("the filter lets %v through", ids(page))
	}

	field := func(query, name string) {
		t.Helper()
		r := province.json("GET", "/reviews?"+query, nil)
		want(t, r, 422, "validation_failed")
		fields := r.body["error"].(map[string]any)["fields"].(map[string]any)
		if fields[name] == nil || len(fields) != 1 {
			t.Fatalf("%s: fields %v, want %s", query, fields, name)
		}
	}
	for _, limit := range []string{"0", "201", "-1", "abc", "1.5", "", "99999999999999999999999"} {
		field("limit="+limit, "limit")
	}
	for _, after := range []string{"!!", "bm90IGEgY3Vyc29y", base64.RawURLEncoding.EncodeToString([]byte("2027-01-01T00:00:00Z|not-a-uuid")),
		base64.RawURLEncoding.EncodeToString([]byte("yesterday|" + uuid.NewString()))} {
		field("after="+url.QueryEscape(after), "after")
	}
	field("exam_area=12", "exam_area")
	field("stage=nowhere", "stage")
	for _, limit := range []string{"1", "200"} {
		want(t, province.json("GET", "/reviews?limit="+limit, nil), 200, "")
	}
}

// A review waiting longer than the overdue time is flagged in the inbox and
// counted per area and stage; the time is the service's setting.
func TestOverdueReviews(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	const area = "0116"
	county, quiet := newStaff(t, accounts.RoleCountyReviewer, area), newStaff(t, accounts.RoleCountyReviewer, "0112")
	province := newStaff(t, accounts.RoleProvincialReviewer, "")
	oldest, _ := toCountyReview(t, area)
	older, _ := toCountyReview(t, area)
	fresh, _ := toCountyReview(t, area)
	fiveDays := time.Now().Add(-5 * 24 * time.Hour).Truncate(time.Second)
	setWaitingSince(t, oldest, fiveDays)
	setWaitingSince(t, older, time.Now().Add(-4*24*time.Hour))
	setWaitingSince(t, fresh, time.Now().Add(-2*time.Hour))

	page, _, _ := inboxPage(t, county, "")
	wantIDs(t, "inbox", page, oldest, older, fresh)
	if !page[0].overdue || !page[1].overdue || page[2].overdue {
		t.Fatalf("overdue flags %v %v %v, want true true false", page[0].overdue, page[1].overdue, page[2].overdue)
	}

	areas := func(c caller) []any {
		t.Helper()
		r := c.json("GET", "/reviews/overdue", nil)
		want(t, r, 200, "")
		return r.body["areas"].([]any)
	}
	wantArea := func(got []any, count int) {
		t.Helper()
		for _, a := range got {
			m := a.(map[string]any)
			if m["exam_area_code"] != area {
				continue
			}
			since, _ := time.Parse(time.RFC3339Nano, m["oldest_waiting_since"].(string))
			if m["stage"] != "county" || int(m["count"].(float64)) != count || !since.Equal(fiveDays) {
				t.Fatalf("area %s: %v, want county, %d, oldest %s", area, m, count, fiveDays)
			}
			return
		}
		t.Fatalf("area %s not in %v", area, got)
	}
	got := areas(county)
	if len(got) != 1 {
		t.Fatalf("a county reviewer sees %v, want the own area only", got)
	}
	wantArea(got, 2)
	wantArea(areas(province), 2)
	if got := areas(quiet); len(got) != 0 {
		t.Fatalf("an area without overdue reviews shows %v", got)
	}

	// The overdue time is the service's setting (ZIKAO_REVIEW_OVERDUE_AFTER).
	was := server.Registering.OverdueAfter
	server.Registering.OverdueAfter = time.Hour
	t.Cleanup(func() { server.Registering.OverdueAfter = was })
	page, _, _ = inboxPage(t, county, "")
	if !page[2].overdue {
		t.Fatal("two hours is not overdue after one hour")
	}
	wantArea(areas(county), 3)
}

// Staff find an ID number's registrations, any status, newest first, within
// their scope; an answer that finds nothing counts toward the look-up limit,
// one that finds something or an invalid ID number does not.
func TestFindByIDNumber(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	const area = "0115"
	applicant := newApplicant(t)
	idNumber := testenv.IDNumber()
	body := newRegistration("zhuanke", idNumber, "张三")
	body["application"].(map[string]any)["exam_area_code"] = area
	r := applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	first := r.str("registration_id")
	want(t, applicant.json("POST", "/registrations/"+first+"/withdraw", nil), 202, "")
	r = applicant.json("POST", "/registrations", body)
	want(t, r, 202, "")
	second := r.str("registration_id")

	find := func(c caller, id string) []string {
		t.Helper()
		r := c.json("GET", "/registrations?id_number="+id, nil)
		want(t, r, 200, "")
		var out []string
		for _, v := range r.body["registrations"].([]any) {
			out = append(out, v.(map[string]any)["registration_id"].(string))
		}
		return out
	}
	for _, c := range []caller{newStaff(t, accounts.RoleCountyReviewer, area), newStaff(t, accounts.RoleProvincialReviewer, ""),
		newStaff(t, accounts.RoleOnsiteOperator, area)} {
		if got := find(c, idNumber); len(got) != 2 || got[0] != second || got[1] != first {
			t.Fatalf("found %v, want %s then %s", got, second, first)
		}
	}
	for _, c := range []caller{newStaff(t, accounts.RoleCountyReviewer, "0106"), newStaff(t, accounts.RoleOnsiteOperator, "0106")} {
		if got := find(c, idNumber); len(got) != 0 {
			t.Fatalf("another area's staff found %v", got)
		}
	}

	prober := newStaff(t, accounts.RoleOnsiteOperator, area)
	limit := server.StaffLookupLimits.PerLogin.Max
	for range limit + 1 {
		if got := find(prober, idNumber); len(got) != 2 { // hits do not count
			t.Fatalf("found %v", got)
		}
		r := prober.json("GET", "/registrations?id_number=123", nil)
		want(t, r, 422, "validation_failed") // nor do invalid ID numbers
		if r.body["error"].(map[string]any)["fields"].(map[string]any)["id_number"] == nil {
			t.Fatalf("no id_number field: %s", r.raw)
		}
	}
	want(t, prober.json("GET", "/registrations", nil), 422, "validation_failed")
	for range limit {
		if got := find(prober, testenv.IDNumber()); len(got) != 0 { // misses do
			t.Fatalf("found %v", got)
		}
	}
	r = prober.json("GET", "/registrations?id_number="+idNumber, nil)
	want(t, r, 429, "too_many_attempts")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

// Who may use the new endpoints: reviewers the inbox and the overdue
// counts, reviewers and on-site operators the search; applicants and
// administrators none (403), nobody logged in 401.
func TestInboxAndSearchByRole(t *testing.T) {
	idNumber := testenv.IDNumber()
	search := "/registrations?id_number=" + idNumber
	roles := []struct {
		name string
		as   caller
		// answers to /reviews, /reviews/overdue, the search
		reviews, overdue, search int
	}{
		{"nobody", caller{t: t}, 401, 401, 401},
		{"applicant", newApplicant(t), 403, 403, 403},
		{"admin", newStaff(t, accounts.RoleAdmin, ""), 403, 403, 403},
		{"on-site operator", newStaff(t, accounts.RoleOnsiteOperator, "0106"), 403, 403, 200},
		{"county reviewer", newStaff(t, accounts.RoleCountyReviewer, "0106"), 200, 200, 200},
		{"provincial reviewer", newStaff(t, accounts.RoleProvincialReviewer, ""), 200, 200, 200},
	}
	code := map[int]string{200: "", 401: "unauthenticated", 403: "forbidden"}
	for _, role := range roles {
		t.Run(role.name, func(t *testing.T) {
			role.as.t = t
			want(t, role.as.json("GET", "/reviews?limit=10", nil), role.reviews, code[role.reviews])
			want(t, role.as.json("GET", "/reviews/overdue", nil), role.overdue, code[role.overdue])
			want(t, role.as.json("GET", search, nil), role.search, code[role.search])
		})
	}
}
