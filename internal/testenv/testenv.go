// Package testenv starts the real parts tests run against: a throw-away
// PostgreSQL cluster, a Temporal dev server and an S3 server (SeaweedFS),
// each on free loopback ports.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/config"
	"zikao/internal/db"
	"zikao/internal/devstack"
	"zikao/internal/files"
	"zikao/internal/idcard"
	"zikao/internal/registrations"
	"zikao/workflows"
)

// Postgres starts a new cluster in a temporary folder, creates database
// zikao and applies the migrations. stop shuts it down and removes it.
func Postgres(ctx context.Context) (database *sqlx.DB, url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "zikao-test-pg-")
	if err != nil {
		return nil, "", nil, err
	}
	port, err := devstack.FreePort()
	if err != nil {
		return nil, "", nil, err
	}
	var o devstack.PostgresOptions
	if os.Getenv("ZIKAO_PG_STATEMENTS") != "" { // for profiling: the benchmarks print the costliest statements
		o.Settings = map[string]string{"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track_planning": "on"}
	}
	pg, err := devstack.StartPostgresWith(ctx, dir, port, "zikao", o)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	postgresLog.Store(filepath.Join(dir, "postgres.log"))
	stop = func() {
		if database != nil {
			database.Close()
		}
		_ = pg.Stop()
		os.RemoveAll(dir)
	}
	url = pg.URL("zikao")
	if database, err = db.Open(ctx, url); err != nil {
		stop()
		return nil, "", nil, err
	}
	if _, err := db.Migrate(ctx, database); err != nil {
		stop()
		return nil, "", nil, err
	}
	return database, url, stop, nil
}

var postgresLog atomic.Value // string

// PostgresLog is the path of the server log of the cluster Postgres started
// last ("" before any), for tests that check what PostgreSQL logs.
func PostgresLog() string {
	p, _ := postgresLog.Load().(string)
	return p
}

// Temporal starts a headless, in-memory Temporal dev server with the
// project's search attributes registered.
func Temporal(ctx context.Context) (*testsuite.DevServer, error) {
	return devstack.StartTemporal(ctx, devstack.TemporalOptions{Namespace: "default", SearchAttributes: workflows.SearchAttributes()})
}

// S3 starts an S3 server (SeaweedFS) with its data in a temporary folder;
// stop stops it and removes the folder. Its log is written to s3.log there.
func S3(ctx context.Context) (s *devstack.S3, stop func(), err error) {
	dir, err := os.MkdirTemp("", "zikao-test-s3-")
	if err != nil {
		return nil, nil, err
	}
	log, err := os.Create(filepath.Join(dir, "s3.log"))
	if err == nil {
		s, err = devstack.StartS3(ctx, devstack.S3Options{Dir: filepath.Join(dir, "data"), Log: log,
			AccessKey: config.DevS3AccessKey, SecretKey: config.DevS3SecretKey})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("S3 server: %w", err)
	}
	return s, func() { _ = s.Stop(); log.Close(); os.RemoveAll(dir) }, nil
}

// Files returns a file store over database and the S3 server s, in bucket
// (made and written to once, so that no test's upload is the slow first
// write of a new bucket), sealing with the development key.
func Files(database *sqlx.DB, s *devstack.S3, bucket string) *files.Store {
	objects, err := s.Objects(bucket)
	if err != nil {
		panic(err) // only a malformed endpoint fails, and this one is not
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := objects.Ready(ctx); err != nil {
		panic(err) // the server answered a signed PUT when it started
	}
	return files.NewStore(database, objects, files.MustParseKeys(files.DevKeys))
}

// Main runs a test binary's tests with a fresh PostgreSQL database (and a
// Temporal dev server when withTemporal), then stops them. run receives them.
func Main(run func(database *sqlx.DB, url string, temporal *testsuite.DevServer) int, withTemporal bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	database, url, stop, err := Postgres(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: PostgreSQL:", err)
		return 1
	}
	defer stop()
	var srv *testsuite.DevServer
	if withTemporal {
		if srv, err = Temporal(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: Temporal:", err)
			return 1
		}
		defer srv.Stop()
	}
	code := run(database, url, srv)
	if err := CheckServerLog(PostgresLog()); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		code = 1
	}
	return code
}

// personalData matches what must never reach PostgreSQL's server log: an ID
// number, an e-mail address (a login name) of the tests, or a mobile phone
// number.
var personalData = regexp.MustCompile(`\b\d{17}[\dX]\b|[\w.+-]+@example\.com|\b1[3-9]\d{9}\b`)

// CheckServerLog fails when PostgreSQL's server log at path holds personal
// data: conflicts must be decided without errors that carry their key.
func CheckServerLog(path string) error {
	log, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read PostgreSQL's log: %w", err)
	}
	if m := personalData.Find(log); m != nil {
		return fmt.Errorf("PostgreSQL's server log %s holds personal data: %q", path, m)
	}
	return nil
}

var idSeq atomic.Int64

// IDNumber makes a valid ID card number that no other call in this process
// made (read its birth date and gender with package idcard).
func IDNumber() string {
	n := idSeq.Add(1)
	birth := time.Date(1985, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n))
	return withCheck(fmt.Sprintf("420106%s%03d", birth.Format("20060102"), n%1000))
}

func withCheck(first17 string) string {
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * weights[i]
	}
	return first17 + string("10X98765432"[sum%11])
}

// Registration signs up a new applicant and writes a registration of a new
// person for it (专科 in exam area 0106, sitting 2027-1, whose window this
// opens), as the registration service would, with the given name and first
// status. It returns the row and the account's login name.
func Registration(t testing.TB, db *sqlx.DB, name, st string) (registrations.Registration, string) {
	t.Helper()
	ctx := context.Background()
	login := "t-" + uuid.NewString()[:8] + "@example.com"
	acc, err := accounts.NewStore(db).SignUp(ctx, login, "secret1", 1, "答案")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := catalog.New(db).SetWindow(ctx, "0106", 2027, 1, catalog.Window{StartsAt: now.Add(-time.Hour), EndsAt: now.AddDate(0, 0, 30)}); err != nil {
		t.Fatal(err)
	}
	n, _ := idcard.Parse(IDNumber(), now)
	r := &registrations.Registration{ID: uuid.NewString(), AccountID: acc.ID, Kind: "new", Status: st,
		Name: name, IDNumber: string(n), Gender: n.Gender(), BirthDate: n.BirthDate(), Phone: "13800000000",
		MajorType: "social", Level: "zhuanke", MajorCode: "590201", ExamAreaCode: "0106", Year: 2027, Sitting: 1, TermsAgreedAt: now}
	if err := registrations.NewStore(db).Create(ctx, r, "提交"); err != nil {
		t.Fatal(err)
	}
	return *r, login
}

// FileRow writes the row of a file whose bytes are in PostgreSQL (as those
// of older releases, before the object store), for tests that need a file
// to refer to and not the object store; the same content is one row. It
// returns the file's id.
func FileRow(t testing.TB, db *sqlx.DB, content []byte, contentType string) string {
	t.Helper()
	var id string
	err := db.Get(&id, `INSERT INTO files (id, sha256, content_type, size, data) VALUES (gen_random_uuid(), sha256($1), $2, $3, $1)
		ON CONFLICT (sha256) DO UPDATE SET size = EXCLUDED.size RETURNING id`, content, contentType, len(content))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// RecordHistory writes a registration's workflow history to
// workflows/testdata/name.json when ZIKAO_RECORD_HISTORIES is set, for the
// replay test.
func RecordHistory(t testing.TB, tc client.Client, name, registrationID string) {
	if os.Getenv("ZIKAO_RECORD_HISTORIES") == "" {
		return
	}
	iter := tc.GetWorkflowHistory(context.Background(), workflows.WorkflowID(registrationID), "", false, 0)
	var hist historypb.History
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, e)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&hist)
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "workflows", "testdata", name+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
