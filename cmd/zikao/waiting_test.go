package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/config"
	"zikao/internal/devstack"
)

// The API starts with PostgreSQL and Temporal away, answers /healthz 503
// (the contract's body) until both answer, then 200; 503 again while
// PostgreSQL is stopped, and 200 once it is back.
func TestAPIHealthFollowsPostgresAndTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pg := stoppedPostgres(ctx, t)
	temporalPort := freePort(t)
	cfg := testConfig(t, pg.URL("zikao"), fmt.Sprintf("127.0.0.1:%d", temporalPort))
	cfg.ListenAddress = fmt.Sprintf("127.0.0.1:%d", freePort(t))

	apiCtx, stopAPI := context.WithCancel(ctx)
	exited := make(chan error, 1)
	go func() { exited <- runAPI(apiCtx, cfg) }()
	health := healthChecker(t, cfg.ListenAddress, exited)

	health(http.StatusServiceUnavailable) // both away
	restartPostgres(ctx, t, pg)
	health(http.StatusServiceUnavailable) // Temporal away
	runTemporal(ctx, t, temporalPort)
	health(http.StatusOK)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	health(http.StatusServiceUnavailable)
	restartPostgres(ctx, t, pg)
	health(http.StatusOK)

	stopAPI()
	if err := <-exited; err != nil {
		t.Fatalf("runAPI: %v", err)
	}
}

// The worker starts with PostgreSQL and Temporal away, does not exit, and
// polls its task queue once Temporal is there.
func TestWorkerWaitsForTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	temporalPort := freePort(t)
	cfg := testConfig(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/zikao?sslmode=disable", freePort(t)), fmt.Sprintf("127.0.0.1:%d", temporalPort))

	workerCtx, stopWorker := context.WithCancel(ctx)
	exited := make(chan error, 1)
	go func() { exited <- runWorker(workerCtx, cfg) }()
	select {
	case err := <-exited:
		t.Fatalf("worker exited while PostgreSQL and Temporal were away: %v", err)
	case <-time.After(5 * time.Second):
	}

	temporal := runTemporal(ctx, t, temporalPort)
	deadline := time.Now().Add(time.Minute)
	for pollers(ctx, t, temporal, cfg.TaskQueue) == 0 {
		select {
		case err := <-exited:
			t.Fatalf("worker exited: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no worker polls the task queue a minute after Temporal started")
		}
	}

	stopWorker()
	if err := <-exited; err != nil {
		t.Fatalf("runWorker: %v", err)
	}
}

func testConfig(t *testing.T, databaseURL, temporalAddress string) config.Config {
	t.Helper()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.TemporalAddress, cfg.TemporalNamespace = databaseURL, temporalAddress, "default"
	return cfg
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// stoppedPostgres makes a cluster with database zikao in a temporary
// folder, and stops it.
func stoppedPostgres(ctx context.Context, t *testing.T) *devstack.Postgres {
	t.Helper()
	dir, err := os.MkdirTemp("", "zikao-cmd-test-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg, err := devstack.StartPostgres(ctx, dir, freePort(t), "zikao")
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	return pg
}

func restartPostgres(ctx context.Context, t *testing.T, pg *devstack.Postgres) {
	t.Helper()
	if _, err := devstack.StartPostgres(ctx, pg.Dir, pg.Port, "zikao"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() }) // stopping a stopped cluster fails harmlessly
}

func runTemporal(ctx context.Context, t *testing.T, port int) *testsuite.DevServer {
	t.Helper()
	srv, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{Port: port, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// healthChecker returns a function that waits (up to 30 seconds) until
// GET /healthz answers want, failing the test if the API exits meanwhile.
func healthChecker(t *testing.T, addr string, exited <-chan error) func(want int) {
	client := &http.Client{Timeout: 10 * time.Second}
	return func(want int) {
		t.Helper()
		var last string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			select {
			case err := <-exited:
				t.Fatalf("the API exited: %v", err)
			default:
			}
			status, code, err := getHealth(client, addr)
			if err == nil && status == want && (want == http.StatusOK || code == "temporarily_unavailable") {
				return
			}
			last = fmt.Sprintf("status %d, code %q, error %v", status, code, err)
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("/healthz: want %d, last answer: %s", want, last)
	}
}

func getHealth(client *http.Client, addr string) (status int, code string, err error) {
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code, err
}

func pollers(ctx context.Context, t *testing.T, srv *testsuite.DevServer, taskQueue string) int {
	t.Helper()
	resp, err := srv.Client().DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetPollers())
}
