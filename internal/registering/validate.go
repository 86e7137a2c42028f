package registering

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"zikao/internal/idcard"
	"zikao/internal/sms"
)

var (
	diplomaPattern = regexp.MustCompile(`^\d{17,18}$`)
	ticketPattern  = regexp.MustCompile(`^\d{12}$`)
	codePattern    = regexp.MustCompile(`^[0-9A-Z]{12}$`)
)

// Fields collects what is wrong with the input, per field, each message
// written "中文 / English" (Split gives the two apart).
type Fields map[string]string

// Split returns the messages in Chinese and in English.
func (f Fields) Split() (zh, en map[string]string) {
	zh, en = make(map[string]string, len(f)), make(map[string]string, len(f))
	for field, msg := range f {
		z, e, ok := strings.Cut(msg, " / ")
		if !ok {
			e = z
		}
		zh[field], en[field] = z, e
	}
	return zh, en
}

// Err returns the fields as an *Invalid error, or nil when there are none.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Invalid{Fields: f}
}

func (f Fields) Add(field, zh, en string) {
	if _, ok := f[field]; !ok {
		f[field] = zh + " / " + en
	}
}

func (f Fields) Required(field, value, zh, en string) bool {
	if strings.TrimSpace(value) == "" {
		f.Add(field, "请填写"+zh, en+" is required")
		return false
	}
	return true
}

func (f Fields) MaxLen(field, value string, n int) {
	if utf8.RuneCountInString(value) > n {
		f.Add(field, fmt.Sprintf("不能超过 %d 个字", n), fmt.Sprintf("at most %d characters", n))
	}
}

// Text refuses text that is not valid UTF-8 or holds control characters
// (line breaks and tabs aside).
func (f Fields) Text(field, value string) {
	if !utf8.ValidString(value) || strings.ContainsFunc(value, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
	}) {
		f.Add(field, "含有无效字符", "holds invalid characters")
	}
}

// Name validates a name and returns it normalised (idcard.NormalizeName).
func (f Fields) Name(field, value string) string {
	value = idcard.NormalizeName(value)
	if f.Required(field, value, "姓名", "name") {
		if !idcard.ValidName(value) {
			f.Add(field, "姓名须为汉字（少数民族姓名可用间隔号·）", "name must be Chinese characters, with · between parts of a minority name")
		}
		f.MaxLen(field, value, 50)
	}
	return value
}

// IDNumber validates and normalises an ID card number.
func (f Fields) IDNumber(field, value string) idcard.Number {
	if !f.Required(field, value, "身份证号", "ID number") {
		return ""
	}
	n, err := idcard.Parse(value, time.Now())
	switch {
	case errors.Is(err, idcard.ErrChecksum):
		f.Add(field, "身份证号校验位不正确", "ID number check character is wrong")
	case errors.Is(err, idcard.ErrBirthDate):
		f.Add(field, "身份证号中的出生日期无效", "ID number holds no valid birth date")
	case err != nil:
		f.Add(field, "身份证号须为18位", "ID number must be 17 digits and a digit or X")
	}
	return n
}

func (f Fields) Phone(field, value string) {
	if f.Required(field, value, "手机号码", "phone") && !sms.ValidPhone(value) {
		f.Add(field, "手机号码须为11位数字，以13至19开头", "phone must be an 11-digit mobile number starting with 13 to 19")
	}
}

func (f Fields) Ticket(field, value string) {
	if f.Required(field, value, "准考证号", "ticket number") && !ticketPattern.MatchString(value) {
		f.Add(field, "准考证号须为12位数字", "ticket number must be 12 digits")
	}
}

func (f Fields) Agreed(agree *bool) {
	if agree == nil || !*agree {
		f.Add("agree_terms", "须同意注册协议", "the terms must be agreed to")
	}
}

// OptionalPersonal checks the optional personal fields shared by both kinds of registration.
func (f Fields) OptionalPersonal(p Personal) {
	f.MaxLen("personal.ethnicity", p.Ethnicity, 20)
	f.MaxLen("personal.address", p.Address, 200)
	f.MaxLen("personal.education", p.Education, 50)
	f.Text("personal.ethnicity", p.Ethnicity)
	f.Text("personal.address", p.Address)
	f.Text("personal.education", p.Education)
}
