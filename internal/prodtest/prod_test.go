package prodtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"zikao/activities"
	"zikao/internal/accounts"
	"zikao/internal/chsi"
	"zikao/internal/db"
	"zikao/internal/demo"
	"zikao/internal/devstack"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/temporalsetup"
	"zikao/internal/testenv"
	"zikao/worker"
	"zikao/workflows"
)

const (
	year, sitting = 2027, 1
	taskQueue     = "registrations"
	namespace     = "zikao-prod"
)

// TestProductionPath starts the real Temporal Server on PostgreSQL, sets it
// up with the setup command's code only (twice: the second run changes
// nothing), and drives the longest path through it: 专升本 not found by the
// registry, report, county and provincial approval, on-site check, completed
// with a ticket number.
func TestProductionPath(t *testing.T) {
	ctx := context.Background()
	dir := tempDir(t)
	began := time.Now()
	cluster, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			tail(t, cluster.Log)
		}
	})
	t.Logf("Temporal Server %s with PostgreSQL on port %d up in %s (%d history shards, max_connections %d)",
		cluster.Frontend, cluster.Postgres.Port, time.Since(began).Round(time.Millisecond), HistoryShards, MaxConnections)

	setUp(t, cluster.Frontend, true)
	setUp(t, cluster.Frontend, false)

	database, tc, svc := runZikao(t, cluster)

	began = time.Now()
	r := longestPath(t, svc, database)
	t.Logf("longest path completed in %s, ticket %s", time.Since(began).Round(time.Millisecond), *r.TicketNumber)
	waitForVisibility(t, tc, `ExamArea="0106" AND RegistrationStatus="completed"`)
}

// setUp runs the setup; the first run creates everything, the second finds it.
func setUp(t testing.TB, frontend string, first bool) {
	t.Helper()
	var out bytes.Buffer
	began := time.Now()
	r, err := temporalsetup.Dial(context.Background(), client.Options{HostPort: frontend, Logger: quiet{}}, temporalsetup.Options{
		Namespace: namespace, SearchAttributes: workflows.SearchAttributes(), Out: &out,
	})
	t.Logf("setup (%s):\n%s", time.Since(began).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatal(err)
	}
	if first && (!r.NamespaceCreated || len(r.Added) != 4 || r.Retention != 720*time.Hour) {
		t.Fatalf("first setup: %+v", r)
	}
	if !first && (r.NamespaceCreated || len(r.Added) != 0 || len(r.Present) != 4) {
		t.Fatalf("second setup changed something: %+v", r)
	}
	if !r.UpdatesAccepted {
		t.Fatal("updates not accepted")
	}
}

func zikaoDatabase(t testing.TB, url string) *sqlx.DB {
	t.Helper()
	ctx := context.Background()
	database, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close() })
	if _, err := db.Migrate(ctx, database); err != nil {
		t.Fatal(err)
	}
	if err := demo.Seed(ctx, database, year, sitting, time.Now()); err != nil {
		t.Fatal(err)
	}
	return database
}

// startWorker runs the real workflow and activities, with a registry
// stand-in that knows nobody (every 专升本 needs a report).
func startWorker(t testing.TB, tc client.Client, database *sqlx.DB) {
	t.Helper()
	registry := httptest.NewServer(chsi.StandIn("u", "k", nil))
	t.Cleanup(registry.Close)
	w := worker.New(tc, taskQueue, &activities.Activities{
		Registrations: registrations.NewStore(database),
		Diplomas:      chsi.NewClient(registry.URL, "u", "k", 5*time.Second),
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// longestPath submits a 专升本 and takes it to completed.
func longestPath(t *testing.T, svc *registering.Service, database *sqlx.DB) registrations.Registration {
	t.Helper()
	ctx := context.Background()
	who, err := accounts.NewStore(database).SignUp(ctx, uuid.NewString()[:8]+"@example.com", "secret1", 1, "答案")
	if err != nil {
		t.Fatal(err)
	}
	in := submission()
	r, err := svc.Submit(ctx, who, in, "submit-1")
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	waitForStatus(t, database, r.ID, status.AwaitingReport)
	report := registering.Report{File: bytes.NewReader(walkthroughFile(t, "report.pdf")), VerificationCode: "ABCD1234EFGH"}
	if r, err = svc.UploadReport(ctx, who, r.ID, "upload-1", report); err != nil || r.Status != status.CountyReview {
		t.Fatalf("upload: %v, status %s", err, r.Status)
	}
	approve := true
	if r, err = svc.Review(ctx, staff(t, database, "county0106@example.com"), r.ID, "county-1", registering.StageCounty, registering.Decision{Approved: &approve}); err != nil || r.Status != status.ProvincialReview {
		t.Fatalf("county review: %v, status %s", err, r.Status)
	}
	if r, err = svc.Review(ctx, staff(t, database, "province@example.com"), r.ID, "province-1", registering.StageProvincial, registering.Decision{Approved: &approve}); err != nil || r.Status != status.PreRegistered {
		t.Fatalf("provincial review: %v, status %s", err, r.Status)
	}
	onsite := registering.Onsite{IDCardNumber: in.Personal.IDNumber, Name: in.Personal.Name, Photo: bytes.NewReader(walkthroughFile(t, "photo.jpg"))}
	if r, err = svc.OnsiteCheck(ctx, staff(t, database, "onsite0106@example.com"), r.ID, "onsite-1", onsite); err != nil || r.Status != status.Completed {
		t.Fatalf("on-site check: %v, status %s", err, r.Status)
	}
	if r.TicketNumber == nil || len(*r.TicketNumber) != 12 {
		t.Fatalf("completed without a ticket number: %+v", r.TicketNumber)
	}
	return r
}

func submission() registering.Submission {
	id := testenv.IDNumber()
	gender := "female"
	if (id[16]-'0')%2 == 1 {
		gender = "male"
	}
	agree := true
	return registering.Submission{Kind: workflows.KindNew, AgreeTerms: &agree,
		Personal: registering.Personal{Name: "生产测试", IDNumber: id, Gender: gender,
			BirthDate: id[6:10] + "-" + id[10:12] + "-" + id[12:14], Phone: "13800000000"},
		Application: registering.Application{MajorType: "social", Level: "zhuanshengben", MajorCode: "120402",
			ExamAreaCode: "0106", PriorSchool: "湖北大学", PriorDiplomaNumber: "104871201806000999"}}
}

func staff(t testing.TB, database *sqlx.DB, login string) accounts.Account {
	t.Helper()
	var a accounts.Account
	if err := database.Get(&a, `SELECT id, login_name, role, exam_area_code FROM accounts WHERE login_name = $1`, login); err != nil {
		t.Fatal(err)
	}
	return a
}

func waitForStatus(t *testing.T, database *sqlx.DB, id, want string) {
	t.Helper()
	store := registrations.NewStore(database)
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := store.Get(context.Background(), id)
		if err == nil && r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration %s: %q (%v), want %s", id, r.Status, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitForVisibility waits until the operators' filter finds the workflow
// (visibility is eventually consistent).
func waitForVisibility(t *testing.T, tc client.Client, query string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		if err == nil && n.GetCount() == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("filter %s: %v, %v", query, n.GetCount(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// walkthroughFile reads one of the README walk-through's files: the test
// uploads the very files an operator would.
func walkthroughFile(t *testing.T, name string) []byte {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "walkthrough", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tail(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	fmt.Fprintf(os.Stderr, "--- end of %s ---\n%s\n", path, b)
}

// runZikao connects zikao to the cluster: its database, a Temporal client,
// a worker of the registration workflow, and the registration service.
func runZikao(t testing.TB, cluster *Cluster) (*sqlx.DB, client.Client, *registering.Service) {
	t.Helper()
	database := zikaoDatabase(t, cluster.Postgres.URL("zikao"))
	tc, err := client.Dial(client.Options{HostPort: cluster.Frontend, Namespace: namespace, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	startWorker(t, tc, database)
	svc := registering.New(database, tc, taskQueue, year, sitting)
	s3, stop, err := testenv.S3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	svc.Files = testenv.Files(database, s3, "zikao-files")
	return database, tc, svc
}

// tempDir is a temporary folder the user postgres can enter (t.TempDir's
// parent is root's alone: as root, the cluster would be moved to
// /var/lib/zikao and outlive the test).
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zikao-prodtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
