package api

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"zikao/internal/idcard"
)

var (
	phonePattern   = regexp.MustCompile(`^1[3-9]\d{9}$`)
	diplomaPattern = regexp.MustCompile(`^\d{17,18}$`)
	ticketPattern  = regexp.MustCompile(`^\d{12}$`)
	codePattern    = regexp.MustCompile(`^[0-9A-Z]{12}$`)
)

// fieldErrors collects per-field messages, each in Chinese and English.
type fieldErrors map[string]string

func (f fieldErrors) add(field, zh, en string) {
	if _, ok := f[field]; !ok {
		f[field] = zh + " / " + en
	}
}

func (f fieldErrors) required(field, value, zh, en string) bool {
	if strings.TrimSpace(value) == "" {
		f.add(field, "请填写"+zh, en+" is required")
		return false
	}
	return true
}

func (f fieldErrors) maxLen(field, value string, n int) {
	if utf8.RuneCountInString(value) > n {
		f.add(field, fmt.Sprintf("不能超过 %d 个字", n), fmt.Sprintf("at most %d characters", n))
	}
}

// name validates a name and returns it normalised (idcard.NormalizeName).
func (f fieldErrors) name(field, value string) string {
	value = idcard.NormalizeName(value)
	if f.required(field, value, "姓名", "name") {
		if !idcard.ValidName(value) {
			f.add(field, "姓名须为汉字（少数民族姓名可用间隔号·）", "name must be Chinese characters, with · between parts of a minority name")
		}
		f.maxLen(field, value, 50)
	}
	return value
}

// idNumber validates and normalises an ID card number.
func (f fieldErrors) idNumber(field, value string) idcard.Number {
	if !f.required(field, value, "身份证号", "ID number") {
		return ""
	}
	n, err := idcard.Parse(value, time.Now())
	switch {
	case errors.Is(err, idcard.ErrChecksum):
		f.add(field, "身份证号校验位不正确", "ID number check character is wrong")
	case errors.Is(err, idcard.ErrBirthDate):
		f.add(field, "身份证号中的出生日期无效", "ID number holds no valid birth date")
	case err != nil:
		f.add(field, "身份证号须为18位", "ID number must be 17 digits and a digit or X")
	}
	return n
}

func (f fieldErrors) phone(field, value string) {
	if f.required(field, value, "手机号码", "phone") && !phonePattern.MatchString(value) {
		f.add(field, "手机号码须为11位数字，以13至19开头", "phone must be an 11-digit mobile number starting with 13 to 19")
	}
}

func (f fieldErrors) ticket(field, value string) {
	if f.required(field, value, "准考证号", "ticket number") && !ticketPattern.MatchString(value) {
		f.add(field, "准考证号须为12位数字", "ticket number must be 12 digits")
	}
}

func (f fieldErrors) agreed(agree *bool) {
	if agree == nil || !*agree {
		f.add("agree_terms", "须同意注册协议", "the terms must be agreed to")
	}
}

// optional personal fields shared by both kinds of registration.
func (f fieldErrors) optionalPersonal(p personalIn) {
	f.maxLen("personal.ethnicity", p.Ethnicity, 20)
	f.maxLen("personal.address", p.Address, 200)
	f.maxLen("personal.education", p.Education, 50)
}
