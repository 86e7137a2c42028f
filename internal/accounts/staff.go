package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
)

// Staff is a staff account as the administration sees it.
type Staff struct {
	Account
	Disabled bool `db:"disabled"`
}

// StaffChange is a change to a staff account: nil fields stay as they are.
// An empty ExamAreaCode means none.
type StaffChange struct {
	Role         *string
	ExamAreaCode *string
	Disabled     *bool
	Password     *string
}

// ErrStaffNotFound: no staff account has that id (applicants' accounts are
// not staff accounts).
var ErrStaffNotFound = errors.New("no such staff account")

const staffColumns = `id, login_name, role, exam_area_code, phone, disabled_at IS NOT NULL AS disabled`

// needsArea reports whether a staff role is bound to an exam area.
func needsArea(role string) bool { return role == RoleCountyReviewer || role == RoleOnsiteOperator }

// checkStaffRole checks a staff role and its exam area (which must exist)
// into fields.
func checkStaffRole(ctx context.Context, q sqlx.QueryerContext, role, area string, fields map[string]string) error {
	switch role {
	case RoleCountyReviewer, RoleOnsiteOperator:
		if area == "" {
			fields["exam_area_code"] = "该角色须指定考区 / this role needs an exam area"
			return nil
		}
		var known bool
		if err := sqlx.GetContext(ctx, q, &known, `SELECT EXISTS (SELECT 1 FROM exam_areas WHERE code = $1)`, area); err != nil {
			return fmt.Errorf("look up exam area: %w", err)
		}
		if !known {
			fields["exam_area_code"] = "没有此考区 / no such exam area"
		}
	case RoleProvincialReviewer, RoleAdmin:
		if area != "" {
			fields["exam_area_code"] = "该角色不属于某一考区 / this role has no exam area"
		}
	default:
		fields["role"] = "未知角色 / unknown staff role"
	}
	return nil
}

// AddStaff creates a new staff account; a login name in use (by staff or an
// applicant) is ErrLoginNameTaken. The rules are CreateStaff's.
func (s *Store) AddStaff(ctx context.Context, loginName, password, role, area string) (Staff, error) {
	return s.putStaff(ctx, loginName, password, role, area, false)
}

// putStaff creates a staff account, or, with replace, sets the role, area
// and password of the staff account of that login name, enables it and ends
// its sessions.
func (s *Store) putStaff(ctx context.Context, loginName, password, role, area string, replace bool) (Staff, error) {
	loginName = strings.TrimSpace(loginName)
	fields := map[string]string{}
	if msg := CheckLoginName(loginName); msg != "" {
		fields["login_name"] = msg
	}
	if msg := CheckPassword(password); msg != "" {
		fields["password"] = msg
	}
	if err := checkStaffRole(ctx, s.db, role, area, fields); err != nil {
		return Staff{}, err
	}
	if len(fields) > 0 {
		return Staff{}, &InvalidError{Fields: fields}
	}
	var areaArg *string
	if needsArea(role) {
		areaArg = &area
	}
	pw, err := hash(password)
	if err != nil {
		return Staff{}, err
	}
	// ON CONFLICT, not a unique violation: its error would write the login
	// name into PostgreSQL's server log.
	onConflict := `DO NOTHING`
	if replace {
		onConflict = `DO UPDATE SET password_hash = EXCLUDED.password_hash,
				role = EXCLUDED.role, exam_area_code = EXCLUDED.exam_area_code, password_changed_at = now(),
				security_question_id = NULL, security_answer_hash = NULL, disabled_at = NULL
			WHERE accounts.role <> 'applicant'`
	}
	var a Staff
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &a, `
			INSERT INTO accounts (login_name, password_hash, role, exam_area_code) VALUES ($1, $2, $3, $4)
			ON CONFLICT (lower(login_name)) `+onConflict+`
			RETURNING `+staffColumns, loginName, pw, role, areaArg)
		switch {
		case errors.Is(err, sql.ErrNoRows) && replace:
			return ErrNotStaff
		case errors.Is(err, sql.ErrNoRows):
			return ErrLoginNameTaken
		case err != nil:
			return fmt.Errorf("create staff account: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1`, a.ID); err != nil {
			return fmt.Errorf("end staff sessions: %w", err)
		}
		return nil
	})
	return a, err
}

// ListStaff lists the staff accounts (not applicants'), by login name.
func (s *Store) ListStaff(ctx context.Context) ([]Staff, error) {
	staff := []Staff{}
	if err := s.db.SelectContext(ctx, &staff, `SELECT `+staffColumns+` FROM accounts WHERE role <> 'applicant' ORDER BY lower(login_name)`); err != nil {
		return nil, fmt.Errorf("list staff accounts: %w", err)
	}
	return staff, nil
}

// UpdateStaff changes a staff account on behalf of the administrator
// actorID. A role bound to an exam area keeps the account's area unless a
// new one is given; a role without one drops it. Disabling the account or
// giving it a new password ends its sessions at once. Administrators cannot
// disable their own account or change their own role (*InvalidError), so
// that one of them always remains. A new role or exam area ends the
// account's sessions too.
func (s *Store) UpdateStaff(ctx context.Context, actorID, id int64, ch StaffChange) (Staff, error) {
	fields := map[string]string{}
	var pw *string
	if ch.Password != nil {
		if msg := CheckPassword(*ch.Password); msg != "" {
			fields["password"] = msg
		} else {
			h, err := hash(*ch.Password)
			if err != nil {
				return Staff{}, err
			}
			pw = &h
		}
	}
	var a Staff
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var cur Staff
		err := tx.GetContext(ctx, &cur, `SELECT `+staffColumns+` FROM accounts WHERE id = $1 AND role <> 'applicant' FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrStaffNotFound
		}
		if err != nil {
			return fmt.Errorf("look up staff account: %w", err)
		}
		role := cur.Role
		if ch.Role != nil {
			role = *ch.Role
		}
		area := ""
		switch {
		case ch.ExamAreaCode != nil:
			area = *ch.ExamAreaCode
		case needsArea(role):
			area = cur.Area()
		}
		if err := checkStaffRole(ctx, tx, role, area, fields); err != nil {
			return err
		}
		disabled := cur.Disabled
		if ch.Disabled != nil {
			disabled = *ch.Disabled
		}
		if id == actorID {
			if disabled && !cur.Disabled {
				fields["disabled"] = "不能停用自己的账号 / you cannot disable your own account"
			}
			if role != cur.Role {
				fields["role"] = "不能更改自己的角色 / you cannot change your own role"
			}
		}
		if len(fields) > 0 {
			return &InvalidError{Fields: fields}
		}
		var areaArg *string
		if needsArea(role) {
			areaArg = &area
		}
		err = tx.GetContext(ctx, &a, `
			UPDATE accounts SET role = $2, exam_area_code = $3,
				disabled_at = CASE WHEN $4 THEN coalesce(disabled_at, now()) END,
				password_hash = coalesce($5, password_hash),
				password_changed_at = CASE WHEN $5::text IS NULL THEN password_changed_at ELSE now() END
			WHERE id = $1
			RETURNING `+staffColumns, id, role, areaArg, disabled, pw)
		if err != nil {
			return fmt.Errorf("update staff account: %w", err)
		}
		// What the account may do changed: its sessions end, as for a
		// disabled account, so that no page or token goes on with the old
		// role or area.
		if disabled || pw != nil || role != cur.Role || area != cur.Area() {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1`, id); err != nil {
				return fmt.Errorf("end staff sessions: %w", err)
			}
		}
		return nil
	})
	return a, err
}
