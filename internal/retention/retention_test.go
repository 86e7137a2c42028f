package retention_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"zikao/activities"
	"zikao/internal/config"
	"zikao/internal/files"
	"zikao/internal/retention"
	"zikao/internal/status"
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

// period is the messages' and file accesses' retention in these tests.
const period = time.Hour

// kind is one of the deletes, with rows of it to insert: three due (past
// their period) and some not.
type kind struct {
	name  string
	index string // the index its batch finds the due rows by
	byKey string // how it reaches the rows it deletes
	keys  string // SELECT of every row's key, as text
	due   []func(t *testing.T) string
	kept  []func(t *testing.T) string
	del   func(ctx context.Context, db sqlx.ExecerContext, limit int) (int, error)
}

// fixture is an account and a registration the rows refer to.
type fixture struct {
	account      int64
	registration string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	r, _ := testenv.Registration(t, database, "张三", status.CountyReview)
	return fixture{account: r.AccountID, registration: r.ID}
}

// exec runs an insert and returns key.
func exec(t *testing.T, key, query string, args ...any) string {
	t.Helper()
	if _, err := database.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
	return key
}

var seq int

func (f fixture) outbox(accepted, failed string) func(t *testing.T) string {
	return func(t *testing.T) string {
		seq++
		id := uuid.NewString()
		return exec(t, id, fmt.Sprintf(`
			INSERT INTO outbox (id, registration_id, kind, seq, recipient, subject, body, created_at, accepted_at, failed_at)
			VALUES ($1, $2, 'completed', $3, 'someone@example.com', '主题', '正文', now() - interval '1 year', %s, %s)`, accepted, failed),
			id, f.registration, seq)
	}
}

func (f fixture) smsOutbox(accepted, failed string) func(t *testing.T) string {
	return func(t *testing.T) string {
		id := uuid.NewString()
		return exec(t, id, fmt.Sprintf(`
			INSERT INTO sms_outbox (id, purpose, phone, template_code, params, created_at, accepted_at, failed_at)
			VALUES ($1, 'sign_up', '13900000000', 'SMS_1', '{"code": "123456"}', now() - interval '1 year', %s, %s)`, accepted, failed), id)
	}
}

func (f fixture) session(expires string) func(t *testing.T) string {
	return func(t *testing.T) string {
		h := uuid.New()
		return exec(t, fmt.Sprintf("%x", h[:]), fmt.Sprintf(`
			INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, now() - interval '1 year', %s)`, expires),
			h[:], f.account)
	}
}

func smsCode(expires string) func(t *testing.T) string {
	return func(t *testing.T) string {
		phone := fmt.Sprintf("139%08d", rand.IntN(100_000_000))
		return exec(t, phone+"/sign_up", fmt.Sprintf(`
			INSERT INTO sms_codes (phone, purpose, code_hash, expires_at, created_at) VALUES ($1, 'sign_up', 'hash', %s, now() - interval '1 year')`, expires),
			phone)
	}
}

func throttleAttempt(started, failed string) func(t *testing.T) string {
	return func(t *testing.T) string {
		var id string
		err := database.Get(&id, fmt.Sprintf(`
			INSERT INTO throttle_attempts (scope, key, started_at, failed_at) VALUES ('test', $1, %s, %s) RETURNING id::text`, started, failed),
			uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

func (f fixture) fileAccess(at string) func(t *testing.T) string {
	return func(t *testing.T) string {
		var id string
		err := database.Get(&id, fmt.Sprintf(`
			INSERT INTO file_accesses (at, account_id, registration_id, kind) VALUES (%s, $1, $2, 'video') RETURNING id::text`, at),
			f.account, f.registration)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// withPeriod is a delete of rows older than period.
func withPeriod(del func(context.Context, sqlx.ExecerContext, time.Duration, int) (int, error)) func(context.Context, sqlx.ExecerContext, int) (int, error) {
	return func(ctx context.Context, db sqlx.ExecerContext, limit int) (int, error) {
		return del(ctx, db, period, limit)
	}
}

func kinds(f fixture) []kind {
	ago := func(d string) string { return "now() - interval '" + d + "'" }
	in := func(d string) string { return "now() + interval '" + d + "'" }
	messages := func(fn func(accepted, failed string) func(*testing.T) string) (due, kept []func(*testing.T) string) {
		due = []func(*testing.T) string{fn(ago("2 hours"), "NULL"), fn("NULL", ago("2 hours")), fn(ago("1 year"), "NULL")}
		kept = []func(*testing.T) string{
			fn(ago("30 minutes"), "NULL"), // accepted within the period
			fn("NULL", ago("30 minutes")), // refused within the period
			fn("NULL", "NULL"),            // not delivered yet (created a year ago)
		}
		return due, kept
	}
	outboxDue, outboxKept := messages(f.outbox)
	smsDue, smsKept := messages(f.smsOutbox)
	old := fmt.Sprintf("%d seconds", int(throttle.Retention.Seconds())+3600)
	young := fmt.Sprintf("%d seconds", int(throttle.Retention.Seconds())-3600)
	return []kind{
		{name: "outbox", byKey: "outbox_pkey", index: "outbox_done_idx", keys: `SELECT id::text FROM outbox`, due: outboxDue, kept: outboxKept,
			del: withPeriod(retention.Outbox)},
		{name: "sms_outbox", byKey: "sms_outbox_pkey", index: "sms_outbox_done_idx", keys: `SELECT id::text FROM sms_outbox`, due: smsDue, kept: smsKept,
			del: withPeriod(retention.SMSOutbox)},
		{name: "sessions", byKey: "sessions_pkey", index: "sessions_expires_idx", keys: `SELECT encode(token_hash, 'hex') FROM sessions`,
			due:  []func(*testing.T) string{f.session(ago("1 second")), f.session(ago("1 hour")), f.session(ago("1 year"))},
			kept: []func(*testing.T) string{f.session(in("1 minute")), f.session(in("30 days"))},
			del:  retention.Sessions},
		{name: "sms_codes", byKey: "Tid Scan on sms_codes", index: "sms_codes_expires_idx", keys: `SELECT phone || '/' || purpose FROM sms_codes`,
			due:  []func(*testing.T) string{smsCode(ago("1 second")), smsCode(ago("5 minutes")), smsCode(ago("1 year"))},
			kept: []func(*testing.T) string{smsCode(in("1 minute")), smsCode(in("10 minutes"))},
			del:  retention.SMSCodes},
		{name: "throttle_attempts", byKey: "throttle_attempts_pkey", index: "throttle_attempts_started_at_idx", keys: `SELECT id::text FROM throttle_attempts`,
			due: []func(*testing.T) string{throttleAttempt(ago(old), "NULL"), throttleAttempt(ago(old), ago(old)), throttleAttempt(ago("1 year"), ago("1 year"))},
			kept: []func(*testing.T) string{
				throttleAttempt(ago(young), ago(young)), // a failure still counting
				throttleAttempt("now()", "NULL"),        // pending
			},
			del: retention.ThrottleAttempts},
		{name: "file_accesses", byKey: "file_accesses_pkey", index: "file_accesses_at_idx", keys: `SELECT id::text FROM file_accesses`,
			due:  []func(*testing.T) string{f.fileAccess(ago("2 hours")), f.fileAccess(ago("1 year")), f.fileAccess(ago("3 years"))},
			kept: []func(*testing.T) string{f.fileAccess(ago("30 minutes")), f.fileAccess("now()")},
			del:  withPeriod(retention.FileAccesses)},
	}
}

// TestDeletesExactlyTheDueRows: of each kind, batches of 2 delete the 3
// due rows (2, then 1, then none: done) and keep the others; run again,
// they delete nothing and fail on nothing.
func TestDeletesExactlyTheDueRows(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, k := range kinds(f) {
		t.Run(k.name, func(t *testing.T) {
			var due, kept []string
			for _, ins := range k.due {
				due = append(due, ins(t))
			}
			for _, ins := range k.kept {
				kept = append(kept, ins(t))
			}
			before := keys(t, k.keys)
			for i, want := range []int{2, 1, 0} {
				n, err := k.del(ctx, database, 2)
				if err != nil {
					t.Fatalf("batch %d: %v", i+1, err)
				}
				if n != want {
					t.Fatalf("batch %d deleted %d rows, want %d", i+1, n, want)
				}
			}
			after := keys(t, k.keys)
			for _, key := range due {
				if slices.Contains(after, key) {
					t.Errorf("due row %s is still there", key)
				}
			}
			for _, key := range before {
				if !slices.Contains(due, key) && !slices.Contains(after, key) {
					t.Errorf("row %s was deleted, but it is not due", key)
				}
			}
			for _, key := range kept {
				if !slices.Contains(after, key) {
					t.Errorf("row %s (not due) was deleted", key)
				}
			}
			for range 2 {
				if n, err := k.del(ctx, database, 100); n != 0 || err != nil {
					t.Fatalf("run again: deleted %d, %v; want 0, nil", n, err)
				}
			}
			if again := keys(t, k.keys); !slices.Equal(again, after) {
				t.Fatalf("run again changed the rows: %v, then %v", after, again)
			}
		})
	}
}

func keys(t *testing.T, query string) []string {
	t.Helper()
	var ks []string
	if err := database.Select(&ks, query+` ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	return ks
}

// explainer runs EXPLAIN of a delete instead of the delete, with
// sequential scans discouraged (the tables here are too small for the
// planner to prefer an index otherwise): a plan that still scans the table
// means no index fits the query.
type explainer struct {
	tx   *sqlx.Tx
	plan string
}

func (e *explainer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var lines []string
	if err := e.tx.SelectContext(ctx, &lines, "EXPLAIN "+query, args...); err != nil {
		return nil, err
	}
	e.plan = strings.Join(lines, "\n")
	return driver.RowsAffected(0), nil
}

// TestDeletesUseIndexes: each delete finds its due rows by its index
// (migrations 00004, 00011, 00015), then the rows by their primary key
// (sms_codes: by their ctid), never scanning the table.
func TestDeletesUseIndexes(t *testing.T) {
	ctx := context.Background()
	for _, k := range kinds(fixture{}) {
		t.Run(k.name, func(t *testing.T) {
			tx, err := database.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // read only
			if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
			e := &explainer{tx: tx}
			if _, err := k.del(ctx, e, 500); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(e.plan, k.index) || !strings.Contains(e.plan, k.byKey) || strings.Contains(e.plan, "Seq Scan") {
				t.Fatalf("the delete does not find its rows by %s and delete them by %s:\n%s", k.index, k.byKey, e.plan)
			}
			t.Logf("\n%s", e.plan)
		})
	}
}

// TestActivityCountsAndLogsEachBatch: the retention jobs' activity deletes
// a batch of the kind asked for, says whether it is done, hands the count
// to the metrics hook and logs counts and kinds only.
func TestActivityCountsAndLogsEachBatch(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for range 3 {
		f.outbox("now() - interval '100 days'", "NULL")(t) // the default period is 90 days
	}
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	counted := map[string]int{}
	a := &activities.Retention{DB: database, Files: files.NewStore(database, nil, files.Keys{}), Periods: config.DefaultRetention,
		Deleted: func(job, what string, n int) { counted[job+"/"+what] += n }}

	for i, want := range []activities.RetentionBatchResult{{Deleted: 2}, {Deleted: 1, Done: true}, {Done: true}} {
		res, err := a.RetentionBatch(ctx, activities.RetentionBatch{Job: "messages", What: activities.RetainOutbox, Limit: 2})
		if err != nil || res != want {
			t.Fatalf("batch %d: %+v, %v; want %+v", i+1, res, err, want)
		}
	}
	res, err := a.RetentionBatch(ctx, activities.RetentionBatch{Job: "files", What: activities.RetainFiles})
	if err != nil || res != (activities.RetentionBatchResult{Done: true}) {
		t.Fatalf("files: %+v, %v; want none, done", res, err)
	}
	if want := map[string]int{"messages/outbox": 3, "files/files": 0}; fmt.Sprint(counted) != fmt.Sprint(want) {
		t.Fatalf("counted %v, want %v", counted, want)
	}
	_, err = a.RetentionBatch(ctx, activities.RetentionBatch{Job: "messages", What: "accounts"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("an unknown kind: %v, want a non-retryable error", err)
	}
	if !strings.Contains(logged.String(), "what=outbox deleted=2") || strings.Contains(logged.String(), "@example.com") {
		t.Fatalf("the log:\n%s", logged.String())
	}
}
