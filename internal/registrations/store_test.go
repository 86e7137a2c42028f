package registrations_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/accounts"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

var database *sqlx.DB

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database = db
		return m.Run()
	}, false))
}

func newRegistration(t *testing.T) registrations.Registration {
	t.Helper()
	r, _ := testenv.Registration(t, database, "测试", status.PreRegistered)
	return r
}

// A step written by a workflow task that Temporal never committed is
// replaced by the step the workflow did commit (its task started later,
// with a longer history); a late write of the lost task changes nothing;
// a retry of the same write changes nothing.
func TestSupersededWritesAreReplaced(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	r := newRegistration(t)
	step := func(st, update string, historyLength int) {
		t.Helper()
		err := store.Record(ctx, registrations.Transition{RegistrationID: r.ID, Seq: 2, Status: st, At: time.Now(),
			ByRole: "applicant", Note: st, UpdateID: update, HistoryLength: historyLength})
		if err != nil {
			t.Fatal(err)
		}
	}
	shows := func(want string) {
		t.Helper()
		got, err := store.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		last := got.History[len(got.History)-1]
		if got.Status != want || got.LastSeq != 2 || len(got.History) != 2 || last.Status != want {
			t.Fatalf("registration %s at step %d, history %+v; want %s at step 2", got.Status, got.LastSeq, got.History, want)
		}
	}
	step(status.Withdrawn, "withdraw/1/a", 10) // the lost task's write
	shows(status.Withdrawn)
	step(status.Withdrawn, "withdraw/1/a", 10) // its retry
	shows(status.Withdrawn)
	step(status.Expired, "", 15) // what the workflow committed instead
	shows(status.Expired)
	step(status.Withdrawn, "withdraw/1/a", 12) // the lost task, late
	shows(status.Expired)

	// The reconciler sets a registration ahead of its workflow back.
	if err := store.Restore(ctx, r.ID, registrations.Snapshot{Status: status.PreRegistered, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Get(ctx, r.ID)
	if got.Status != status.PreRegistered || got.LastSeq != 1 || len(got.History) != 1 {
		t.Fatalf("after Restore: %s at step %d with %d history entries", got.Status, got.LastSeq, len(got.History))
	}
}

// Refused duplicates are told apart without an error that would write the
// ID number into PostgreSQL's log.
func TestConflictsAreToldApart(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	r := newRegistration(t)
	again := r
	again.ID = uuid.NewString()
	if err := store.Create(ctx, &again, "提交"); err != registrations.ErrInProgress {
		t.Fatalf("second registration of the account: %v, want ErrInProgress", err)
	}
	acc, err := accounts.NewStore(database).SignUp(ctx, uuid.NewString()[:8]+"@example.com", "secret1", 1, "答案")
	if err != nil {
		t.Fatal(err)
	}
	other := r
	other.ID, other.AccountID = uuid.NewString(), acc.ID
	if err := store.Create(ctx, &other, "提交"); err != registrations.ErrIDInProgress {
		t.Fatalf("the ID number from another account: %v, want ErrIDInProgress", err)
	}
	key := "k-" + uuid.NewString()
	keyed := newRegistration(t)
	keyed.ID, keyed.IdempotencyKey = uuid.NewString(), &key
	if _, err := database.Exec(`UPDATE registrations SET idempotency_key = $2 WHERE account_id = $1`, keyed.AccountID, key); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, &keyed, "提交"); err != registrations.ErrResubmitted || keyed.ID == "" {
		t.Fatalf("the same key again: %v (id %q), want ErrResubmitted with the first registration", err, keyed.ID)
	}
}
