package api

import (
	"errors"
	"net/url"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/registering"
	"zikao/internal/sms"
)

// The pages of everyone: home, sign in, sign up, passwords, sign out.

// homeOf is where an account lands after signing in.
func homeOf(role string) string {
	switch role {
	case accounts.RoleApplicant:
		return "/me"
	case accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer:
		return "/reviews"
	case accounts.RoleOnsiteOperator:
		return "/onsite"
	case accounts.RoleAdmin:
		return "/admin"
	}
	return "/"
}

func (s *Server) homePage(c *gin.Context) {
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return
	}
	s.render(c, "home", page{Data: map[string]any{"Year": s.Year, "Sitting": s.Sitting, "Areas": areas}})
}

func (s *Server) loginPage(c *gin.Context) {
	if a, ok := c.Get(accountKey); ok {
		seeOther(c, homeOf(a.(accounts.Account).Role))
		return
	}
	p := page{Form: url.Values{"next": {localPath(c.Query("next"))}}}
	if c.Query("reset") != "" {
		p.Notice, p.NoticeEN = "密码已重置，请用新密码登录", "the password was reset: sign in with the new one"
	}
	s.render(c, "login", p)
}

func (s *Server) loginPost(c *gin.Context) {
	form, err := readForm(c)
	var role string
	if err == nil {
		role, err = s.signIn(c, form.Get("login_name"), form.Get("password"))
	}
	if err != nil {
		s.render(c, "login", s.refused(c, err, page{Form: form}))
		return
	}
	to := localPath(form.Get("next"))
	if to == "" {
		to = homeOf(role)
	}
	seeOther(c, to)
}

func (s *Server) logoutPost(c *gin.Context) {
	if err := s.Accounts.Logout(c, c.GetString(tokenKey)); err != nil {
		failErr(c, err)
		return
	}
	clearSessionCookie(c)
	seeOther(c, "/login")
}

func (s *Server) questions(c *gin.Context) ([]catalog.SecurityQuestion, bool) {
	qs, err := s.Catalog.SecurityQuestions(c)
	if err != nil {
		failErr(c, err)
		return nil, false
	}
	return qs, true
}

func (s *Server) signUpPage(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	s.render(c, "signup", page{Data: qs})
}

func (s *Server) signUpPost(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	if err == nil && wantsCode(form) { // 获取验证码: the form comes back, the code sent
		s.render(c, "signup", s.codeStep(c, form, sms.SignUp, page{Data: qs}))
		return
	}
	if err == nil && form.Get("password") != form.Get("password_confirm") {
		err = registering.Fields{"password_confirm": "两次输入的密码不一致 / the passwords differ"}.Err()
	}
	if err == nil {
		_, err = s.Accounts.Create(c, accounts.NewAccount{LoginName: form.Get("login_name"), Password: form.Get("password"),
			QuestionID: atoi(form.Get("security_question_id")), Answer: form.Get("security_answer"),
			Phone: form.Get("phone"), SMSCode: form.Get("sms_code")})
	}
	if err == nil {
		_, err = s.signIn(c, form.Get("login_name"), form.Get("password"))
	}
	if err != nil {
		s.render(c, "signup", s.phoneRefused(c, err, page{Form: form, Data: qs}))
		return
	}
	seeOther(c, "/me")
}

func (s *Server) forgotPage(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	s.render(c, "forgot", page{Data: qs})
}

func (s *Server) forgotPost(c *gin.Context) {
	qs, ok := s.questions(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	if err == nil {
		err = s.Accounts.ResetPassword(c, form.Get("login_name"), atoi(form.Get("security_question_id")),
			form.Get("security_answer"), form.Get("new_password"), c.ClientIP())
	}
	if err != nil {
		s.render(c, "forgot", s.refused(c, err, page{Form: form, Data: qs}))
		return
	}
	seeOther(c, "/login?reset=1")
}

func (s *Server) passwordPage(c *gin.Context) {
	p := page{}
	if c.Query("done") != "" {
		p.Notice = "密码已修改；其他设备上的登录已退出"
	}
	s.render(c, "password", p)
}

func (s *Server) passwordPost(c *gin.Context) {
	form, err := readForm(c)
	if err == nil {
		err = s.Accounts.ChangePassword(c, account(c).ID, c.GetString(tokenKey), form.Get("old_password"),
			form.Get("new_password"), c.ClientIP())
	}
	if errors.Is(err, accounts.ErrInvalidCredentials) {
		p := page{Status: errWrongOldPassword.status, Error: errWrongOldPassword.Message,
			Fields: map[string]string{"old_password": errWrongOldPassword.Message}}
		s.render(c, "password", p)
		return
	}
	if err != nil {
		s.render(c, "password", s.refused(c, err, page{Form: form}))
		return
	}
	seeOther(c, "/password?done=1")
}
