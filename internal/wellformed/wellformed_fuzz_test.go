package wellformed_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"zikao/internal/registering"
	"zikao/internal/wellformed"
)

// The request bodies the API decodes with encoding/json (api's bindJSON):
// the registration service's types, and the fields of the bodies that
// api/accounts.go and api/registrations.go declare in their handlers.
type (
	accountBody struct { // sign-up, login, password reset, password change
		LoginName          string `json:"login_name"`
		Password           string `json:"password"`
		SecurityQuestionID int    `json:"security_question_id"`
		SecurityAnswer     string `json:"security_answer"`
		NewPassword        string `json:"new_password"`
		OldPassword        string `json:"old_password"`
	}
	lookupBody struct { // enrolment look-up
		Name         string `json:"name"`
		IDNumber     string `json:"id_number"`
		TicketNumber string `json:"ticket_number"`
	}
)

func requestTypes() []any {
	return []any{&registering.Submission{}, &registering.Decision{}, &accountBody{}, &lookupBody{}}
}

// hostileBodies seed the JSON fuzz targets.
var hostileBodies = []string{
	`{"kind":"new","agree_terms":true,"personal":{"name":"张三","id_number":"11010519491231002X","gender":"female",` +
		`"birth_date":"1949-12-31","phone":"13800000000"},"application":{"major_type":"social","level":"zhuanke",` +
		`"major_code":"590201","exam_area_code":"0106"}}`,
	`{"approved":false,"reason":"报告编号与证书编号不一致\n请重新上传"}`,
	`{"login_name":"a@example.com","password":"secret1","security_question_id":1,"security_answer":"王小花"}`,
	`{"login_name":"a\u0000b@example.com","password":"secret1"}`,
	"{\"login_name\":\"a\x00b\"}",
	"{\"reason\":\"\xff\xfe\"}",
	"{\"reason\":\"\xed\xa0\x80\"}",
	`{"reason":"\ud800"}`,
	`{"reason":"\udc00\ud800"}`,
	`{"reason":"\ud83d\ude00"}`,
	`{"reason":"\u001b[31mred"}`,
	`{"reason":"a\u007fb\u0085c"}`,
	`{"reason":"\ufffd"}`,
	`{"security_question_id":2147483648}`,
	`{"security_question_id":-2147483649}`,
	`{"security_question_id":9223372036854775808}`,
	`{"security_question_id":1e400}`,
	`{"security_question_id":1e3}`,
	`{"security_question_id":1.5}`,
	`{"security_question_id":-0}`,
	`{"approved":"true"}`,
	`{"approved":1}`,
	`{"personal":"x"}`,
	`{"personal":{"name":{"a":"b"}}}`,
	`[{"reason":"\u0000"}]`,
	`"\u0000"`,
	`null`,
	``,
	`{`,
	`{"a":1}{"a":2}`,
	`{"a":1} x`,
	"\xef\xbb\xbf{}",
	strings.Repeat("[", 40) + strings.Repeat("]", 40),
	strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40),
	`{"a\u0000":1}`,
	`{"kind":"new","kind":"a\u0000"}`,
}

// FuzzJSON: whatever the body, JSON does not panic; a body it passes is one
// well-formed UTF-8 JSON value; and whatever the API then decodes from a
// body without faults holds only text and int32 numbers.
func FuzzJSON(f *testing.F) {
	for _, b := range hostileBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		faults, err := wellformed.JSON(body)
		if err != nil {
			if faults != nil {
				t.Fatalf("faults %v beside error %v", faults, err)
			}
			return
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("passed %q, which is no UTF-8 JSON value", body)
		}
		if len(faults) > 0 {
			return
		}
		for _, v := range requestTypes() {
			if json.NewDecoder(bytes.NewReader(body)).Decode(v) == nil {
				checkDecoded(t, reflect.ValueOf(v), reflect.TypeOf(v).Elem().Name())
			}
		}
	})
}

// checkDecoded fails when a decoded value holds a string that is not text
// or an integer beyond int32.
func checkDecoded(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkDecoded(t, v.Elem(), path)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			checkDecoded(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.String:
		if s := v.String(); !wellformed.Text(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("%s decoded as %q", path, s)
		}
	case reflect.Int, reflect.Int64:
		if n := v.Int(); n < math.MinInt32 || n > math.MaxInt32 {
			t.Fatalf("%s decoded as %d", path, n)
		}
	}
}

// FuzzJSONOfText: a request made of text and int32 numbers has no faults
// (nothing a person can type is refused), and one with a string that is not
// text has that string's fault.
func FuzzJSONOfText(f *testing.F) {
	f.Add("张三", "11010519491231002X", "报告不清晰\r\n请重传\t谢谢", int64(1))
	f.Add("a\x00b", "\xff", "\u001b[31m", int64(2147483648))
	f.Add("阿依古丽·买买提", "\ufffd", "\u0085", int64(-2147483649))
	f.Add("𠀀𪚥", "x\u2028y", "\u202e", int64(math.MinInt32))
	f.Fuzz(func(t *testing.T, name, id, reason string, question int64) {
		body, err := json.Marshal(map[string]any{"personal": map[string]any{"name": name, "id_number": id},
			"reason": reason, "security_question_id": question})
		if err != nil {
			t.Fatal(err)
		}
		faults, err := wellformed.JSON(body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		want := map[string]wellformed.Fault{}
		for path, s := range map[string]string{"personal.name": name, "personal.id_number": id, "reason": reason} {
			if !wellformed.Text(s) {
				want[path] = wellformed.NotText
			}
		}
		if question < math.MinInt32 || question > math.MaxInt32 {
			want["security_question_id"] = wellformed.NotInt32
		}
		if !reflect.DeepEqual(faults, want) {
			t.Fatalf("%s: faults %v, want %v", body, faults, want)
		}
	})
}

// FuzzText: Text holds exactly for valid UTF-8 without U+FFFD and without
// control characters other than tab, line feed and carriage return.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "张三", "a\x00b", "\xff", "\xed\xa0\x80", "\xc0\xaf", "\t\r\n", "\x1b", "\x7f",
		"\u0085", "\ufffd", "\u2028", "\u202e", "𠀀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := utf8.ValidString(s)
		for _, r := range s {
			if r == utf8.RuneError || unicode.IsControl(r) && !strings.ContainsRune("\t\n\r", r) {
				want = false
			}
		}
		if got := wellformed.Text(s); got != want {
			t.Fatalf("Text(%q) = %v, want %v", s, got, want)
		}
	})
}

// Unit checks of what the fuzz targets do not pin down.
func TestJSONErrors(t *testing.T) {
	for body, want := range map[string]error{
		"{\"a\":\"\xff\"}": wellformed.ErrNotUTF8,
		`{"a\u0000":1}`:    wellformed.ErrBadKey,
		`{"a":1} {}`:       wellformed.ErrTrailing,
		strings.Repeat("[", 33) + "1" + strings.Repeat("]", 33): wellformed.ErrTooDeep,
	} {
		if _, err := wellformed.JSON([]byte(body)); !errors.Is(err, want) {
			t.Errorf("%.40q: %v, want %v", body, err, want)
		}
	}
	faults, err := wellformed.JSON([]byte(`{"list":[1,"\u0000",{"n":1.5}],"ok":"张三"}`))
	want := map[string]wellformed.Fault{"list[1]": wellformed.NotText, "list[2].n": wellformed.NotInt32}
	if err != nil || !reflect.DeepEqual(faults, want) {
		t.Errorf("faults %v, %v; want %v", faults, err, want)
	}
	if _, err := wellformed.JSON([]byte(strings.Repeat("[", 32) + strings.Repeat("]", 32))); err != nil {
		t.Errorf("32 deep: %v", err)
	}
}
