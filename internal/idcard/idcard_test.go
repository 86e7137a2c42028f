package idcard

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in     string
		want   Number
		err    error
		birth  string
		gender string
	}{
		{in: "11010519491231002X", want: "11010519491231002X", birth: "1949-12-31", gender: "female"},
		{in: " 11010519491231002x ", want: "11010519491231002X", birth: "1949-12-31", gender: "female"},
		{in: "440524188001010014", want: "440524188001010014", birth: "1880-01-01", gender: "male"},
		{in: "420106199604202344", want: "420106199604202344", birth: "1996-04-20", gender: "female"},
		{in: "420106199503151234", want: "420106199503151234", birth: "1995-03-15", gender: "male"},
		{in: "420106199503151235", err: ErrChecksum},
		{in: "42010619950315123", err: ErrFormat},
		{in: "4201061995031512A4", err: ErrFormat},
		{in: "420106199502301234", err: ErrBirthDate},
		{in: "420106203001011234", err: ErrBirthDate},
	}
	for _, c := range cases {
		got, err := Parse(c.in, now)
		if !errors.Is(err, c.err) {
			t.Errorf("Parse(%q) error = %v, want %v", c.in, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %q, want %q", c.in, got, c.want)
		}
		if b := got.BirthDate().Format("2006-01-02"); b != c.birth {
			t.Errorf("%q birth date = %s, want %s", c.in, b, c.birth)
		}
		if g := got.Gender(); g != c.gender {
			t.Errorf("%q gender = %s, want %s", c.in, g, c.gender)
		}
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		" 张三 ":       "张三",
		"欧阳•娜娜":      "欧阳·娜娜",
		"阿依古丽・买买提":   "阿依古丽·买买提",
		"阿依古丽 · 买买提": "阿依古丽·买买提",
		"阿依古丽･买买提":   "阿依古丽·买买提", // half-width katakana middle dot
		"阿依古丽∙买买提":   "阿依古丽·买买提",
		"阿依古丽ㆍ买买提":   "阿依古丽·买买提",
		"𠀋𠀍":         "𠀋𠀍", // extension B characters
		"Zhang San":  "Zhang San",
	} {
		got := NormalizeName(in)
		if got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
	for name, valid := range map[string]bool{"张三": true, "欧阳·娜娜": true, "𠀋𠀍": true, "Zhang San": false, "张·": false, "·张": false, "": false} {
		if ValidName(name) != valid {
			t.Errorf("ValidName(%q) = %v, want %v", name, !valid, valid)
		}
	}
}
