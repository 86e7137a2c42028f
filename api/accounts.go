package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
)

const accountKey = "account"

// authenticate requires a valid bearer token.
func (s *Server) authenticate(c *gin.Context) {
	token, ok := bearer(c)
	if !ok {
		fail(c, errUnauthenticated)
		return
	}
	a, err := s.Accounts.Authenticate(c, token)
	if errors.Is(err, accounts.ErrUnauthenticated) {
		fail(c, errUnauthenticated)
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	c.Set(accountKey, a)
	c.Next()
}

func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	return strings.TrimSpace(token), ok && strings.TrimSpace(token) != ""
}

func account(c *gin.Context) accounts.Account {
	return c.MustGet(accountKey).(accounts.Account)
}

// allow lets only the given roles through.
func allow(roles ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !slices.Contains(roles, account(c).Role) {
			fail(c, errForbidden)
			return
		}
		c.Next()
	}
}

// bindJSON decodes a JSON body into v, answering 400 when it is malformed.
func bindJSON(c *gin.Context, v any) bool {
	// sanitize checks JSON bodies, but not a body sent as a multipart form
	// (parseMultipart does): check what is decoded here whatever its type.
	if !checkJSON(c) {
		return false
	}
	if err := json.NewDecoder(c.Request.Body).Decode(v); err != nil {
		failBody(c, err)
		return false
	}
	return true
}

// decodeFields decodes the fields of a JSON object, read by bindJSON, into
// v, answering 400 as bindJSON does when one does not fit.
func decodeFields(c *gin.Context, fields map[string]json.RawMessage, v any) bool {
	b, err := json.Marshal(fields)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		failBody(c, err)
		return false
	}
	return true
}

func (s *Server) signUp(c *gin.Context) {
	var in struct {
		LoginName          string `json:"login_name"`
		Password           string `json:"password"`
		SecurityQuestionID int    `json:"security_question_id"`
		SecurityAnswer     string `json:"security_answer"`
		Phone              string `json:"phone"`
		SMSCode            string `json:"sms_code"`
	}
	if !bindJSON(c, &in) {
		return
	}
	a, err := s.Accounts.Create(c, accounts.NewAccount{LoginName: in.LoginName, Password: in.Password,
		QuestionID: in.SecurityQuestionID, Answer: in.SecurityAnswer, Phone: in.Phone, SMSCode: in.SMSCode})
	if !s.accountError(c, err) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{"account_id": a.ID, "login_name": a.LoginName})
}

// accountError answers for an error of the accounts package (problemOf);
// it reports whether there was none.
func (s *Server) accountError(c *gin.Context, err error) bool {
	if err == nil {
		return true
	}
	failErr(c, err)
	return false
}

func (s *Server) login(c *gin.Context) {
	var in struct {
		LoginName string `json:"login_name"`
		Password  string `json:"password"`
	}
	if !bindJSON(c, &in) {
		return
	}
	sess, err := s.Accounts.Login(c, in.LoginName, in.Password, c.ClientIP())
	if !s.accountError(c, err) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{"token": sess.Token, "expires_at": sess.ExpiresAt, "role": sess.Role})
}

func (s *Server) logout(c *gin.Context) {
	token, _ := bearer(c)
	if err := s.Accounts.Logout(c, token); err != nil {
		failErr(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) resetPassword(c *gin.Context) {
	var in struct {
		LoginName          string `json:"login_name"`
		SecurityQuestionID int    `json:"security_question_id"`
		SecurityAnswer     string `json:"security_answer"`
		NewPassword        string `json:"new_password"`
		Phone              string `json:"phone"` // or by an SMS code to the bound phone
		SMSCode            string `json:"sms_code"`
	}
	if !bindJSON(c, &in) {
		return
	}
	var err error
	if in.Phone != "" || in.SMSCode != "" {
		err = s.Accounts.ResetPasswordByPhone(c, in.Phone, in.SMSCode, in.NewPassword, c.ClientIP())
	} else {
		err = s.Accounts.ResetPassword(c, in.LoginName, in.SecurityQuestionID, in.SecurityAnswer, in.NewPassword, c.ClientIP())
	}
	if !s.accountError(c, err) {
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) changePassword(c *gin.Context) {
	var in struct {
		OldPassword string `json:"old_password"`
		NewPassword string `json:"new_password"`
	}
	if !bindJSON(c, &in) {
		return
	}
	token, _ := bearer(c)
	err := s.Accounts.ChangePassword(c, account(c).ID, token, in.OldPassword, in.NewPassword, c.ClientIP())
	if errors.Is(err, accounts.ErrInvalidCredentials) {
		fail(c, errWrongOldPassword)
		return
	}
	if !s.accountError(c, err) {
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) me(c *gin.Context) {
	a := account(c)
	c.JSON(http.StatusOK, gin.H{"account_id": a.ID, "login_name": a.LoginName, "role": a.Role, "exam_area_code": a.ExamAreaCode, "phone": a.Phone})
}
