package accounts_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"zikao/internal/accounts"
)

func ptr[T any](v T) *T { return &v }

func newStaffLogin() string { return "staff-" + uuid.NewString()[:8] + "@example.com" }

func fieldsOf(t *testing.T, err error) map[string]string {
	t.Helper()
	var inv *accounts.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("%v, want an InvalidError", err)
	}
	return inv.Fields
}

func TestAddStaffRefusesTakenLoginNames(t *testing.T) {
	ctx := context.Background()
	store := accounts.NewStore(database)
	login := newStaffLogin()
	a, err := store.AddStaff(ctx, " "+login+" ", "secret1", accounts.RoleOnsiteOperator, "0106")
	if err != nil {
		t.Fatal(err)
	}
	if a.LoginName != login || a.Area() != "0106" || a.Disabled {
		t.Fatalf("added %+v", a)
	}
	if _, err := store.AddStaff(ctx, strings.ToUpper(login), "secret2", accounts.RoleAdmin, ""); !errors.Is(err, accounts.ErrLoginNameTaken) {
		t.Fatalf("a staff login again: %v, want ErrLoginNameTaken", err)
	}
	applicant := "app-" + uuid.NewString()[:8] + "@example.com"
	if _, err := store.SignUp(ctx, applicant, "secret1", 1, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddStaff(ctx, applicant, "secret2", accounts.RoleAdmin, ""); !errors.Is(err, accounts.ErrLoginNameTaken) {
		t.Fatalf("an applicant's login: %v, want ErrLoginNameTaken", err)
	}
	if _, err := store.Login(ctx, login, "secret1", "192.0.2.1"); err != nil {
		t.Fatalf("the first password no longer works: %v", err)
	}
	for _, bad := range []struct{ role, area, field string }{
		{accounts.RoleCountyReviewer, "", "exam_area_code"},
		{accounts.RoleCountyReviewer, "9999", "exam_area_code"},
		{accounts.RoleAdmin, "0106", "exam_area_code"},
		{accounts.RoleApplicant, "", "role"},
	} {
		_, err := store.AddStaff(ctx, newStaffLogin(), "secret1", bad.role, bad.area)
		if f := fieldsOf(t, err); f[bad.field] == "" {
			t.Errorf("%s in %q: %v, want a message for %s", bad.role, bad.area, f, bad.field)
		}
	}

	list, err := store.ListStaff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list, func(s accounts.Staff) bool { return s.ID == a.ID }) ||
		slices.ContainsFunc(list, func(s accounts.Staff) bool { return s.Role == accounts.RoleApplicant }) {
		t.Errorf("list: %+v", list)
	}
}

func TestDisabledStaffCannotLogInAndLoseTheirSessions(t *testing.T) {
	ctx := context.Background()
	store := accounts.NewStore(database)
	admin, err := store.AddStaff(ctx, newStaffLogin(), "secret1", accounts.RoleAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	login := newStaffLogin()
	a, err := store.AddStaff(ctx, login, "secret1", accounts.RoleProvincialReviewer, "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := store.Login(ctx, login, "secret1", "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.UpdateStaff(ctx, admin.ID, a.ID, accounts.StaffChange{Disabled: ptr(true)})
	if err != nil || !s.Disabled {
		t.Fatalf("disable: %+v %v", s, err)
	}
	if _, err := store.Authenticate(ctx, sess.Token); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("the session of a disabled account: %v", err)
	}
	if _, err := store.Login(ctx, login, "secret1", "192.0.2.2"); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("a disabled account's login: %v", err)
	}
	// Enabled again by the administrator, or by zikao staff create.
	if s, err := store.UpdateStaff(ctx, admin.ID, a.ID, accounts.StaffChange{Disabled: ptr(false)}); err != nil || s.Disabled {
		t.Fatalf("enable: %+v %v", s, err)
	}
	if _, err := store.Login(ctx, login, "secret1", "192.0.2.2"); err != nil {
		t.Fatalf("enabled, the login fails: %v", err)
	}
	if _, err := store.UpdateStaff(ctx, admin.ID, a.ID, accounts.StaffChange{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateStaff(ctx, login, "secret2", accounts.RoleProvincialReviewer, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Login(ctx, login, "secret2", "192.0.2.2"); err != nil {
		t.Fatalf("after zikao staff create, the login fails: %v", err)
	}

	// A new password ends the sessions.
	sess, err = store.Login(ctx, login, "secret2", "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateStaff(ctx, admin.ID, a.ID, accounts.StaffChange{Password: ptr("secret3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Authenticate(ctx, sess.Token); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("a session after a new password: %v", err)
	}
	if _, err := store.Login(ctx, login, "secret3", "192.0.2.2"); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateStaffRules(t *testing.T) {
	ctx := context.Background()
	store := accounts.NewStore(database)
	admin, err := store.AddStaff(ctx, newStaffLogin(), "secret1", accounts.RoleAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.AddStaff(ctx, newStaffLogin(), "secret1", accounts.RoleCountyReviewer, "0106")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := store.Login(ctx, a.LoginName, "secret1", "192.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.UpdateStaff(ctx, admin.ID, a.ID, accounts.StaffChange{Role: ptr(accounts.RoleOnsiteOperator)})
	if err != nil || s.Role != accounts.RoleOnsiteOperator || s.Area() != "0106" {
		t.Fatalf("role change: %+v %v", s, err)
	}
	if _, err := store.Authenticate(ctx, sess.Token); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("the session outlived a role change: %v", err)
	}
	if sess, err = store.Login(ctx, a.LoginName, "secret1", "192.0.2.3"); err != nil {
		t.Fatal(err)
	}
	if who, err := store.Authenticate(ctx, sess.Token); err != nil || who.Role != accounts.RoleOnsiteOperator {
		t.Fatalf("a new session after a role change: %+v %v", who, err)
	}
	if s, err = store.UpdateStaff(ctx, admin.ID, a.ID, accounts.StaffChange{Role: ptr(accounts.RoleProvincialReviewer)}); err != nil || s.ExamAreaCode != nil {
		t.Fatalf("to provincial: %+v %v", s, err)
	}
	for _, bad := range []struct {
		ch    accounts.StaffChange
		field string
	}{
		{accounts.StaffChange{Role: ptr(accounts.RoleCountyReviewer)}, "exam_area_code"},
		{accounts.StaffChange{ExamAreaCode: ptr("0106")}, "exam_area_code"},
		{accounts.StaffChange{Role: ptr(accounts.RoleOnsiteOperator), ExamAreaCode: ptr("9999")}, "exam_area_code"},
		{accounts.StaffChange{Role: ptr("superuser")}, "role"},
		{accounts.StaffChange{Password: ptr("12345")}, "password"},
	} {
		_, err := store.UpdateStaff(ctx, admin.ID, a.ID, bad.ch)
		if f := fieldsOf(t, err); f[bad.field] == "" {
			t.Errorf("%+v: %v, want a message for %s", bad.ch, f, bad.field)
		}
	}

	// Not staff, or no such account.
	applicant, err := store.SignUp(ctx, "app-"+uuid.NewString()[:8]+"@example.com", "secret1", 1, "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{applicant.ID, 1 << 60} {
		if _, err := store.UpdateStaff(ctx, admin.ID, id, accounts.StaffChange{Disabled: ptr(true)}); !errors.Is(err, accounts.ErrStaffNotFound) {
			t.Errorf("account %d: %v, want ErrStaffNotFound", id, err)
		}
	}

	// Administrators neither disable nor demote themselves.
	_, err = store.UpdateStaff(ctx, admin.ID, admin.ID, accounts.StaffChange{Disabled: ptr(true), Role: ptr(accounts.RoleProvincialReviewer)})
	if f := fieldsOf(t, err); f["disabled"] == "" || f["role"] == "" {
		t.Errorf("self: %v", f)
	}
	if _, err := store.UpdateStaff(ctx, admin.ID, admin.ID, accounts.StaffChange{Password: ptr("secret9")}); err != nil {
		t.Errorf("an administrator's own password: %v", err)
	}
}
