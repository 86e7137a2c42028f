package db_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/db"
	"zikao/internal/testenv"
)

var (
	database *sqlx.DB
	url      string
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(d *sqlx.DB, u string, _ *testsuite.DevServer) int {
		database, url = d, u
		return m.Run()
	}, false))
}

// A statement is prepared once, and again on the connections that replace
// those PostgreSQL dropped (a restart, an administrator's termination):
// at most the call on a dropped connection fails, as an unprepared query's
// would.
func TestPreparedOutlivesItsConnections(t *testing.T) {
	ctx := context.Background()
	p := db.NewPrepared(database)
	const query = `SELECT $1::int + 1`
	first, err := p.Stmt(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.Stmt(ctx, query); err != nil || again != first {
		t.Fatalf("second call: %p (%v), want the first statement %p", again, err, first)
	}
	sum := func() (int, error) {
		var n int
		err := first.GetContext(ctx, &n, 41)
		return n, err
	}
	if n, err := sum(); err != nil || n != 42 {
		t.Fatalf("prepared statement: %d, %v", n, err)
	}

	admin, err := db.Open(ctx, url) // a connection of its own
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var terminated int
	if err := admin.GetContext(ctx, &terminated, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if terminated == 0 {
		t.Fatal("no connection of the pool to terminate")
	}
	failures := 0
	for {
		n, err := sum()
		if err == nil && n == 42 {
			break
		}
		if failures++; failures > 2 {
			t.Fatalf("after %d connections were terminated: %d, %v", terminated, n, err)
		}
	}
	t.Logf("%d connections terminated; %d call(s) failed before the statement ran again", terminated, failures)
}

// In a transaction, a statement runs unprepared until the pool has
// prepared it in the background, then prepared on the transaction's own
// connection.
func TestPreparedInTransactions(t *testing.T) {
	ctx := context.Background()
	p := db.NewPrepared(database)
	const query = `SELECT $1::int * 2`
	for try := 0; ; try++ {
		tx, err := database.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Exec(ctx, tx, query, 21)
		if err != nil {
			t.Fatalf("try %d: %v", try, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("try %d: %d rows, %v", try, n, err)
		}
		var prepared int
		if err := tx.GetContext(ctx, &prepared, `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`, query); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if prepared == 1 {
			t.Logf("prepared in the transaction's connection from try %d on", try)
			return
		}
		if try == 100 {
			t.Fatal("never prepared")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
