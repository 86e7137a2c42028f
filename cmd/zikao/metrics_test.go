package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"zikao/internal/testenv"
)

// The worker serves, on its own address, the Temporal SDK's metrics (once it
// has polled and run a workflow task), the backlog gauges, and what other
// parts of the worker register on Prometheus's default registry.
func TestWorkerMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, url, stopPostgres, err := testenv.Postgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopPostgres()
	temporalPort := freePort(t)
	srv := runTemporal(ctx, t, temporalPort)
	cfg := testConfig(t, url, fmt.Sprintf("127.0.0.1:%d", temporalPort))
	cfg.TaskQueue = "metrics-test"
	cfg.WorkerMetricsAddress = fmt.Sprintf("127.0.0.1:%d", freePort(t))

	// As the e-mail sender registers its outbox metrics.
	outbox := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zikao_test_default_registry", Help: "test"})
	prometheus.MustRegister(outbox)
	defer prometheus.Unregister(outbox)
	outbox.Set(7)

	workerCtx, stopWorker := context.WithCancel(ctx)
	exited := make(chan error, 1)
	go func() { exited <- runWorker(workerCtx, cfg) }()
	defer func() {
		stopWorker()
		if err := <-exited; err != nil {
			t.Errorf("runWorker: %v", err)
		}
	}()

	// A workflow task for the worker: a type it does not know fails the task.
	run, err := srv.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "metrics-test", TaskQueue: cfg.TaskQueue}, "NoSuchWorkflow")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Client().TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "test over") }()

	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^temporal_request_total\{.*operation="`),
		regexp.MustCompile(`(?m)^temporal_workflow_task_\w+`),
		regexp.MustCompile(`(?m)^temporal_\w+_seconds_bucket\{`),
		regexp.MustCompile(`(?m)^zikao_backlog_up 1$`),
		regexp.MustCompile(`(?m)^zikao_outbox_up [01]$`), // registered by the mail sender's start
		regexp.MustCompile(`(?m)^zikao_test_default_registry 7$`),
		regexp.MustCompile(`(?m)^go_goroutines `),
	}
	var body string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if body = scrapeWorker(t, cfg.WorkerMetricsAddress); missing(body, want) == nil {
			break
		}
	}
	if m := missing(body, want); m != nil {
		t.Fatalf("worker /metrics lacks %v:\n%s", m, body)
	}
	families := map[string]bool{}
	for _, name := range regexp.MustCompile(`(?m)^# TYPE (temporal_\w+)`).FindAllStringSubmatch(body, -1) {
		families[name[1]] = true
	}
	t.Logf("%d lines; %d Temporal SDK families: %v", strings.Count(body, "\n"), len(families), slices.Sorted(maps.Keys(families)))
}

func scrapeWorker(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "" // not listening yet
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("worker /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func missing(body string, want []*regexp.Regexp) []string {
	var out []string
	for _, re := range want {
		if !re.MatchString(body) {
			out = append(out, re.String())
		}
	}
	return out
}
