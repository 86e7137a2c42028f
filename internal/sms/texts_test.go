package sms_test

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"zikao/internal/mail"
	"zikao/internal/sms"
)

// mailKinds are every kind of e-mail (internal/mail/compose.go): each step
// that sends one sends an SMS of the same purpose.
var mailKinds = []mail.Kind{mail.Rejected, mail.PreRegistered, mail.Completed, mail.Expired, mail.Withdrawn, mail.Annulled,
	mail.IdentityRefused}

func TestEveryMailKindHasATemplate(t *testing.T) {
	for _, k := range mailKinds {
		tpl, ok := sms.Templates[sms.Purpose(k)]
		if !ok || tpl.Code == "" || tpl.Text == "" {
			t.Errorf("no SMS template for the e-mail kind %q", k)
		}
	}
	for _, p := range sms.CodePurposes {
		if _, ok := sms.Templates[p]; !ok || !p.IsCode() {
			t.Errorf("no SMS template for the code purpose %q", p)
		}
	}
	if _, ok := sms.Templates[sms.TicketLookup]; !ok || sms.TicketLookup.IsCode() {
		t.Error("no SMS template for the ticket look-up")
	}
	codes := map[string]bool{}
	for p, tpl := range sms.Templates {
		if codes[tpl.Code] {
			t.Errorf("template code %s used twice", tpl.Code)
		}
		codes[tpl.Code] = true
		if got, ok := sms.TemplateByCode(tpl.Code); !ok || got != tpl {
			t.Errorf("TemplateByCode(%s) does not find the template of %s", tpl.Code, p)
		}
	}
	if _, ok := sms.TemplateByCode("ZK_NO_SUCH_TEMPLATE"); ok {
		t.Error("TemplateByCode found an unknown code")
	}
}

// The longest realistic parameters: the longest exam areas (city and
// district as the notices name them; 恩施土家族苗族自治州 spelled out for
// margin), the longest dates, a 12-digit ticket and a 6-digit code.
var (
	longestAreas = []string{"武汉市东西湖区", "神农架林区", "恩施土家族苗族自治州"}
	longestDays  = []string{sms.Day(time.Date(2027, 12, 31, 15, 59, 0, 0, time.UTC)), sms.Day(time.Date(2027, 11, 30, 15, 30, 0, 0, time.UTC))}
	ticket       = "010627123456"
	code         = "987654"
)

// paramsFor fills every placeholder of tpl with realistic values.
func paramsFor(tpl sms.Template, area string) map[string]string {
	all := map[string]string{"code": code, "ticket": ticket, "area": area, "start": longestDays[1], "end": longestDays[0]}
	out := map[string]string{}
	for _, name := range tpl.Params() {
		out[name] = all[name]
	}
	return out
}

func TestDayIsInShanghaiToTheMinute(t *testing.T) {
	if got := sms.Day(time.Date(2027, 12, 31, 15, 59, 0, 0, time.UTC)); got != "2027年12月31日23:59" {
		t.Fatalf("Day = %q", got)
	}
	if got := sms.Day(time.Date(2027, 3, 1, 0, 30, 0, 0, time.UTC)); got != "2027年3月1日08:30" {
		t.Fatalf("Day = %q", got)
	}
}

// exactRuns lists the runs of digits of exactly n digits (not part of a
// longer run).
func exactRuns(text string, n int) []string {
	var out []string
	for _, run := range regexp.MustCompile(`[0-9]+`).FindAllString(text, -1) {
		if len(run) == n {
			out = append(out, run)
		}
	}
	return out
}

func TestEveryTextFitsAndStartsWithTheSignature(t *testing.T) {
	for _, p := range slices.Sorted(maps.Keys(sms.Templates)) {
		tpl := sms.Templates[p]
		for _, area := range longestAreas {
			text, err := tpl.Render(sms.DefaultSignName, paramsFor(tpl, area))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if !strings.HasPrefix(text, "【湖北自考】") {
				t.Errorf("%s: %q does not begin with 【湖北自考】", p, text)
			}
			if n := sms.Length(text); n > sms.MaxLength {
				t.Errorf("%s: %d characters, more than %d: %q", p, n, sms.MaxLength, text)
			}
			if strings.Contains(text, "${") {
				t.Errorf("%s: a placeholder left: %q", p, text)
			}
			if p.IsCode() {
				if runs := exactRuns(text, 6); !slices.Equal(runs, []string{code}) {
					t.Errorf("%s: runs of exactly 6 digits %q, want only the code: %q", p, runs, text)
				}
			}
			if p == sms.Completed || p == sms.TicketLookup {
				if runs := exactRuns(text, 12); !slices.Equal(runs, []string{ticket}) {
					t.Errorf("%s: runs of exactly 12 digits %q, want only the ticket: %q", p, runs, text)
				}
			}
		}
	}
	if sms.MaxLength != 134 {
		t.Errorf("MaxLength %d, want two segments of 67", sms.MaxLength)
	}
}

// A code's text holds the code as the only run of 6 digits even when the
// code begins with zeros; a ticket's text holds the ticket as the only run
// of 12.
func TestCodesWithLeadingZeros(t *testing.T) {
	for _, p := range sms.CodePurposes {
		text, err := sms.Templates[p].Render(sms.DefaultSignName, map[string]string{"code": "000123"})
		if err != nil {
			t.Fatal(err)
		}
		if runs := exactRuns(text, 6); !slices.Equal(runs, []string{"000123"}) {
			t.Errorf("%s: %q", p, runs)
		}
	}
}

// Only a text's own facts: no placeholder for a name, an ID number, a
// reason or anything of another person.
func TestNoTemplateCarriesPersonalData(t *testing.T) {
	allowed := map[string]bool{"code": true, "ticket": true, "area": true, "start": true, "end": true}
	for p, tpl := range sms.Templates {
		for _, name := range tpl.Params() {
			if !allowed[name] {
				t.Errorf("%s: placeholder ${%s} is not one of a text's own facts", p, name)
			}
		}
		for _, bad := range []string{"name", "id_number", "idnumber", "reason", "姓名", "身份证号"} {
			if strings.Contains(strings.ToLower(tpl.Text), "${"+bad) {
				t.Errorf("%s carries ${%s}", p, bad)
			}
		}
		if strings.Count(tpl.Text, "${") != len(tpl.Params()) {
			t.Errorf("%s: a placeholder the pattern does not see: %q", p, tpl.Text)
		}
		switch {
		case p.IsCode():
			if !slices.Equal(tpl.Params(), []string{"code"}) {
				t.Errorf("%s: parameters %q, want the code alone", p, tpl.Params())
			}
		case p == sms.Completed || p == sms.TicketLookup:
			if !slices.Equal(tpl.Params(), []string{"ticket"}) {
				t.Errorf("%s: parameters %q, want the ticket alone", p, tpl.Params())
			}
		case slices.Contains(tpl.Params(), "code") || slices.Contains(tpl.Params(), "ticket"):
			t.Errorf("%s carries a code or a ticket: %q", p, tpl.Params())
		}
	}
}

func TestRenderRefusesMissingOrExtraParameters(t *testing.T) {
	pre := sms.Templates[sms.PreRegistered]
	full := paramsFor(pre, "武汉市武昌区")
	text, err := pre.Render("湖北自考", full)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range full {
		if !strings.Contains(text, v) {
			t.Errorf("%q lacks %q", text, v)
		}
	}
	missing := maps.Clone(full)
	delete(missing, "area")
	if _, err := pre.Render("湖北自考", missing); err == nil || !strings.Contains(err.Error(), "area") {
		t.Errorf("a missing parameter: %v", err)
	}
	extra := maps.Clone(full)
	extra["name"] = "张三"
	if _, err := pre.Render("湖北自考", extra); err == nil || !strings.Contains(err.Error(), "name") || strings.Contains(err.Error(), "张三") {
		t.Errorf("an extra parameter: %v", err)
	}
	if _, err := pre.Render("湖北自考", nil); err == nil {
		t.Error("no parameters at all were accepted")
	}
	expired := sms.Templates[sms.Expired]
	if _, err := expired.Render("湖北自考", nil); err != nil {
		t.Errorf("a template without placeholders and no parameters: %v", err)
	}
	if _, err := expired.Render("湖北自考", map[string]string{"code": "123456"}); err == nil {
		t.Error("a parameter given to a template without placeholders was accepted")
	}
	// An empty value is a value (the provider sends it as given).
	if _, err := sms.Templates[sms.SignUp].Render("湖北自考", map[string]string{"code": ""}); err != nil {
		t.Errorf("an empty value: %v", err)
	}
}
