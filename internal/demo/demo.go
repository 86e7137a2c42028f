// Package demo loads the demo data of the run command (never of the
// migrations): staff accounts, open confirmation windows, enrolment records,
// and the diplomas the registry stand-in knows.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/chsi"
	"zikao/internal/enrolled"
)

// Password of every demo staff account.
const Password = "demo-password"

// Staff is a demo staff account.
type Staff struct{ LoginName, Role, Area string }

// StaffAccounts are the demo staff accounts.
var StaffAccounts = []Staff{
	{"admin@example.com", accounts.RoleAdmin, ""},
	{"county0106@example.com", accounts.RoleCountyReviewer, "0106"},
	{"province@example.com", accounts.RoleProvincialReviewer, ""},
	{"onsite0106@example.com", accounts.RoleOnsiteOperator, "0106"},
}

// Diplomas the diploma registry stand-in knows.
var Diplomas = []chsi.Diploma{
	{IDNumber: "420106199503151234", Name: "李明", DiplomaNumber: "104871201806000123"},
}

//go:embed enrolled.csv
var enrolledCSV []byte

// Seed loads the demo data. Running it again resets the demo staff accounts
// (password demo-password, sessions ended) and opens every confirmation
// window again from yesterday to 30 days on; the rest stays as it is.
func Seed(ctx context.Context, db *sqlx.DB, year, sitting int, now time.Time) error {
	accts := accounts.NewStore(db)
	for _, s := range StaffAccounts {
		if _, err := accts.CreateStaff(ctx, s.LoginName, Password, s.Role, s.Area); err != nil {
			return fmt.Errorf("demo staff %s: %w", s.LoginName, err)
		}
	}
	cat := catalog.New(db)
	areas, err := cat.ExamAreas(ctx, year, sitting)
	if err != nil {
		return err
	}
	w := catalog.Window{StartsAt: now.Add(-24 * time.Hour).Truncate(time.Hour), EndsAt: now.AddDate(0, 0, 30).Truncate(time.Hour)}
	for _, a := range areas {
		if err := cat.SetWindow(ctx, a.Code, year, sitting, w); err != nil {
			return err
		}
	}
	if _, err := enrolled.NewStore(db).Import(ctx, bytes.NewReader(enrolledCSV)); err != nil {
		return fmt.Errorf("demo enrolment records: %w", err)
	}
	return nil
}
