// Package sms is zikao's SMS channel beside e-mail: the texts (templates
// registered with the provider, filled with parameters), the outbox written
// in the transaction of the step a message reports, the sender that
// delivers it through the provider's HTTP API, and a stand-in of that
// provider for development and tests.
//
// A text carries only its own facts (a code, a ticket number, an exam area
// and dates): never a name, an ID number or a reviewer's free text, which
// the e-mail and the pages give to the signed-in applicant. Every text
// begins with the signature 【湖北自考】 and fits two segments (134
// characters).
package sms

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Asia/Shanghai on machines without a zone database
	"unicode/utf8"
)

// Purpose is why a message is sent: the outbox's and the metrics' label.
type Purpose string

// The purposes: codes, the ticket look-up (查询准考证), and the notices of
// a registration's steps (the same kinds as the e-mails).
const (
	SignUp          Purpose = "sign_up"
	BindPhone       Purpose = "bind_phone"
	ResetPassword   Purpose = "reset_password"
	TicketLookup    Purpose = "ticket_lookup"
	Rejected        Purpose = "rejected"
	PreRegistered   Purpose = "pre_registered"
	Completed       Purpose = "completed"
	Expired         Purpose = "expired"
	Withdrawn       Purpose = "withdrawn"
	Annulled        Purpose = "annulled"
	IdentityRefused Purpose = "identity_refused"
	AreaChanged     Purpose = "area_changed"
	WindowMoved     Purpose = "window_moved"
)

// CodePurposes are the purposes of SMS codes, as api.md names them.
var CodePurposes = []Purpose{SignUp, BindPhone, ResetPassword}

// IsCode reports whether p is the purpose of an SMS code.
func (p Purpose) IsCode() bool { return slices.Contains(CodePurposes, p) }

// Template is a text registered with the provider: its code, and the text
// with ${name} placeholders that the provider fills in.
type Template struct {
	Code string
	Text string
}

// Templates by purpose. The provider renders them (the stand-in with this
// table); zikao sends the code and the parameters.
var Templates = map[Purpose]Template{
	SignUp:          {"ZK_CODE_SIGN_UP", "您正在注册湖北自考考生账号，验证码${code}，10分钟内有效。如非本人操作，请忽略本短信。"},
	BindPhone:       {"ZK_CODE_BIND_PHONE", "您正在绑定手机号码，验证码${code}，10分钟内有效。如非本人操作，请忽略本短信。"},
	ResetPassword:   {"ZK_CODE_RESET_PASSWORD", "您正在重置考生账号密码，验证码${code}，10分钟内有效，切勿告诉他人。如非本人操作，请忽略。"},
	TicketLookup:    {"ZK_TICKET_LOOKUP", "您查询的准考证号为${ticket}，请妥善保管，报考和考试时都要使用。"},
	Completed:       {"ZK_COMPLETED", "您已完成身份确认，注册完成，准考证号${ticket}，请妥善保管。"},
	PreRegistered:   {"ZK_PRE_REGISTERED", "您已完成预注册，请于${start}至${end}持身份证到${area}自考办现场确认，或登录考生注册系统网上验证，逾期注册失效。"},
	Rejected:        {"ZK_REJECTED", "您的学历认证报告审核未通过，请登录考生注册系统查看原因并重新上传，现场确认截止于${end}。"},
	Expired:         {"ZK_EXPIRED", "现场确认时间已过，您的本次注册已失效，请在以后的注册期重新注册。"},
	Withdrawn:       {"ZK_WITHDRAWN", "您的本次注册已撤销。如非本人操作，请尽快登录修改密码并联系${area}自考办。"},
	Annulled:        {"ZK_ANNULLED", "您的本次注册已由考试机构作废，原因请登录考生注册系统查看，如有疑问请联系${area}自考办。"},
	AreaChanged:     {"ZK_AREA_CHANGED", "您的考区已由考试机构变更为${area}，请于${start}至${end}持身份证到新考区自考办现场确认或网上验证，原因请登录考生注册系统查看。"},
	WindowMoved:     {"ZK_WINDOW_MOVED", "您所在考区的现场确认时间已调整为${start}至${end}，请按时到${area}自考办现场确认或登录考生注册系统网上验证。"},
	IdentityRefused: {"ZK_IDENTITY_REFUSED", "您网上验证的人工核验未通过，原因请登录考生注册系统查看，请在${end}前持身份证到${area}自考办现场确认。"},
}

// MaxLength is two SMS segments of UCS-2 text (67 characters each), the
// signature included.
const MaxLength = 2 * 67

// DefaultSignName is the signature registered with the provider.
const DefaultSignName = "湖北自考"

var placeholder = regexp.MustCompile(`\$\{([a-z]+)\}`)

// TemplateByCode finds a template by its code.
func TemplateByCode(code string) (Template, bool) {
	for _, t := range Templates {
		if t.Code == code {
			return t, true
		}
	}
	return Template{}, false
}

// Render fills a template's placeholders, refusing a missing or an extra
// parameter, and puts the signature in front, as the provider does.
func (t Template) Render(signName string, params map[string]string) (string, error) {
	used := map[string]bool{}
	var missing []string
	text := placeholder.ReplaceAllStringFunc(t.Text, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := params[name]
		if !ok {
			missing = append(missing, name)
		}
		used[name] = true
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("template %s: missing parameters %s", t.Code, strings.Join(missing, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if !used[k] {
			return "", fmt.Errorf("template %s: no parameter %s", t.Code, k)
		}
	}
	return "【" + signName + "】" + text, nil
}

// Length is a text's length in characters, as segments count them.
func Length(text string) int { return utf8.RuneCountInString(text) }

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// Day formats a time for a text, to the minute as the e-mail does:
// 2027年3月1日08:30.
func Day(t time.Time) string { return t.In(shanghai).Format("2006年1月2日15:04") }
