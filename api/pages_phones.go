package api

// The pages of phones and SMS (pages.md, additions 1.2): the button
// 获取验证码 of the forms that take an SMS code (注册账号, 通过手机找回,
// 绑定手机), the password reset by an SMS code, 绑定手机, and 查询准考证.
// They take the JSON API's own paths: sendCode and findTicket (phones.go)
// and the accounts store's methods. Their messages are in Chinese and
// English (refusedBoth).
//
// 获取验证码 is a second submit button of the form (name "action", value
// codeAction): the form comes back with what was typed (codeStep), saying
// that the code was sent or how long to wait. A hidden first submit button
// (template "defaultsubmit") keeps the Enter key on the form's own action:
// Enter in 短信验证码 must not send a new code, which would void the one
// typed.

import (
	"errors"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/sms"
	"zikao/internal/throttle"
)

// publicPhonePages registers the pages of phones and SMS open to everyone.
func (s *Server) publicPhonePages(g *gin.RouterGroup) {
	g.GET(phoneResetPath, s.phoneResetPage)
	g.POST(phoneResetPath, s.phoneResetPost)
	g.GET(ticketLookupPath, s.ticketLookupPage)
	g.POST(ticketLookupPath, s.ticketLookupPost)
}

// applicantPhonePages registers 绑定手机 (applicants only).
func (s *Server) applicantPhonePages(g *gin.RouterGroup) {
	g.GET(bindPhonePath, s.bindPhonePage)
	g.POST(bindPhonePath, s.bindPhonePost)
}

const (
	phoneResetPath   = "/password/forgot/phone" // 通过手机找回
	ticketLookupPath = "/ticket-lookup"         // 查询准考证
	bindPhonePath    = "/me/phone"              // 绑定手机
)

// codeAction is the value of the button 获取验证码 (name "action").
const codeAction = "send_code"

// wantsCode reports whether a form was sent by its button 获取验证码.
func wantsCode(form url.Values) bool { return form.Get("action") == codeAction }

// Hints after 获取验证码, by purpose: the answer is the same whether a code
// went, so it says when none goes.
var codeSentHint = map[sms.Purpose][2]string{
	sms.SignUp:        {"已绑定其他账号的号码不会收到", "a number bound to another account gets none"},
	sms.BindPhone:     {"已绑定其他账号的号码不会收到", "a number bound to another account gets none"},
	sms.ResetPassword: {"未绑定考生账号的号码不会收到", "a number bound to no applicant's account gets none"},
}

// codeStep sends an SMS code for the form's 手机号码 (sendCode: the API's
// path) and fills p to show the form again: everything typed kept, the
// secrets too (the form itself is not sent yet), and that the code was
// sent, or the refusal (a bad phone beside 手机号码, or how long to wait).
func (s *Server) codeStep(c *gin.Context, form url.Values, purpose sms.Purpose, p page) page {
	p.Form, p.Secrets = form, url.Values{}
	for name, v := range form {
		if strings.Contains(name, "password") || name == "security_answer" {
			p.Secrets[name] = v
		}
	}
	if err := s.sendCode(c, form.Get("phone"), string(purpose)); err != nil {
		p = s.refusedBoth(c, err, p)
		if zh, en, ok := waitFor(err); ok {
			p.Error, p.ErrorEN = "获取验证码过于频繁，"+zh, "too many codes asked for: "+en
		}
		return p
	}
	hint := codeSentHint[purpose]
	p.Notice = "短信验证码已发送，10 分钟内有效。如未收到，请核对手机号码（" + hint[0] + "），60 秒后可重新获取。"
	p.NoticeEN = "An SMS code was sent; it is valid for 10 minutes. None came? Check the number (" + hint[1] +
		") and ask again after 60 seconds."
	return p
}

// waitFor says how long to wait (waitWords) when err is a limit's refusal.
func waitFor(err error) (zh, en string, ok bool) {
	var locked *throttle.LockedError
	if !errors.As(err, &locked) {
		return "", "", false
	}
	zh, en = waitWords(locked.RetryAfter)
	return zh, en, true
}

// refusedBoth is refused, with the English messages shown too.
func (s *Server) refusedBoth(c *gin.Context, err error, p page) page {
	p, prob := s.refusedWith(c, err, p)
	p.ErrorEN, p.FieldsEN = prob.MessageEN, prob.FieldsEN
	return p
}

// phoneRefused is refusedBoth for a form binding a phone: phone_taken is
// shown beside 手机号码 too.
func (s *Server) phoneRefused(c *gin.Context, err error, p page) page {
	p = s.refusedBoth(c, err, p)
	if errors.Is(err, accounts.ErrPhoneTaken) {
		if p.Fields == nil {
			p.Fields = map[string]string{}
		}
		if p.FieldsEN == nil {
			p.FieldsEN = map[string]string{}
		}
		p.Fields["phone"], p.FieldsEN["phone"] = errPhoneTaken.Message, errPhoneTaken.MessageEN
	}
	return p
}

// maskPhone shows a phone as 139****5678.
func maskPhone(phone string) string {
	if len(phone) != 11 {
		return phone
	}
	return phone[:3] + "****" + phone[7:]
}

// 通过手机找回: the password reset by an SMS code to the bound phone.

func (s *Server) phoneResetPage(c *gin.Context) {
	s.render(c, "forgot_phone", page{})
}

func (s *Server) phoneResetPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil && wantsCode(form) {
		s.render(c, "forgot_phone", s.codeStep(c, form, sms.ResetPassword, page{}))
		return
	}
	if err == nil {
		err = s.Accounts.ResetPasswordByPhone(c, form.Get("phone"), form.Get("sms_code"), form.Get("new_password"), c.ClientIP())
	}
	if err != nil {
		p := s.refusedBoth(c, err, page{Form: form})
		if errors.Is(err, accounts.ErrResetRejected) { // the same words whatever was wrong
			p.Error += "：请核对手机号码和短信验证码，必要时重新获取"
			p.ErrorEN += ": check the number and the SMS code, or ask for a new code"
		}
		s.render(c, "forgot_phone", p)
		return
	}
	seeOther(c, "/login?reset=1")
}

// 绑定手机: binds (or changes) the phone of the signed-in applicant.

func (s *Server) bindPhonePage(c *gin.Context) {
	p := page{}
	if c.Query("done") != "" {
		p.Notice = "手机号码已绑定，可用手机号码登录和找回密码"
		p.NoticeEN = "the phone number is bound: you may sign in and reset your password with it"
	}
	s.renderBindPhone(c, p)
}

// renderBindPhone shows 绑定手机 with p's messages and the phone bound now.
func (s *Server) renderBindPhone(c *gin.Context, p page) {
	bound := ""
	if a := account(c); a.Phone != nil {
		bound = maskPhone(*a.Phone)
	}
	p.Data = map[string]string{"Bound": bound}
	s.render(c, "bind_phone", p)
}

func (s *Server) bindPhonePost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil && wantsCode(form) {
		s.renderBindPhone(c, s.codeStep(c, form, sms.BindPhone, page{}))
		return
	}
	if err == nil {
		_, err = s.Accounts.BindPhone(c, account(c).ID, form.Get("phone"), form.Get("sms_code"))
	}
	if err != nil {
		s.renderBindPhone(c, s.phoneRefused(c, err, page{Form: form}))
		return
	}
	seeOther(c, bindPhonePath+"?done=1")
}

// 查询准考证: the ticket number of a completed registration goes by SMS;
// the page answers the same whether anything matched.

func (s *Server) ticketLookupPage(c *gin.Context) {
	p := page{}
	if c.Query("sent") != "" {
		p.Notice = "如果有匹配的已完成注册，准考证号已通过短信发送到绑定的手机号码（账号未绑定手机的，发送到注册时填写的手机号码）。"
		p.NoticeEN = "If a completed registration matches, its ticket number was sent by SMS to the phone bound to its account " +
			"(or else to the phone given in the registration)."
	}
	s.render(c, "ticket_lookup", p)
}

func (s *Server) ticketLookupPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		err = s.findTicket(c, form.Get("name"), form.Get("id_number"))
	}
	if err != nil {
		p := s.refusedBoth(c, err, page{Form: form})
		if zh, en, ok := waitFor(err); ok {
			p.Error, p.ErrorEN = "查询过于频繁，"+zh, "too many look-ups: "+en
		}
		s.render(c, "ticket_lookup", p)
		return
	}
	seeOther(c, ticketLookupPath+"?sent=1")
}
