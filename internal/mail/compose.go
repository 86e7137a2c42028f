// Package mail writes the e-mails to applicants into the outbox, in the
// transaction of the read-model change that causes them, and delivers them
// over SMTP from the worker (Sender).
//
// The messages address the applicant neutrally (考生您好) rather than by
// name: the login name is the only contact the account holder gave, the
// person registered may be someone the account holder registered for, and a
// message that carries no name or ID number discloses nothing when it goes
// astray. They carry only the registration's own facts: its exam area, its
// window, a reviewer's reason, its ticket number.
package mail

import (
	"bytes"
	"fmt"
	"text/template"
	"time"
	_ "time/tzdata" // Asia/Shanghai on machines without a zone database

	"zikao/internal/catalog"
)

// Kind is what a message tells the applicant.
type Kind string

// The messages. Annulled is written once registrations can be annulled
// (another issue): its template is ready.
const (
	Rejected      Kind = "rejected"       // a review rejected the diploma report: the reason, upload again
	PreRegistered Kind = "pre_registered" // where and when to go for the on-site check
	Completed     Kind = "completed"      // the admission ticket number
	Expired       Kind = "expired"        // the window ended before the on-site check
	Withdrawn     Kind = "withdrawn"      // withdrawn (by the applicant, an operator or the reconciler)
	Annulled      Kind = "annulled"       // annulled by a reviewer: the reason
	// IdentityRefused: the office's manual check of the online verification
	// refused it: the reason, and where and when to go on site.
	IdentityRefused Kind = "identity_refused"
	// AreaChanged: the office moved the registration to another exam area
	// (考区变更): the reason, the new area, its office and window.
	AreaChanged Kind = "area_changed"
	// WindowMoved: the exam area's confirmation window was moved: the new dates.
	WindowMoved Kind = "window_moved"
)

// Facts are what a message may say: the registration's own data, nothing
// of another person.
type Facts struct {
	RegistrationID string
	AreaName       string // exam area, e.g. 武昌区
	City           string
	OfficeAddress  string
	WindowStartsAt time.Time
	WindowEndsAt   time.Time
	WindowEnded    bool   // the step that sends the message came at or after the window's end
	Reason         string // a reviewer's reason (rejected, annulled)
	TicketNumber   string // completed
}

// Area names the exam area with its city (catalog.FullName).
func (f Facts) Area() string { return catalog.FullName(f.City, f.AreaName) }

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

func day(t time.Time) string { return t.In(shanghai).Format("2006年1月2日 15:04") }

const footer = `
注册编号：{{.RegistrationID}}
登录湖北省自学考试考生注册系统可查看注册进度。本邮件由系统自动发送，请勿回复。
`

var templates = map[Kind][2]string{
	Rejected: {"【湖北自考】学历认证报告审核未通过，请重新上传", `考生您好：

您提交的学历认证报告审核未通过。
原因：{{.Reason}}

请登录考生注册系统，按上述原因重新上传学历认证报告（《教育部学历证书电子注册备案表》或《中国高等教育学历认证报告》）。报告须经区考办和省考办审核通过后才能现场确认；现场确认截止于 {{day .WindowEndsAt}}，请尽早上传。
`},
	PreRegistered: {"【湖北自考】预注册成功，请按时到考区现场确认", `考生您好：

您已完成预注册。请于 {{day .WindowStartsAt}} 至 {{day .WindowEndsAt}} 携带本人居民身份证到以下地点现场确认（核验身份、采集照片）：

考区：{{.Area}}
地址：{{.OfficeAddress}}

逾期未现场确认，本次注册将失效。
`},
	Completed: {"【湖北自考】注册完成，准考证号已生成", `考生您好：

您已完成身份确认（现场确认或网上验证），注册完成。
准考证号：{{.TicketNumber}}

请妥善保管准考证号，报考和参加考试时都要使用。
`},
	Expired: {"【湖北自考】现场确认时间已过，本次注册已失效", `考生您好：

本次注册未在现场确认时间内（截至 {{day .WindowEndsAt}}）完成现场确认，已失效。请在以后的注册期重新注册。
`},
	Withdrawn: {"【湖北自考】本次注册已撤销", `考生您好：

您的本次注册已撤销。如需参加考试，可在注册期内重新注册。
如果您没有撤销注册，请尽快登录考生注册系统修改密码，并联系{{.Area}}自考办（{{.OfficeAddress}}）。
`},
	IdentityRefused: {"【湖北自考】人工核验未通过，请到考区现场确认", `考生您好：

考区办公室人工核验了您网上验证的材料，未予通过。
原因：{{.Reason}}
{{if .WindowEnded}}
现场确认时间已于 {{day .WindowEndsAt}} 结束，本次注册随之失效，请在以后的注册期重新注册。如有疑问，请联系{{.Area}}自考办（{{.OfficeAddress}}）。
{{else}}
请于 {{day .WindowStartsAt}} 至 {{day .WindowEndsAt}} 携带本人居民身份证到以下地点现场确认（核验身份、采集照片）：

考区：{{.Area}}
地址：{{.OfficeAddress}}

逾期未现场确认，本次注册将失效。
{{end}}`},
	AreaChanged: {"【湖北自考】您的考区已变更", `考生您好：

考试机构已将您本次注册的考区变更为：{{.Area}}
变更原因：{{.Reason}}

已完成的审核继续有效。现场确认请于 {{day .WindowStartsAt}} 至 {{day .WindowEndsAt}} 携带本人居民身份证到新考区办理（也可登录考生注册系统网上验证）：

考区：{{.Area}}
地址：{{.OfficeAddress}}

逾期未完成确认，本次注册将失效。
`},
	WindowMoved: {"【湖北自考】现场确认时间已调整", `考生您好：

您所在考区（{{.Area}}）的现场确认时间已调整为 {{day .WindowStartsAt}} 至 {{day .WindowEndsAt}}。

请在此期间携带本人居民身份证到以下地点现场确认（也可登录考生注册系统网上验证）：
地址：{{.OfficeAddress}}

尚待上传或审核学历认证报告的，须在此之前审核通过；逾期未完成确认，本次注册将失效。
`},
	Annulled: {"【湖北自考】本次注册已作废", `考生您好：

您的本次注册已由考试机构作废。
原因：{{.Reason}}

如有疑问，请联系{{.Area}}自考办（{{.OfficeAddress}}）。
`},
}

var parsed = parseTemplates()

func parseTemplates() map[Kind]*template.Template {
	out := make(map[Kind]*template.Template, len(templates))
	for kind, t := range templates {
		tpl := template.New(string(kind)).Funcs(template.FuncMap{"day": day}).Option("missingkey=error")
		template.Must(tpl.New("subject").Parse(t[0]))
		template.Must(tpl.New("body").Parse(t[1] + footer))
		out[kind] = tpl
	}
	return out
}

// Compose renders the subject and text of a message of kind.
func Compose(kind Kind, f Facts) (subject, body string, err error) {
	tpl, ok := parsed[kind]
	if !ok {
		return "", "", fmt.Errorf("no e-mail template for %q", kind)
	}
	var s, b bytes.Buffer
	if err := tpl.ExecuteTemplate(&s, "subject", f); err != nil {
		return "", "", fmt.Errorf("render subject of %s e-mail: %w", kind, err)
	}
	if err := tpl.ExecuteTemplate(&b, "body", f); err != nil {
		return "", "", fmt.Errorf("render %s e-mail: %w", kind, err)
	}
	return s.String(), b.String(), nil
}
