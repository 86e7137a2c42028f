package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	enumspb "go.temporal.io/api/enums/v1"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/internal/catalog"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/workflows"
)

// Window moves at scale (api.md 1.2): a move is an operation of its own,
// followed by GET /admin/window-moves/{id}; it survives its worker's crash
// without moving anyone twice.

// shortMoves makes the service answer a window move after a millisecond
// (so that the move outlasts the wait) in batches of batch, continuing as
// new after continueAfter, until the test ends.
func shortMoves(t *testing.T, batch, continueAfter int) {
	saved := server.Registering.Moves
	server.Registering.Moves = registering.MoveOptions{Wait: time.Millisecond, Batch: batch, ContinueAfter: continueAfter}
	t.Cleanup(func() { server.Registering.Moves = saved })
}

// changeWindowUpdates counts the change-window updates a registration's
// workflow accepted, by update id.
func changeWindowUpdates(t testing.TB, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	it := temporal.GetWorkflowHistory(context.Background(), workflows.WorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil && a.GetAcceptedRequest().GetInput().GetName() == workflows.UpdateChangeWindow {
			out[a.GetAcceptedRequest().GetMeta().GetUpdateId()]++
		}
	}
	return out
}

// checkMovedOnce fails unless each registration is on window w and its
// workflow accepted exactly one change-window update, that of move op.
func checkMovedOnce(t *testing.T, ids []string, op string, w catalog.Window) {
	t.Helper()
	a := admin(t)
	for _, id := range ids {
		v := a.json("GET", "/registrations/"+id, nil)
		want(t, v, 200, "")
		cw := v.body["confirmation_window"].(map[string]any)
		if got, _ := time.Parse(time.RFC3339, cw["ends_at"].(string)); !got.Equal(w.EndsAt) {
			t.Errorf("registration %s ends %v, want %v", id, cw["ends_at"], w.EndsAt)
		}
		if u := changeWindowUpdates(t, id); len(u) != 1 || u[workflows.UpdateChangeWindow+"/"+op] != 1 {
			t.Errorf("registration %s accepted the change-window updates %v, want one of move %s", id, u, op)
		}
	}
}

// followMove polls GET /admin/window-moves/{op} until the move is done and
// returns its last answer; it checks every answer on the way.
func followMove(t *testing.T, a caller, op string, limit time.Duration) (response, []string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var states []string
	for {
		r := a.json("GET", "/admin/window-moves/"+op, nil)
		want(t, r, 200, "")
		total, moved := r.body["total"].(float64), r.body["moved"].(float64)
		if r.str("operation_id") != op || moved > total {
			t.Fatalf("the move: %s", r.raw)
		}
		if len(states) == 0 || states[len(states)-1] != r.str("state") {
			states = append(states, r.str("state"))
		}
		if r.str("state") == "done" {
			if r.body["finished_at"] == nil {
				t.Errorf("done without finished_at: %s", r.raw)
			}
			return r, states
		}
		if r.body["finished_at"] != nil {
			t.Errorf("running with finished_at: %s", r.raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the move is not done after %s: %s", limit, r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A move that outlasts the service's wait answers 202 with its operation;
// GET follows it, running then done, through its continues-as-new; every
// registration is moved once; the windows pages show it.
func TestWindowMoveOperation(t *testing.T) {
	const area, n = "0300", 20 // no other test registers here
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	ids := make([]string, n)
	for i := range ids {
		_, ids[i] = registerIn(t, area)
	}
	shortMoves(t, 3, 7)
	a := admin(t)

	w := catalog.Window{StartsAt: time.Now().Add(-2 * time.Hour).Truncate(time.Second), EndsAt: time.Now().AddDate(0, 0, 41).Truncate(time.Second)}
	r := a.json("PUT", "/admin/windows/"+area, map[string]any{"starts_at": w.StartsAt.Format(time.RFC3339), "ends_at": w.EndsAt.Format(time.RFC3339)})
	want(t, r, 202, "")
	op := r.str("operation_id")
	if win := r.body["window"].(map[string]any); win["exam_area_code"] != area || win["ends_at"] != w.EndsAt.Format(time.RFC3339) {
		t.Errorf("202: %s", r.raw)
	}
	done, states := followMove(t, a, op, 2*time.Minute)
	if fmt.Sprint(states) != "[running done]" {
		t.Errorf("states %v, want [running done]", states)
	}
	if done.body["total"].(float64) != n || done.body["moved"].(float64) != n || len(done.body["not_moved"].([]any)) != 0 ||
		done.str("exam_area_code") != area || done.body["superseded_by"] != nil {
		t.Errorf("done: %s", done.raw)
	}
	checkMovedOnce(t, ids, op, w)
	// It continued as new (batches of 3, a new run after 7).
	d, err := temporal.DescribeWorkflow(context.Background(), workflows.WindowMoveWorkflowID(op), "")
	if err != nil {
		t.Fatal(err)
	}
	if info := d.RawResponse.GetWorkflowExecutionInfo(); info.GetFirstRunId() == info.GetExecution().GetRunId() {
		t.Error("the move never continued as new")
	}

	// The pages show it: moved of total on the list and the area's page.
	web := webAdmin(t)
	wantPage(t, web.get("/admin/windows"), 200, fmt.Sprintf("已调整 %d / 共 %d 条", n, n))
	wantPage(t, web.get("/admin/windows/"+area), 200, "最近一次调整", fmt.Sprintf("已调整 <strong>%d</strong> / 共 %d 条", n, n))
	// A move from the page that outlasts the wait: the page says it goes on.
	later := catalog.Window{StartsAt: w.StartsAt, EndsAt: w.EndsAt.Add(24 * time.Hour)}
	p := web.post("/admin/windows/"+area, url.Values{"starts_at": {shanghaiInput(later.StartsAt)}, "ends_at": {shanghaiInput(later.EndsAt)}})
	wantPage(t, p, 200, "已保存：新的现场确认时间已生效，该考区进行中的注册正在调整", "正在调整进行中的注册", "刷新查看进度")
	latest, err := server.Registering.LatestWindowMoves(context.Background(), year, sitting)
	if err != nil {
		t.Fatal(err)
	}
	followMove(t, a, latest[area].Operation, 2*time.Minute)
	p = web.get("/admin/windows/" + area)
	if !regexp.MustCompile(fmt.Sprintf(`已调整 <strong>%d</strong> / 共 %d 条`, n, n)).MatchString(p.body) || regexp.MustCompile(`暂未调整`).MatchString(p.body) {
		t.Errorf("after the second move: %s", p.body)
	}

	// Unknown and malformed ids; other roles.
	want(t, a.json("GET", "/admin/window-moves/7d3c1b3e-0000-4000-8000-000000000000", nil), 404, "not_found")
	want(t, a.json("GET", "/admin/window-moves/not-a-uuid", nil), 404, "not_found")
	want(t, caller{t: t}.json("GET", "/admin/window-moves/"+op, nil), 401, "unauthenticated")
	want(t, staff(t, "province@example.com").json("GET", "/admin/window-moves/"+op, nil), 403, "forbidden")
}

// openRegistrations writes n open registrations (新生 专科, pre-registered)
// of an exam area on its current window, as the registration service would
// (an account each, the row and its first history entry; no e-mail), and
// starts their workflows, 32 at a time; it returns their ids. Faster than
// the API (no password hashing, no polling), with the same workflows.
func openRegistrations(tb testing.TB, area string, n int) []string {
	tb.Helper()
	ctx := context.Background()
	a, err := catalog.New(database).ExamArea(ctx, area, year, sitting)
	if err != nil || a.StartsAt == nil || a.EndsAt == nil {
		tb.Fatalf("exam area %s: %v", area, err)
	}
	run := rand.IntN(100000)
	var accountIDs []int64
	err = database.SelectContext(ctx, &accountIDs, `
		INSERT INTO accounts (login_name, password_hash, security_question_id, security_answer_hash, role)
		SELECT 'wm-' || $1 || '-' || g || '@example.com', 'x', 1, 'x', 'applicant' FROM generate_series(1, $2) g
		RETURNING id`, fmt.Sprintf("%05d%06d", run, rand.IntN(1000000)), n)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	err = database.SelectContext(ctx, &ids, `
		INSERT INTO registrations (id, account_id, kind, status, name, id_number, gender, birth_date, phone, major_type, level,
			major_code, exam_area_code, year, sitting, terms_agreed_at, window_starts_at, window_ends_at, last_seq)
		SELECT gen_random_uuid(), t.account, 'new', 'pre_registered', '测试', '99' || lpad($1::text, 6, '0') || lpad(t.ord::text, 9, '0') || 'X',
			'male', date '1990-01-01', '13800000000', 'social', 'zhuanke', '590201', $2, $3, $4, now(), $5, $6, 1
		FROM unnest($7::bigint[]) WITH ORDINALITY AS t(account, ord)
		RETURNING id`, run, area, year, sitting, *a.StartsAt, *a.EndsAt, pq.Array(accountIDs))
	if err != nil {
		tb.Fatal(err)
	}
	_, err = database.ExecContext(ctx, `
		INSERT INTO registration_history (registration_id, seq, status, at, by_role, note, by_account_id)
		SELECT id, 1, status, created_at, 'applicant', '提交注册', account_id FROM registrations WHERE id = ANY($1::uuid[])`, pq.Array(ids))
	if err != nil {
		tb.Fatal(err)
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(ids); i = int(next.Add(1)) - 1 {
				in := workflows.Input{RegistrationID: ids[i], Kind: workflows.KindNew, Level: "zhuanke", ExamAreaCode: area,
					Window: workflows.Window{StartsAt: *a.StartsAt, EndsAt: *a.EndsAt}}
				if _, err := temporal.ExecuteWorkflow(ctx, workflows.StartOptions(in, taskQueue), workflows.WorkflowName, in); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// crashingChanger lets the first `after` updates through, then hangs (as
// a dead process would, deaf to its context) until release is closed.
type crashingChanger struct {
	activities.WindowChanger
	after   int32
	sent    atomic.Int32
	release chan struct{}
}

func (c *crashingChanger) ChangeWindow(ctx context.Context, id string, startsAt, endsAt time.Time, moveID string) error {
	if c.sent.Add(1) > c.after {
		<-c.release
		return context.Canceled
	}
	return c.WindowChanger.ChangeWindow(ctx, id, startsAt, endsAt, moveID)
}

// countingChanger counts the updates it sends.
type countingChanger struct {
	activities.WindowChanger
	sent atomic.Int32
}

func (c *countingChanger) ChangeWindow(ctx context.Context, id string, startsAt, endsAt time.Time, moveID string) error {
	c.sent.Add(1)
	return c.WindowChanger.ChangeWindow(ctx, id, startsAt, endsAt, moveID)
}

// moveWorker is a worker of window moves only, on a task queue of its own.
func moveWorker(t *testing.T, queue string, changer activities.WindowChanger) sdkworker.Worker {
	t.Helper()
	w := sdkworker.New(temporal, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.WindowMove, workflow.RegisterOptions{Name: workflows.WindowMoveWorkflowName})
	w.RegisterActivity(&activities.WindowMoves{Registrations: registrations.NewStore(database), Changer: changer})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

// The worker running a move dies half-way through a batch, with updates
// sent and others in flight, and never reports: the batch times out (no
// heartbeat) and another worker sends it again, with the same update ids.
// Every registration is moved once, and the move's count is exact.
func TestWindowMoveSurvivesWorkerCrash(t *testing.T) {
	const area, n, queue = "0500", 40, "window-moves-crash-test"
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	ids := openRegistrations(t, area, n)
	shortMoves(t, 10, 0)
	svc := *server.Registering
	svc.TaskQueue = queue // the move's workflow and activities run on the workers below
	changer := workflows.WindowChanger{Client: temporal}

	crashing := &crashingChanger{WindowChanger: changer, after: 14, release: make(chan struct{})}
	defer close(crashing.release)
	first := moveWorker(t, queue, crashing)
	w := catalog.Window{StartsAt: time.Now().Add(-3 * time.Hour).Truncate(time.Second), EndsAt: time.Now().AddDate(0, 0, 42).Truncate(time.Second)}
	m, err := svc.MoveWindow(context.Background(), area, year, sitting, w)
	if err != nil || m.Done {
		t.Fatalf("the move: %+v, %v", m, err)
	}
	deadline := time.Now().Add(time.Minute)
	for crashing.sent.Load() <= crashing.after+1 { // the second batch half sent, the rest hanging
		if time.Now().After(deadline) {
			t.Fatalf("%d updates sent", crashing.sent.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	first.Stop() // the process is gone: its activity never reports

	second := &countingChanger{WindowChanger: changer}
	defer moveWorker(t, queue, second).Stop()
	done, _ := followMove(t, admin(t), m.Operation, 3*time.Minute)
	if done.body["total"].(float64) != n || done.body["moved"].(float64) != n || len(done.body["not_moved"].([]any)) != 0 {
		t.Errorf("done: %s", done.raw)
	}
	checkMovedOnce(t, ids, m.Operation, w)
	// The second worker sent the crashed batch again (its 4 updates
	// already applied, deduplicated by Temporal, and the 6 that hung) and
	// the two batches after it. It may send more: a look again that reads
	// the read model before a moved registration's window is recorded there
	// sends its update once more, which Temporal also deduplicates (as
	// checkMovedOnce proved above).
	if got := second.sent.Load(); got < n-10 {
		t.Errorf("the second worker sent %d updates, want at least %d", got, n-10)
	}
}

// BenchmarkWindowMove moves the window of one exam area holding N open
// registrations through the API (PUT, then GET until done) and reports
// registrations moved per second. N is ZIKAO_WINDOW_MOVE_N (default 1,000;
// at most 50,000); creating them (openRegistrations) is not timed:
//
//	ZIKAO_WINDOW_MOVE_N=20000 go test -run '^$' -bench WindowMove -benchtime 1x -timeout 60m ./api/
func BenchmarkWindowMove(b *testing.B) {
	n := 1000
	if v := os.Getenv("ZIKAO_WINDOW_MOVE_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 50000 {
			b.Fatalf("ZIKAO_WINDOW_MOVE_N=%q: 1 to 50000", v)
		}
	}
	areas := []string{"0600", "0700", "0800", "0900"} // no test registers there
	a := staff(b, "admin@example.com")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		area := areas[i%len(areas)]
		created := time.Now()
		openRegistrations(b, area, n)
		b.Logf("%d registrations of %s written and started in %s", n, area, time.Since(created).Round(time.Millisecond))
		time.Sleep(5 * time.Second) // let their first workflow tasks run
		b.StartTimer()
		start := time.Now()
		ends := time.Now().AddDate(0, 0, 50+i).Truncate(time.Second)
		r := a.json("PUT", "/admin/windows/"+area, map[string]any{"starts_at": time.Now().Add(-time.Hour).Format(time.RFC3339), "ends_at": ends.Format(time.RFC3339)})
		if r.status != 200 && r.status != 202 {
			b.Fatalf("PUT: %d %s", r.status, r.raw)
		}
		answered := time.Since(start)
		op := r.str("operation_id")
		var last response
		for {
			last = a.json("GET", "/admin/window-moves/"+op, nil)
			if last.status != 200 {
				b.Fatalf("GET: %d %s", last.status, last.raw)
			}
			if last.str("state") == "done" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		moved := last.body["moved"].(float64)
		b.ReportMetric(moved/elapsed.Seconds(), "registrations/s")
		b.Logf("moved %.0f of %.0f (not moved %d) in %s; the PUT answered %d after %s",
			moved, last.body["total"].(float64), len(last.body["not_moved"].([]any)), elapsed.Round(time.Millisecond), r.status, answered.Round(time.Millisecond))
		b.StartTimer()
	}
}
