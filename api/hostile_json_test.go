package api_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// A JSON body sent as a multipart form is checked like any JSON body by the
// handler that decodes it: its NUL bytes and invalid UTF-8 never reach
// PostgreSQL (they answered 500 before).
func TestJSONBodyUnderAnotherContentType(t *testing.T) {
	a := admin(t)
	login := "s-" + uuid.NewString()[:8] + "@example.com"
	for _, contentType := range []string{"multipart/form-data; boundary=x", "text/plain"} {
		nul := `{"login_name":"` + login + `","password":"password","role":"county_reviewer","exam_area_code":"01\u000006"}`
		r := a.do("POST", "/admin/staff", strings.NewReader(nul), contentType)
		want(t, r, 422, "validation_failed")
		if _, ok := r.body["error"].(map[string]any)["fields"].(map[string]any)["exam_area_code"]; !ok {
			t.Errorf("%s: 422 without exam_area_code: %s", contentType, r.raw)
		}
		notUTF8 := `{"login_name":"` + login + `","password":"password","role":"county_reviewer","exam_area_code":"01` + "\xff" + `06"}`
		want(t, a.do("POST", "/admin/staff", strings.NewReader(notUTF8), contentType), 400, "malformed_body")
	}
	r := a.json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "password", "role": "county_reviewer", "exam_area_code": "0106"})
	want(t, r, 201, "")
	id := accountID(r)
	nul := strings.NewReader(`{"exam_area_code":"01\u000006"}`)
	want(t, a.do("PATCH", "/admin/staff/"+id, nul, "multipart/form-data; boundary=x"), 422, "validation_failed")
}

// A PATCH field set to null is refused where the schema does not allow it
// (it changed nothing and answered 200 before); exam_area_code may be null.
func TestPatchRefusesNulls(t *testing.T) {
	a := admin(t)
	login := "s-" + uuid.NewString()[:8] + "@example.com"
	r := a.json("POST", "/admin/staff", map[string]any{"login_name": login, "password": "password", "role": "county_reviewer", "exam_area_code": "0106"})
	want(t, r, 201, "")
	path := "/admin/staff/" + accountID(r)
	for _, field := range []string{"disabled", "role", "password"} {
		r := a.json("PATCH", path, map[string]any{field: nil})
		want(t, r, 422, "validation_failed")
		if _, ok := r.body["error"].(map[string]any)["fields"].(map[string]any)[field]; !ok {
			t.Errorf("%s: null: 422 without the field: %s", field, r.raw)
		}
	}
	want(t, a.json("PATCH", path, map[string]any{"exam_area_code": nil}), 200, "")
	want(t, a.json("PATCH", path, map[string]any{"disabled": true}), 200, "")
	want(t, a.json("PATCH", path, map[string]any{"disabled": "yes"}), 400, "malformed_body")
}
