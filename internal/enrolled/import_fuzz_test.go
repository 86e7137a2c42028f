package enrolled

import (
	"errors"
	"strings"
	"testing"
	"time"

	"zikao/internal/idcard"
	"zikao/internal/wellformed"
)

var fuzzReference = reference{
	majors: map[string]string{"120402": "zhuanshengben", "590201": "zhuanke", "A020212": "zhuanke"},
	areas:  map[string]bool{"0106": true, "0200": true},
}

const fuzzHeader = "name,id_number,ticket_number,major_code,major_name,level,exam_area_code,source\n"

// FuzzParseFile: whatever the file, parsing it does not panic and either
// refuses it with an *ImportError that names lines of the file, or returns
// rows that are every one valid — text only, a valid normalised name, a
// valid upper-case ID number, a 12-digit ticket number no other row has, a
// known major of its level, a known exam area, a known source.
func FuzzParseFile(f *testing.F) {
	for _, body := range []string{
		"王芳,420106199604202344,010620100001,120402,行政管理,zhuanshengben,0106,social\n",
		"阿依古丽 • 买买提,11010519491231002x,020019100003,A020212,企业财务管理,zhuanke,0200,social\n",
		"王芳,420106199604202344,010620100001,120402,行政\x00管理,zhuanshengben,0106,social\n",
		"王芳,420106199604202344,010620100001,120402,行政\xff管理,zhuanshengben,0106,social\n",
		"王芳,420106199604202344,010620100001,120402,\"行政\n管理\",zhuanshengben,0106,social\n",
		"王芳,420106199604202344,010620100001,120402,\x1b[31m,zhuanshengben,0106,social\n",
		"王芳,420106199604202344,010620100001,120402,行政管理,zhuanshengben,0106,social\n" +
			"王芳,420106199604202344,010620100001,120402,行政管理,zhuanshengben,0106,social\n",
		"王芳,420106199604202344\n",
		"\"王芳,420106199604202344\n",
		"王\"芳,420106199604202344,010620100001,120402,行政管理,zhuanshengben,0106,social\n",
		",,,,,,,\n",
		"\n\n\n",
		"",
	} {
		f.Add(fuzzHeader + body)
	}
	f.Add("\ufeff" + fuzzHeader)
	f.Add("name,id_number\n")
	f.Add("\x00")
	f.Fuzz(func(t *testing.T, file string) {
		rows, err := parseFile(strings.NewReader(file), fuzzReference, fuzzNow)
		if err != nil {
			var ie *ImportError
			if !errors.As(err, &ie) || len(ie.Rows) == 0 || rows != nil {
				t.Fatalf("refused with %v (%T) and %d rows", err, err, len(rows))
			}
			for _, r := range ie.Rows {
				if r.Line < 1 || r.Line > strings.Count(file, "\n")+1 {
					t.Fatalf("bad line %d of a file of %d lines", r.Line, strings.Count(file, "\n")+1)
				}
			}
			return
		}
		tickets := map[string]bool{}
		for _, r := range rows {
			checkRecord(t, r.Record)
			if tickets[r.TicketNumber] {
				t.Fatalf("ticket number %s twice", r.TicketNumber)
			}
			tickets[r.TicketNumber] = true
		}
	})
}

var fuzzNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func checkRecord(t *testing.T, r Record) {
	t.Helper()
	for _, s := range []string{r.Name, r.IDNumber, r.TicketNumber, r.MajorCode, r.MajorName, r.Level, r.ExamAreaCode, r.Source} {
		if !wellformed.Text(s) || s != strings.TrimSpace(s) || s == "" {
			t.Fatalf("record %+v holds %q", r, s)
		}
	}
	if !idcard.ValidName(r.Name) || idcard.NormalizeName(r.Name) != r.Name {
		t.Fatalf("record %+v: name", r)
	}
	if n, err := idcard.Parse(r.IDNumber, fuzzNow); err != nil || string(n) != r.IDNumber {
		t.Fatalf("record %+v: ID number", r)
	}
	if !ticketPattern.MatchString(r.TicketNumber) || fuzzReference.majors[r.MajorCode] != r.Level ||
		!fuzzReference.areas[r.ExamAreaCode] || (r.Source != "social" && r.Source != "system") {
		t.Fatalf("record %+v", r)
	}
}
