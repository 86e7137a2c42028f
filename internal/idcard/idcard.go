// Package idcard validates mainland China resident ID card numbers
// (居民身份证号, GB 11643-1999) and reads the birth date and gender in them.
package idcard

import (
	"errors"
	"regexp"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

var (
	weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	checks  = "10X98765432"

	// ErrFormat: not 17 digits followed by a digit or X.
	ErrFormat = errors.New("id number must be 17 digits followed by a digit or X")
	// ErrBirthDate: the 8 digits of the birth date are no real date, or a future one.
	ErrBirthDate = errors.New("id number holds no valid birth date")
	// ErrChecksum: the check character does not match.
	ErrChecksum = errors.New("id number check character does not match")
)

// Number is a valid, normalised (upper-case X) ID card number.
type Number string

// Parse validates s (surrounding spaces and a lower-case x are accepted) and
// returns it normalised.
func Parse(s string, now time.Time) (Number, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != 18 {
		return "", ErrFormat
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return "", ErrFormat
		}
		sum += int(c-'0') * weights[i]
	}
	last := s[17]
	if (last < '0' || last > '9') && last != 'X' {
		return "", ErrFormat
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1800 || birth.After(now) {
		return "", ErrBirthDate
	}
	if checks[sum%11] != last {
		return "", ErrChecksum
	}
	return Number(s), nil
}

// BirthDate is the date of birth held in the number.
func (n Number) BirthDate() time.Time {
	t, _ := time.Parse("20060102", string(n[6:14]))
	return t
}

// Gender is "male" for an odd sequence digit, "female" for an even one.
func (n Number) Gender() string {
	if (n[16]-'0')%2 == 1 {
		return "male"
	}
	return "female"
}

// String returns the number.
func (n Number) String() string { return string(n) }

var (
	namePattern = regexp.MustCompile(`^\p{Han}+(·\p{Han}+)*$`)
	// The dots people and keyboards put between the parts of a minority name.
	dots = regexp.MustCompile(`\s*[·・•‧．.●∙⋅⸱ㆍᆞ]\s*`)
)

// NormalizeName trims a name as on the ID card, folds full-width and other
// compatibility forms (NFKC), and writes every variant of the middle dot of
// minority names, with any spaces around it, as U+00B7 (·), so that names
// typed on different keyboards compare equal.
func NormalizeName(s string) string {
	return dots.ReplaceAllString(strings.TrimSpace(norm.NFKC.String(s)), "·")
}

// ValidName reports whether a normalised name is Chinese characters (any
// Unicode plane), parts of a minority name joined by a middle dot.
func ValidName(s string) bool { return namePattern.MatchString(s) }
