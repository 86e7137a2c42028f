package api

// The administrator's staff accounts pages (pages_admin.go registers
// them): the list, a new account, and per account its role and exam area,
// its password, disabling and enabling.

import (
	"errors"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
)

// Staff accounts.

// staffRoles are the roles a staff account may have, as the selects offer them.
var staffRoles = []string{accounts.RoleCountyReviewer, accounts.RoleProvincialReviewer, accounts.RoleOnsiteOperator, accounts.RoleAdmin}

type staffRow struct {
	ID        int64
	LoginName string
	Role      string
	AreaCode  string // the exam area's code, or ""
	Area      string // the exam area's label, or ""
	Phone     string // the bound phone, or ""
	Disabled  bool
	Self      bool // the signed-in administrator's own account
}

type staffData struct {
	Staff []staffRow
	Roles []string
	Areas []catalog.ExamArea
	One   *staffRow // the account of the per-account page
}

// staffData reads the staff accounts and the exam areas; it answers with an
// error page and reports false when it cannot.
func (s *Server) staffData(c *gin.Context) (staffData, bool) {
	list, err := s.Accounts.ListStaff(c)
	if err != nil {
		failErr(c, err)
		return staffData{}, false
	}
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return staffData{}, false
	}
	labels := areaLabels(areas)
	d := staffData{Roles: staffRoles, Areas: areas}
	for _, a := range list {
		area := a.Area()
		if l, ok := labels[area]; ok {
			area = l
		}
		row := staffRow{ID: a.ID, LoginName: a.LoginName, Role: a.Role, AreaCode: a.Area(), Area: area,
			Disabled: a.Disabled, Self: a.ID == account(c).ID}
		if a.Phone != nil {
			row.Phone = *a.Phone
		}
		d.Staff = append(d.Staff, row)
	}
	return d, true
}

// staffNotices are the confirmations of the staff pages (?done=…).
var staffNotices = map[string]string{
	"created":  "已新增工作人员账号",
	"disabled": "账号已停用，其所有登录已退出",
	"enabled":  "账号已启用",
	"role":     "角色和考区已保存；有改动时，该账号的登录已全部退出",
	"password": "密码已重置，该账号的所有登录已退出",
}

func (s *Server) staffPage(c *gin.Context) {
	d, ok := s.staffData(c)
	if !ok {
		return
	}
	s.render(c, "admin_staff", page{Data: d, Notice: staffNotices[c.Query("done")]})
}

func (s *Server) staffCreatePost(c *gin.Context) {
	d, ok := s.staffData(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	if err == nil {
		_, err = s.addStaff(c, form.Get("login_name"), form.Get("password"), form.Get("role"), form.Get("exam_area_code"))
	}
	if err != nil {
		s.render(c, "admin_staff", s.refused(c, err, page{Form: form, Data: d}))
		return
	}
	seeOther(c, "/admin/staff?done=created")
}

// staffAccount is the account of the path's account_id with the staff
// pages' data; it answers 404 and reports false for an unknown account.
func (s *Server) staffAccount(c *gin.Context) (staffData, bool) {
	id, err := strconv.ParseInt(c.Param("account_id"), 10, 64)
	if err != nil {
		fail(c, errNotFound)
		return staffData{}, false
	}
	d, ok := s.staffData(c)
	if !ok {
		return d, false
	}
	for i := range d.Staff {
		if d.Staff[i].ID == id {
			d.One = &d.Staff[i]
			return d, true
		}
	}
	fail(c, errNotFound)
	return d, false
}

// roleForm is the per-account page's role form as the account is now.
func roleForm(a *staffRow) url.Values {
	return url.Values{"role": {a.Role}, "exam_area_code": {a.AreaCode}}
}

func (s *Server) staffAccountPage(c *gin.Context) {
	d, ok := s.staffAccount(c)
	if !ok {
		return
	}
	s.render(c, "admin_account", page{Data: d, Form: roleForm(d.One), Notice: staffNotices[c.Query("done")]})
}

// staffChangePost applies the change a posted form asks for to the path's
// account (changeStaff): on success it sends the browser to done, else it
// shows the template again with the refusal and the form that refused (a
// form without inputs of its own shows kept instead).
func (s *Server) staffChangePost(c *gin.Context, tmpl, done string, kept func(staffData) url.Values,
	change func(url.Values) accounts.StaffChange) {
	d, ok := s.staffAccount(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	if err == nil {
		_, err = s.changeStaff(c, d.One.ID, change(form))
	}
	if errors.Is(err, accounts.ErrStaffNotFound) {
		fail(c, errNotFound)
		return
	}
	if err != nil {
		if kept != nil {
			form = kept(d)
		}
		s.render(c, tmpl, s.refused(c, err, page{Form: form, Data: d}))
		return
	}
	seeOther(c, done)
}

// staffRolePost changes an account's role and exam area (an empty area is none).
func (s *Server) staffRolePost(c *gin.Context) {
	s.staffChangePost(c, "admin_account", "/admin/staff/"+c.Param("account_id")+"?done=role", nil,
		func(form url.Values) accounts.StaffChange {
			role, area := form.Get("role"), form.Get("exam_area_code")
			return accounts.StaffChange{Role: &role, ExamAreaCode: &area}
		})
}

// staffPasswordPost gives an account a new password.
func (s *Server) staffPasswordPost(c *gin.Context) {
	s.staffChangePost(c, "admin_account", "/admin/staff/"+c.Param("account_id")+"?done=password",
		func(d staffData) url.Values { return roleForm(d.One) },
		func(form url.Values) accounts.StaffChange {
			pw := form.Get("password")
			return accounts.StaffChange{Password: &pw}
		})
}

// staffDisablePost disables (or enables) an account from the staff list.
func (s *Server) staffDisablePost(disable bool) gin.HandlerFunc {
	done := "/admin/staff?done=enabled"
	if disable {
		done = "/admin/staff?done=disabled"
	}
	return func(c *gin.Context) {
		s.staffChangePost(c, "admin_staff", done, func(staffData) url.Values { return url.Values{} },
			func(url.Values) accounts.StaffChange { return accounts.StaffChange{Disabled: &disable} })
	}
}
