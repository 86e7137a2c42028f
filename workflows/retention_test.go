package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/workflows"
)

// The retention workflow's logic, with a fake in place of its activity
// (internal/retention's tests run the deletes on PostgreSQL): the fake
// holds how many rows of each kind are due and the due files' ids, and
// deletes batches of them as the real one does.

type fakeRetention struct {
	mu    sync.Mutex
	due   map[string]int // rows due, by kind
	files []string       // due files' ids, in order
	calls []activities.RetentionBatch
	// fail, when set, makes an attempt fail before it deletes anything.
	fail func(b activities.RetentionBatch, attempt int32) error
}

func (f *fakeRetention) batch(ctx context.Context, b activities.RetentionBatch) (activities.RetentionBatchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, b)
	if f.fail != nil {
		if err := f.fail(b, activity.GetInfo(ctx).Attempt); err != nil {
			return activities.RetentionBatchResult{}, err
		}
	}
	limit := b.Limit
	if limit <= 0 {
		limit = activities.DefaultRetentionBatch
	}
	if b.What == activities.RetainFiles {
		var page []string
		for _, id := range f.files {
			if id > b.After && len(page) < limit {
				page = append(page, id)
			}
		}
		res := activities.RetentionBatchResult{Deleted: len(page)}
		if len(page) == limit {
			res.After = page[len(page)-1]
		}
		res.Done = res.After == ""
		return res, nil
	}
	n := min(limit, f.due[b.What])
	f.due[b.What] -= n
	return activities.RetentionBatchResult{Deleted: n, Done: n < limit}, nil
}

// runRetention runs a job to its end, a run after another as it continues
// as new, checking what each run hands to the next with check (may be
// nil). It returns the result.
func runRetention(t *testing.T, f *fakeRetention, in workflows.RetentionInput, check func(run int, next workflows.RetentionInput)) workflows.RetentionResult {
	t.Helper()
	for run := 1; run <= 20; run++ {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
		env.RegisterActivityWithOptions(f.batch, activity.RegisterOptions{Name: "RetentionBatch"})
		env.ExecuteWorkflow(workflows.RetentionWorkflowName, in)
		if !env.IsWorkflowCompleted() {
			t.Fatal("the retention job did not complete")
		}
		err := env.GetWorkflowError()
		var next *workflow.ContinueAsNewError
		if errors.As(err, &next) {
			if next.WorkflowType.Name != workflows.RetentionWorkflowName {
				t.Fatalf("continued as %s", next.WorkflowType.Name)
			}
			in = workflows.RetentionInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(next.Input, &in); err != nil {
				t.Fatal(err)
			}
			if in.Runs != run {
				t.Fatalf("run %d continued as run %d", run, in.Runs+1)
			}
			if check != nil {
				check(run, in)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.RetentionResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	t.Fatal("the retention job did not end in 20 runs")
	return workflows.RetentionResult{}
}

// whats lists the kinds of the batches, in order.
func whats(calls []activities.RetentionBatch) []string {
	var w []string
	for _, c := range calls {
		w = append(w, c.What)
	}
	return w
}

// TestRetentionBatchesUntilDone: each kind of the job, in turn, batch after
// batch until one deletes fewer than a batch (none left); the totals.
func TestRetentionBatchesUntilDone(t *testing.T) {
	f := &fakeRetention{due: map[string]int{activities.RetainSessions: 1003, activities.RetainThrottleAttempts: 7}}
	res := runRetention(t, f, workflows.RetentionInput{Job: workflows.RetentionJobExpired}, nil)

	want := workflows.RetentionResult{Job: workflows.RetentionJobExpired, Batches: 5, Deleted: map[string]int{
		activities.RetainSessions: 1003, activities.RetainSMSCodes: 0, activities.RetainThrottleAttempts: 7}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	wantCalls := []string{activities.RetainSessions, activities.RetainSessions, activities.RetainSessions,
		activities.RetainSMSCodes, activities.RetainThrottleAttempts}
	if got := whats(f.calls); !slices.Equal(got, wantCalls) {
		t.Fatalf("batches %v, want %v", got, wantCalls)
	}
	for _, c := range f.calls {
		if c.Job != workflows.RetentionJobExpired {
			t.Fatalf("a batch of job %q", c.Job)
		}
	}
}

// TestRetentionContinuesAsNewWithTheCursor: past ContinueAfter batches, a
// run continues as new with the files' cursor and the counts, and the next
// run goes on after the cursor: every file once, in order; then the next
// kind from its start.
func TestRetentionContinuesAsNewWithTheCursor(t *testing.T) {
	f := &fakeRetention{due: map[string]int{activities.RetainFileAccesses: 2}}
	for i := range 25 {
		f.files = append(f.files, fmt.Sprintf("file-%02d", i))
	}
	in := workflows.RetentionInput{Job: workflows.RetentionJobFiles, BatchSize: 4, ContinueAfter: 3}
	res := runRetention(t, f, in, func(run int, next workflows.RetentionInput) {
		// Each run handles 3 batches of 4 files.
		if want := f.files[12*run-1]; next.After != want || next.Step != 0 {
			t.Fatalf("run %d handed on cursor %q of kind %d, want %q of kind 0", run, next.After, next.Step, want)
		}
		if next.Deleted[activities.RetainFiles] != 12*run || next.Batches != 3*run {
			t.Fatalf("run %d handed on %v in %d batches", run, next.Deleted, next.Batches)
		}
		if next.BatchSize != 4 || next.ContinueAfter != 3 {
			t.Fatalf("run %d lost the settings: %+v", run, next)
		}
	})

	want := workflows.RetentionResult{Job: workflows.RetentionJobFiles, Batches: 8, Runs: 2, Deleted: map[string]int{
		activities.RetainFiles: 25, activities.RetainFileAccesses: 2}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	var afters []string
	for _, c := range f.calls {
		if c.What == activities.RetainFiles {
			afters = append(afters, c.After)
		} else if c.After != "" {
			t.Fatalf("a batch of %s after %q", c.What, c.After)
		}
	}
	wantAfters := []string{"", "file-03", "file-07", "file-11", "file-15", "file-19", "file-23"}
	if !slices.Equal(afters, wantAfters) {
		t.Fatalf("batches of files after %q, want %q", afters, wantAfters)
	}
}

// TestRetentionRetriesAFailingBatch: a batch that fails (PostgreSQL away)
// is tried again, and its rows count once.
func TestRetentionRetriesAFailingBatch(t *testing.T) {
	f := &fakeRetention{due: map[string]int{activities.RetainOutbox: 10, activities.RetainSMSOutbox: 3}}
	f.fail = func(b activities.RetentionBatch, attempt int32) error {
		if b.What == activities.RetainSMSOutbox && attempt < 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	res := runRetention(t, f, workflows.RetentionInput{Job: workflows.RetentionJobMessages}, nil)

	want := workflows.RetentionResult{Job: workflows.RetentionJobMessages, Batches: 2, Deleted: map[string]int{
		activities.RetainOutbox: 10, activities.RetainSMSOutbox: 3}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	wantCalls := []string{activities.RetainOutbox, activities.RetainSMSOutbox, activities.RetainSMSOutbox, activities.RetainSMSOutbox}
	if got := whats(f.calls); !slices.Equal(got, wantCalls) {
		t.Fatalf("batches %v, want %v (the failing one tried three times)", got, wantCalls)
	}
}

// TestRetentionRefusesAnUnknownJob: a schedule naming no job fails its run
// at once, deleting nothing.
func TestRetentionRefusesAnUnknownJob(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	f := &fakeRetention{due: map[string]int{}}
	env.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
	env.RegisterActivityWithOptions(f.batch, activity.RegisterOptions{Name: "RetentionBatch"})
	env.ExecuteWorkflow(workflows.RetentionWorkflowName, workflows.RetentionInput{Job: "everything"})
	if err := env.GetWorkflowError(); err == nil || len(f.calls) > 0 {
		t.Fatalf("job everything: %v after %d batches; want an error and none", err, len(f.calls))
	}
}
