package registering_test

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"zikao/internal/idcard"
	"zikao/internal/registering"
)

// The validators' fuzz targets need nothing but the validators (no
// database): what each accepts must be what it promises.

// hostileStrings seed every target.
var hostileStrings = []string{
	"", " ", "张三", "欧阳•娜娜", "阿依古丽 · 买买提", "11010519491231002X", " 11010519491231002x ", "420106199604202344",
	"13800000000", "010620100001", "a\x00b", "\x00", "\xff\xfe", "\xed\xa0\x80", "\xc0\xaf", "\ufffd", "\x1b[31m", "a\x7fb",
	"a\u0085b", "\r\n\t", "\u202e", "\u3000", "１３８００００００００", "０１０６２０１００００１", "1380000000\n",
	"13800000000\x00", "010620100001\n", "豈", "𠀀𪚥", strings.Repeat("字", 51), strings.Repeat("a", 1000),
}

func seed(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
}

// accepted runs a validator on a fresh Fields and reports whether it
// accepted the value; a refusal must name the field, in both languages.
func accepted(t *testing.T, validate func(registering.Fields)) bool {
	t.Helper()
	f := registering.Fields{}
	validate(f)
	if len(f) == 0 {
		return true
	}
	zh, en := f.Split()
	if len(f) != 1 || zh["field"] == "" || en["field"] == "" || f.Err() == nil {
		t.Fatalf("refusal %v", f)
	}
	return false
}

func FuzzName(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, s string) {
		var name string
		if !accepted(t, func(f registering.Fields) { name = f.Name("field", s) }) {
			return
		}
		if !idcard.ValidName(name) || idcard.NormalizeName(name) != name || utf8.RuneCountInString(name) > 50 {
			t.Fatalf("Name(%q) accepted %q", s, name)
		}
		if again := (registering.Fields{}).Name("field", name); again != name {
			t.Fatalf("Name(%q) = %q, but Name(%q) = %q", s, name, name, again)
		}
	})
}

func FuzzIDNumber(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, s string) {
		var n idcard.Number
		if !accepted(t, func(f registering.Fields) { n = f.IDNumber("field", s) }) {
			if n != "" {
				t.Fatalf("IDNumber(%q) refused, yet returned %q", s, n)
			}
			return
		}
		again, err := idcard.Parse(n.String(), time.Now())
		if err != nil || again != n || n.String() != strings.ToUpper(strings.TrimSpace(s)) {
			t.Fatalf("IDNumber(%q) accepted %q, which parses as %q, %v", s, n, again, err)
		}
	})
}

func FuzzPhone(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, s string) {
		want := digits(s, 11, "1") && s[1] >= '3'
		if ok := accepted(t, func(f registering.Fields) { f.Phone("field", s) }); ok != want {
			t.Fatalf("Phone(%q) accepted: %v", s, ok)
		}
	})
}

func FuzzTicket(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, s string) {
		if ok := accepted(t, func(f registering.Fields) { f.Ticket("field", s) }); ok != digits(s, 12, "") {
			t.Fatalf("Ticket(%q) accepted: %v", s, ok)
		}
	})
}

// digits reports whether s is n ASCII digits starting with prefix.
func digits(s string, n int, prefix string) bool {
	return len(s) == n && strings.HasPrefix(s, prefix) && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

func FuzzText(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, s string) {
		ok := accepted(t, func(f registering.Fields) { f.Text("field", s) })
		want := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
			return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
		})
		if ok != want || ok && strings.ContainsRune(s, 0) {
			t.Fatalf("Text(%q) accepted: %v", s, ok)
		}
	})
}

func FuzzMaxLen(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, 10)
	}
	f.Add("字字字", 3)
	f.Add("字字字", 2)
	f.Add("", -1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if ok := accepted(t, func(f registering.Fields) { f.MaxLen("field", s, n) }); ok != (utf8.RuneCountInString(s) <= n) {
			t.Fatalf("MaxLen(%q, %d) accepted: %v", s, n, ok)
		}
	})
}
