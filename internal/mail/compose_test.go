package mail

import (
	"strings"
	"testing"
	"time"
)

// A refused manual check sends the applicant on site within the window; once
// the window has ended it says so instead of naming dates gone by.
func TestIdentityRefusedSaysWhereOrThatItEnded(t *testing.T) {
	f := Facts{RegistrationID: "r-1", AreaName: "武昌区", City: "武汉市", OfficeAddress: "武昌区自考办",
		WindowStartsAt: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), WindowEndsAt: time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC),
		Reason: "视频中的人与证件照不符"}
	subject, body, err := Compose(IdentityRefused, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"【湖北自考】", "人工核验未通过", f.Reason, "携带本人居民身份证", "武昌区自考办", "2027年3月31日"} {
		if !strings.Contains(subject+body, want) {
			t.Errorf("missing %q in %s\n%s", want, subject, body)
		}
	}
	f.WindowEnded = true
	_, body, err = Compose(IdentityRefused, f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "现场确认时间已于") || strings.Contains(body, "携带本人居民身份证") {
		t.Errorf("after the window's end:\n%s", body)
	}
}

// An exam area that is a city of its own is named once: 黄石市, not 黄石市黄石市.
func TestCityAreaNamedOnce(t *testing.T) {
	for _, c := range []struct{ name, city, want string }{{"黄石市", "黄石市", "考区：黄石市\n"}, {"武昌区", "武汉市", "考区：武汉市武昌区\n"}} {
		_, body, err := Compose(PreRegistered, Facts{RegistrationID: "r-1", AreaName: c.name, City: c.city, OfficeAddress: "自考办",
			WindowStartsAt: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), WindowEndsAt: time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, c.want) {
			t.Errorf("%s%s: want %q in\n%s", c.city, c.name, c.want, body)
		}
	}
}
