package accounts_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/accounts"
	"zikao/internal/testenv"
	"zikao/internal/throttle"
)

var database *sqlx.DB

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database = db
		return m.Run()
	}, false))
}

// A refused duplicate sign-up raises no error in PostgreSQL, whose log would
// name the login (DETAIL: Key (lower(login_name))=(…) already exists).
func TestDuplicateSignUpLeavesNoLoginNameInServerLog(t *testing.T) {
	ctx := context.Background()
	store := accounts.NewStore(database)
	login := "dup-" + uuid.NewString()[:8] + "@example.com"
	if _, err := store.SignUp(ctx, login, "secret1", 1, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SignUp(ctx, strings.ToUpper(login), "secret1", 1, "a"); !errors.Is(err, accounts.ErrLoginNameTaken) {
		t.Fatalf("duplicate sign-up: %v, want ErrLoginNameTaken", err)
	}
	// The same for an applicant's login name given to staff.
	if _, err := store.CreateStaff(ctx, login, "secret1", accounts.RoleAdmin, ""); !errors.Is(err, accounts.ErrNotStaff) {
		t.Fatalf("staff over an applicant: %v, want ErrNotStaff", err)
	}
	// An error that is logged, so that the log is known to be read.
	marker := "no_such_table_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := database.ExecContext(ctx, `SELECT 1 FROM `+marker); err == nil {
		t.Fatal("the marker query did not fail")
	}
	log, err := os.ReadFile(testenv.PostgresLog())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), marker) {
		t.Fatalf("the server log %s does not show the marker error", testenv.PostgresLog())
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(strings.ToLower(line), strings.ToLower(login)) {
			t.Errorf("the server log names the login: %s", line)
		}
	}
}

// An address that fails too often is refused, whatever login names it tries;
// other addresses are not.
func TestFailuresPerAddress(t *testing.T) {
	ctx := context.Background()
	store := accounts.NewStore(database)
	store.LoginLimits.PerAddress.Max = 3
	login := "addr-" + uuid.NewString()[:8] + "@example.com"
	if _, err := store.SignUp(ctx, login, "secret1", 1, "a"); err != nil {
		t.Fatal(err)
	}
	address := "address-" + uuid.NewString()
	for i := 0; i < 3; i++ {
		if _, err := store.Login(ctx, uuid.NewString()+"@example.com", "wrong", address); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
	var locked *throttle.LockedError
	if _, err := store.Login(ctx, login, "secret1", address); !errors.As(err, &locked) {
		t.Fatalf("4th login from the address: %v, want refused", err)
	}
	if _, err := store.Login(ctx, login, "secret1", address+"1"); err != nil {
		t.Fatalf("from another address: %v", err)
	}
}
