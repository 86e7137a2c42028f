package prodtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"zikao/internal/accounts"
	"zikao/internal/registering"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

// BenchmarkThroughput measures b.N longest paths of zikao against the
// production-style cluster beside b.N flows of a bare skeleton of the same
// shape (a start, one local activity, four updates each running a local
// activity) on the same server, ZIKAO_PROD_CONCURRENCY (20) at a time, and
// reports both rates. Bound it with -benchtime:
//
//	go test -run '^$' -bench Throughput -benchtime 200x ./internal/prodtest/
func BenchmarkThroughput(b *testing.B) {
	t, n := b, b.N
	conc := 20
	if c, _ := strconv.Atoi(os.Getenv("ZIKAO_PROD_CONCURRENCY")); c > 0 {
		conc = c
	}
	ctx := context.Background()
	cluster, err := Start(ctx, tempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	setUp(t, cluster.Frontend, true)
	database, tc, svc := runZikao(t, cluster)
	startSkeletonWorker(t, tc)
	staffs := [3]accounts.Account{staff(t, database, "county0106@example.com"), staff(t, database, "province@example.com"), staff(t, database, "onsite0106@example.com")}
	who := applicants(t, database, n)

	zikao := 1.0
	if os.Getenv("ZIKAO_PROD_SKELETON_ONLY") == "" {
		before := cpuNow(t, cluster, database)
		zikao = run(t, n, conc, func(i int) error { return fastPath(ctx, svc, database, who[i], staffs) })
		logCPU(t, "zikao longest path", cpuNow(t, cluster, database).since(before), n)
	}
	zikaoRetries := retries.Swap(0)
	before := cpuNow(t, cluster, database)
	skeleton := run(t, n, conc, func(int) error { return skeletonFlow(ctx, tc) })
	logCPU(t, "bare skeleton", cpuNow(t, cluster, database).since(before), n)
	t.Logf("%d flows, %d at a time: zikao longest path %.2f/s (%d calls retried), bare skeleton %.2f/s (%d retried): zikao at %.2f× the skeleton",
		n, conc, zikao, zikaoRetries, skeleton, retries.Load(), zikao/skeleton)
	b.ReportMetric(zikao, "zikao-flows/s")
	b.ReportMetric(skeleton, "skeleton-flows/s")
	b.ReportMetric(zikao/skeleton, "ratio")
}

// cpuUse is the CPU time used so far, by whom: this process (zikao's
// service and worker, the skeleton's worker, both clients), the Temporal
// server, the cluster's PostgreSQL (in all, and each live server process,
// with its database), and the machine.
type cpuUse struct {
	process, server, postgres, machine time.Duration
	backends                           map[int]time.Duration
	databaseOf                         map[int]string
}

func cpuNow(t testing.TB, c *Cluster, database *sqlx.DB) cpuUse {
	t.Helper()
	var backends []struct {
		PID      int    `db:"pid"`
		Database string `db:"datname"`
	}
	if err := database.Select(&backends, `SELECT pid, datname FROM pg_stat_activity WHERE datname IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	u := cpuUse{process: testenv.ProcessCPU(t), server: testenv.PIDCPU(c.cmd.Process.Pid),
		postgres: testenv.PostgresCPU(t, c.Postgres.Dir), backends: testenv.BackendsCPU(t, c.Postgres.Dir), databaseOf: map[int]string{}}
	u.machine, _ = testenv.MachineCPU(t)
	for _, b := range backends {
		u.databaseOf[b.PID] = b.Database
	}
	return u
}

// cpuSpent is the CPU used between two cpuUse, PostgreSQL's by database
// ("" for the rest: its own processes, and server processes that ended).
type cpuSpent struct {
	process, server, postgres, machine time.Duration
	byDatabase                         map[string]time.Duration
}

func (u cpuUse) since(before cpuUse) cpuSpent {
	d := cpuSpent{process: u.process - before.process, server: u.server - before.server,
		postgres: u.postgres - before.postgres, machine: u.machine - before.machine, byDatabase: map[string]time.Duration{}}
	counted := time.Duration(0)
	for pid, used := range u.backends {
		name, ok := u.databaseOf[pid]
		if !ok {
			continue
		}
		used -= before.backends[pid] // 0 for a process started since
		d.byDatabase[name] += used
		counted += used
	}
	d.byDatabase[""] = d.postgres - counted
	return d
}

// logCPU prints the CPU per flow of a phase of n flows.
func logCPU(t testing.TB, phase string, d cpuSpent, n int) {
	t.Helper()
	each := func(x time.Duration) time.Duration { return (x / time.Duration(n)).Round(100 * time.Microsecond) }
	var dbs []string
	for name, used := range d.byDatabase {
		if name == "" {
			name = "the rest"
		}
		dbs = append(dbs, fmt.Sprintf("%s %s", name, each(used)))
	}
	slices.Sort(dbs)
	// Printed, not logged: the benchmark's log keeps only its first lines (the set-up's).
	fmt.Printf("%d flows of the %s, CPU per flow: the machine %s, of which this process %s, the Temporal server %s, PostgreSQL %s (by database: %s)\n",
		n, phase, each(d.machine), each(d.process), each(d.server), each(d.postgres), strings.Join(dbs, ", "))
}

// run calls flow n times, conc at a time, and returns flows per second.
func run(t testing.TB, n, conc int, flow func(i int) error) float64 {
	t.Helper()
	began := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range conc {
		wg.Go(func() {
			for i := range next {
				if err := flow(i); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return float64(n) / time.Since(began).Seconds()
}

func applicants(t testing.TB, database *sqlx.DB, n int) []accounts.Account {
	t.Helper()
	out := make([]accounts.Account, n)
	for i := range out {
		a, err := accounts.NewStore(database).SignUp(context.Background(), uuid.NewString()[:8]+"@example.com", "secret1", 1, "答案")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = a
	}
	return out
}

// fastPath is longestPath without the test's checks, for the measurement.
func fastPath(ctx context.Context, svc *registering.Service, database *sqlx.DB, who accounts.Account, staffs [3]accounts.Account) error {
	in := submission()
	r, err := svc.Submit(ctx, who, in, "")
	if err != nil {
		return err
	}
	for r.Status != status.AwaitingReport {
		time.Sleep(50 * time.Millisecond)
		if err := database.GetContext(ctx, &r.Status, `SELECT status FROM registrations WHERE id = $1`, r.ID); err != nil {
			return err
		}
	}
	report := registering.Report{File: bytes.NewReader(append([]byte("%PDF-1.4\n"), uuid.NewString()...)), VerificationCode: "ABCD1234EFGH"}
	if err := retried(func() error { _, err := svc.UploadReport(ctx, who, r.ID, "upload", report); return err }); err != nil {
		return err
	}
	yes := true
	if err := retried(func() error {
		_, err := svc.Review(ctx, staffs[0], r.ID, "county", registering.StageCounty, registering.Decision{Approved: &yes})
		return err
	}); err != nil {
		return err
	}
	if err := retried(func() error {
		_, err := svc.Review(ctx, staffs[1], r.ID, "province", registering.StageProvincial, registering.Decision{Approved: &yes})
		return err
	}); err != nil {
		return err
	}
	photo := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, uuid.NewString()...)
	return retried(func() error {
		_, err := svc.OnsiteCheck(ctx, staffs[2], r.ID, "onsite", registering.Onsite{IDCardNumber: in.Personal.IDNumber, Name: in.Personal.Name, Photo: bytes.NewReader(photo)})
		return err
	})
}

const skeletonQueue = "skeleton"

var skeletonUpdates = []string{"upload", "county", "province", "onsite"}

// noopOptions: zikao's steps are local activities, so are the skeleton's.
var noopOptions = workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second}

func skeletonWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithLocalActivityOptions(ctx, noopOptions)
	done := 0
	for _, name := range skeletonUpdates {
		if err := workflow.SetUpdateHandler(ctx, name, func(ctx workflow.Context) error {
			done++
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, noopOptions), "noop").Get(ctx, nil)
		}); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteLocalActivity(ctx, "noop").Get(ctx, nil); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return done == len(skeletonUpdates) && workflow.AllHandlersFinished(ctx) })
}

func startSkeletonWorker(t testing.TB, tc client.Client) {
	t.Helper()
	w := sdkworker.New(tc, skeletonQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(skeletonWorkflow, workflow.RegisterOptions{Name: "skeleton"})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "noop"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

func skeletonFlow(ctx context.Context, tc client.Client) error {
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "skeleton-" + uuid.NewString(), TaskQueue: skeletonQueue}, "skeleton")
	if err != nil {
		return err
	}
	for _, name := range skeletonUpdates {
		id := uuid.NewString()
		if err := retried(func() error {
			h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateID: id, UpdateName: name, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err != nil {
				return err
			}
			return h.Get(ctx, nil)
		}); err != nil {
			return err
		}
	}
	return run.Get(ctx, nil)
}

// retries counts the calls sent again, as a client does with the same id.
var retries atomic.Int64

// retried calls fn up to five times while it fails: both clients send a
// decision again with the same id, as the API's callers do (the server
// occasionally fails a workflow task under updates: temporalio/temporal#7741).
func retried(fn func() error) error {
	var err error
	for range 5 {
		if err = fn(); err == nil {
			return nil
		}
		retries.Add(1)
		time.Sleep(200 * time.Millisecond)
	}
	return err
}
