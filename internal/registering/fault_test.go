package registering_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zikao/activities"
	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/chsi"
	"zikao/internal/db"
	"zikao/internal/demo"
	"zikao/internal/devstack"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
	"zikao/worker"
	"zikao/workflows"
)

// These tests inject faults into the real parts: a PostgreSQL cluster that
// they stop and start, a worker whose link to PostgreSQL they cut, and a
// Temporal dev server.
var (
	pg       *devstack.Postgres
	pgDir    string
	database *sqlx.DB
	tc       client.Client
	svc      *registering.Service
	link     *proxy // the worker's way to PostgreSQL
)

const (
	year, sitting = 2027, 1
	taskQueue     = "registrations-fault-test"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run()) // a fuzz worker runs only the fuzz targets: no servers
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	if pgDir, err = os.MkdirTemp("", "zikao-fault-pg-"); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(pgDir)
	port, err := devstack.FreePort()
	if err != nil {
		return fail(err)
	}
	if pg, err = devstack.StartPostgres(ctx, pgDir, port, "zikao"); err != nil {
		return fail(err)
	}
	defer func() { _ = pg.Stop() }()
	if database, err = db.Open(ctx, pg.URL("zikao")); err != nil {
		return fail(err)
	}
	defer database.Close()
	if _, err := db.Migrate(ctx, database); err != nil {
		return fail(err)
	}
	if err := demo.Seed(ctx, database, year, sitting, time.Now()); err != nil {
		return fail(err)
	}
	srv, err := testenv.Temporal(ctx)
	if err != nil {
		return fail(err)
	}
	defer srv.Stop()
	tc = srv.Client()

	if link, err = newProxy(fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		return fail(err)
	}
	defer link.Close()
	workerDB, err := sqlx.Open("postgres", fmt.Sprintf("postgres://postgres@%s/zikao?sslmode=disable", link.Addr()))
	if err != nil {
		return fail(err)
	}
	defer workerDB.Close()
	registry := httptest.NewServer(chsi.StandIn("u", "k", nil)) // knows nobody: every 专升本 needs a report
	defer registry.Close()
	w := worker.New(tc, taskQueue, &activities.Activities{
		Registrations: registrations.NewStore(workerDB),
		Diplomas:      chsi.NewClient(registry.URL, "u", "k", 5*time.Second),
	})
	if err := w.Start(); err != nil {
		return fail(err)
	}
	defer w.Stop()
	svc = registering.New(database, tc, taskQueue, year, sitting)
	s3, stopS3, err := testenv.S3(ctx)
	if err != nil {
		return fail(err)
	}
	defer stopS3()
	svc.Files = testenv.Files(database, s3, "zikao-files")
	code := m.Run()
	if err := testenv.CheckServerLog(pg.Dir + "/postgres.log"); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "fault test setup:", err)
	return 1
}

// applicant signs up a new applicant account.
func applicant(t *testing.T) accounts.Account {
	t.Helper()
	a, err := accounts.NewStore(database).SignUp(context.Background(), uuid.NewString()[:8]+"@example.com", "secret1", 1, "答案")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func submit(t *testing.T, who accounts.Account, level, area string) registrations.Registration {
	t.Helper()
	r, err := svc.Submit(context.Background(), who, submission(level, area), "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// submission is a 新生注册 of a new person.
func submission(level, area string) registering.Submission {
	id := testenv.IDNumber()
	gender := "female"
	if (id[16]-'0')%2 == 1 {
		gender = "male"
	}
	agree := true
	in := registering.Submission{Kind: workflows.KindNew, AgreeTerms: &agree,
		Personal: registering.Personal{Name: "故障测试", IDNumber: id, Gender: gender,
			BirthDate: id[6:10] + "-" + id[10:12] + "-" + id[12:14], Phone: "13800000000"},
		Application: registering.Application{MajorType: "social", Level: level, MajorCode: "590201", ExamAreaCode: area}}
	if level == "zhuanshengben" {
		in.Application.MajorCode, in.Application.PriorSchool, in.Application.PriorDiplomaNumber = "120402", "湖北大学", "104871201806000999"
	}
	return in
}

func setWindow(t *testing.T, area string, from, to time.Time) {
	t.Helper()
	if err := catalog.New(database).SetWindow(context.Background(), area, year, sitting, catalog.Window{StartsAt: from, EndsAt: to}); err != nil {
		t.Fatal(err)
	}
}

// waitForStatus polls the read model until the registration shows st.
func waitForStatus(t *testing.T, id, st string, within time.Duration) {
	t.Helper()
	store := registrations.NewStore(database)
	deadline := time.Now().Add(within)
	for {
		r, err := store.Get(context.Background(), id)
		if err == nil && r.Status == st {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration %s: status %q (error %v), want %s within %s", id, r.Status, err, st, within)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// workflowClosedOK fails unless the registration's workflow completed
// (neither failed nor still running).
func workflowClosedOK(t *testing.T, id string) {
	t.Helper()
	d, err := tc.DescribeWorkflow(context.Background(), workflows.WorkflowID(id), "")
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("workflow of %s is %s, want completed", id, st)
	}
}

// outage is how long PostgreSQL stays down after the window's end: 50 s,
// or ZIKAO_FAULT_OUTAGE (for example 5m, for the longer run of
// docs/reliability.md).
func outage(t *testing.T) time.Duration {
	d, err := time.ParseDuration(os.Getenv("ZIKAO_FAULT_OUTAGE"))
	if err != nil {
		return 50 * time.Second
	}
	t.Logf("PostgreSQL stays down %s after the window's end (ZIKAO_FAULT_OUTAGE)", d)
	return d
}

// PostgreSQL stopped for longer than a write's start-to-close timeout,
// across the end of the confirmation window and under a pending withdrawal:
// no workflow fails; everything settles once PostgreSQL is back.
func TestPostgresOutageAcrossTheWindowEnd(t *testing.T) {
	const area = "0107"
	end := time.Now().Add(15 * time.Second)
	setWindow(t, area, time.Now().Add(-time.Hour), end)
	owner := applicant(t)
	a, b, c := submit(t, applicant(t), "zhuanke", area), submit(t, applicant(t), "zhuanke", area), submit(t, owner, "zhuanke", area)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Cleanup(func() { _, _ = devstack.StartPostgres(context.Background(), pgDir, pg.Port, "zikao") }) // a no-op when running
	// The applicant's request meets the outage: 503, try again.
	if _, err := svc.Withdraw(context.Background(), owner, c.ID, "k"); !registering.Unavailable(err) {
		t.Errorf("withdrawal while PostgreSQL is down: %v, want unavailable", err)
	}
	// A withdrawal that reached the workflow waits for PostgreSQL.
	var wg sync.WaitGroup
	wg.Add(1)
	var withdrawErr error
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), outage(t)+3*time.Minute)
		defer cancel()
		withdrawErr = workflows.Update(ctx, tc, c.ID, workflows.UpdateWithdraw, "withdraw/pending", nil)
	}()
	time.Sleep(time.Until(end.Add(outage(t)))) // well past the window's end and a write's 30 s
	if _, err := devstack.StartPostgres(context.Background(), pgDir, pg.Port, "zikao"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("PostgreSQL was down for %s", back.Sub(down).Round(time.Second))

	for _, id := range []string{a.ID, b.ID} {
		waitForStatus(t, id, status.Expired, 2*time.Minute)
	}
	waitForStatus(t, c.ID, status.Withdrawn, 2*time.Minute)
	t.Logf("settled %s after PostgreSQL came back", time.Since(back).Round(time.Second))
	wg.Wait()
	if withdrawErr != nil {
		t.Errorf("pending withdrawal: %v", withdrawErr)
	}
	for _, id := range []string{a.ID, b.ID, c.ID} {
		workflowClosedOK(t, id)
	}
}

// The worker loses PostgreSQL for longer than a write's start-to-close
// timeout while a county review is being recorded: the review answers
// "unavailable" and, sent again with the same key, is applied once.
func TestWorkerCutFromPostgresUnderADecision(t *testing.T) {
	const area = "0106"
	setWindow(t, area, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	who := applicant(t)
	r := submit(t, who, "zhuanshengben", area)
	waitForStatus(t, r.ID, status.AwaitingReport, 30*time.Second)
	report := registering.Report{File: pdf(), VerificationCode: "ABCD1234EFGH"}
	if _, err := svc.UploadReport(context.Background(), who, r.ID, "upload", report); err != nil {
		t.Fatal(err)
	}
	county := staffAccount(t, "county0106@example.com")
	approve := true
	quick := *svc
	quick.UpdateTimeout = 5 * time.Second

	link.Cut()
	t.Cleanup(link.Restore)
	_, err := quick.Review(context.Background(), county, r.ID, "review-1", registering.StageCounty, registering.Decision{Approved: &approve})
	if !errors.Is(err, registering.ErrUnavailable) {
		t.Fatalf("review while the worker is cut off: %v, want ErrUnavailable", err)
	}
	time.Sleep(35 * time.Second)
	link.Restore()

	review(t, &quick, county, r.ID, 2*time.Minute)
	got, err := registrations.NewStore(database).Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	reviews := 0
	for _, h := range got.History {
		if h.ByRole == workflows.ByCountyReviewer {
			reviews++
		}
	}
	if reviews != 1 {
		t.Errorf("%d county review entries in the history, want 1: %+v", reviews, got.History)
	}
}

func staffAccount(t *testing.T, login string) accounts.Account {
	t.Helper()
	var a accounts.Account
	if err := database.Get(&a, `SELECT id, login_name, role, exam_area_code FROM accounts WHERE login_name = $1`, login); err != nil {
		t.Fatal(err)
	}
	return a
}

func pdf() io.Reader {
	return strings.NewReader("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + uuid.NewString())
}

// proxy forwards TCP connections to PostgreSQL until it is cut: then it
// drops every connection and refuses new ones until restored.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }
func (p *proxy) Close()       { p.ln.Close(); p.Cut() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.track(in, out)
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

func (p *proxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.conns[c] = true
	}
}

// Cut drops every connection and refuses new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Temporal restarted under a pending submission: the submission answers
// "unavailable" and keeps its row; sent again with the same key once
// Temporal is back, it starts the workflow (it used to answer 202 for a
// registration without one).
func TestTemporalRestartUnderASubmission(t *testing.T) {
	ctx := context.Background()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := devstack.TemporalOptions{Port: port, DBFile: t.TempDir() + "/temporal.db", Namespace: "default",
		SearchAttributes: workflows.SearchAttributes()}
	srv, err := devstack.StartTemporal(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	own, err := client.NewLazyClient(client.Options{HostPort: srv.FrontendHostPort(), Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	s := *svc
	s.Temporal, s.StartTimeout = own, 3*time.Second
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	setWindow(t, "0106", time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	who := applicant(t)
	in := submission("zhuanke", "0106")
	if _, err := s.Submit(ctx, who, in, "submit-1"); !errors.Is(err, registering.ErrUnavailable) {
		t.Fatalf("submission with Temporal down: %v, want ErrUnavailable", err)
	}
	if srv, err = devstack.StartTemporal(ctx, opts); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var r registrations.Registration
	deadline := time.Now().Add(time.Minute)
	for r, err = s.Submit(ctx, who, in, "submit-1"); err != nil; r, err = s.Submit(ctx, who, in, "submit-1") {
		if !errors.Is(err, registering.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("submission retried after the restart: %v", err)
		}
		time.Sleep(time.Second)
	}
	d, err := own.DescribeWorkflow(ctx, workflows.WorkflowID(r.ID), "")
	if err != nil {
		t.Fatalf("the retried submission's workflow: %v", err)
	}
	if st := d.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow %s, want running", st)
	}
}
