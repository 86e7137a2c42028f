package idcard

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var fuzzNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// FuzzParse: a number Parse accepts is the input trimmed and upper-cased,
// 17 digits and a check character that match, with a real birth date
// between 1800 and now; it parses again to itself. Anything else is
// refused with one of the package's errors and no number.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"11010519491231002X", " 11010519491231002x ", "420106199604202344", "440524188001010014",
		"420106199503151235", "42010619950315123", "4201061995031512A4", "420106199502301234", "420106203001011234",
		"", "\x00", strings.Repeat("\x00", 18), "11010519491231002\x00", "\xff\xfe0519491231002X", "１１０１０５１９４９１２３１００２Ｘ",
		"+1010519491231002X", "-1010519491231002X", "110105194912310 2X", "110105179912310020", "11010519491231002X\u200b",
		"\u00a011010519491231002X\u3000", "110105000000000000", "11010519490229002X"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s, fuzzNow)
		if err != nil {
			if n != "" || (err != ErrFormat && err != ErrBirthDate && err != ErrChecksum) {
				t.Fatalf("Parse(%q) = %q, %v", s, n, err)
			}
			return
		}
		if string(n) != strings.ToUpper(strings.TrimSpace(s)) {
			t.Fatalf("Parse(%q) = %q: not the input trimmed and upper-cased", s, n)
		}
		checkNumber(t, n)
		if again, err := Parse(string(n), fuzzNow); again != n || err != nil {
			t.Fatalf("Parse(%q) = %q, %v; want itself", n, again, err)
		}
	})
}

func checkNumber(t *testing.T, n Number) {
	t.Helper()
	if len(n) != 18 || strings.IndexFunc(string(n[:17]), func(r rune) bool { return r < '0' || r > '9' }) >= 0 ||
		!strings.ContainsRune("0123456789X", rune(n[17])) {
		t.Fatalf("%q: not 17 digits and a digit or X", n)
	}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(n[i]-'0') * weights[i]
	}
	if checks[sum%11] != n[17] {
		t.Fatalf("%q: check character does not match", n)
	}
	birth := n.BirthDate()
	if birth.IsZero() || birth.Year() < 1800 || birth.After(fuzzNow) || birth.Format("20060102") != string(n[6:14]) {
		t.Fatalf("%q: birth date %v", n, birth)
	}
	if g := n.Gender(); g != "male" && g != "female" {
		t.Fatalf("%q: gender %q", n, g)
	}
}

// FuzzNormalizeName: NormalizeName is idempotent and leaves no spaces
// around the name (invalid UTF-8 it passes on: ValidName refuses it); a
// normalised name ValidName accepts is Chinese characters, parts joined by
// single middle dots.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"张三", " 张三 ", "欧阳•娜娜", "阿依古丽 · 买买提", "阿依古丽・买买提", "阿依古丽．买买提", "张..三",
		"·张", "张·", "张··三", "Ｚｈａｎｇ", "豈", "𠀀𪚥", "张\x00三", "张\xff三", "\u3000张三\u3000", "张\u2028·\u2028三",
		"张\u0085", "张\u200b三", "张\u0301·三", "ﾟ", "ㆍ", "ᆞ", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeName(s)
		if again := NormalizeName(n); again != n {
			t.Fatalf("NormalizeName(%q) = %q, but NormalizeName(%q) = %q", s, n, n, again)
		}
		if n != strings.TrimSpace(n) {
			t.Fatalf("NormalizeName(%q) = %q, with spaces around", s, n)
		}
		if ValidName(n) {
			checkName(t, n)
		}
	})
}

// FuzzValidName: what ValidName accepts is Chinese characters, parts
// joined by single middle dots, with no control or other character.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"张三", "阿依古丽·买买提", "张·", "·张", "张··三", "张 三", "张\x00", "张\xff", "豈", "𠀀", "〇", "々"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) {
			checkName(t, s)
		}
	})
}

func checkName(t *testing.T, n string) {
	t.Helper()
	if !utf8.ValidString(n) || n == "" || strings.HasPrefix(n, "·") || strings.HasSuffix(n, "·") || strings.Contains(n, "··") {
		t.Fatalf("valid name %q", n)
	}
	for _, r := range n {
		if r != '·' && !unicode.Is(unicode.Han, r) {
			t.Fatalf("valid name %q holds %U", n, r)
		}
	}
}
