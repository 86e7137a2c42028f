package temporalsetup

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
	"zikao/internal/testenv"
	"zikao/workflows"
)

// retentionSchedules are the retention schedules with their workflows on
// taskQueue, as `zikao temporal setup` makes them.
func retentionSchedules(taskQueue string, change func(*workflows.RetentionSchedule)) []client.ScheduleOptions {
	var out []client.ScheduleOptions
	for _, s := range workflows.RetentionSchedules() {
		if change != nil {
			change(&s)
		}
		out = append(out, s.Options(taskQueue))
	}
	return out
}

// TestEnsureSchedulesOnARealServer: on the Temporal dev server, the first
// setup creates the retention schedules; run again it changes nothing; a
// new task queue or interval updates them, leaving a paused one paused;
// a schedule's run does its job on a worker of the task queue.
func TestEnsureSchedulesOnARealServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := testenv.Temporal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := srv.Client()
	ids := []string{workflows.RetentionScheduleFiles, workflows.RetentionScheduleMessages, workflows.RetentionScheduleExpired}

	var out bytes.Buffer
	r, err := EnsureSchedules(ctx, c, &out, retentionSchedules("q1", nil)...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Created, ids) || len(r.Updated)+len(r.Present) > 0 {
		t.Fatalf("first setup: %+v, want all created", r)
	}
	t.Logf("first setup:\n%s", out.String())
	for _, s := range workflows.RetentionSchedules() {
		d := describeSchedule(ctx, t, c, s.ID)
		a := d.Schedule.Action.(*client.ScheduleWorkflowAction)
		var in workflows.RetentionInput
		if err := converter.GetDefaultDataConverter().FromPayload(payload(t, a.Args), &in); err != nil {
			t.Fatal(err)
		}
		wantIntervals := []client.ScheduleIntervalSpec{{Every: s.Every, Offset: s.Offset}}
		if !slices.Equal(d.Schedule.Spec.Intervals, wantIntervals) || a.TaskQueue != "q1" || a.Workflow != workflows.RetentionWorkflowName ||
			in.Job != s.Job || d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || a.StaticSummary != s.Summary {
			t.Fatalf("schedule %s: %+v, %+v, job %q, overlap %s", s.ID, d.Schedule.Spec.Intervals, a, in.Job, d.Schedule.Policy.Overlap)
		}
	}

	again := func(taskQueue string, change func(*workflows.RetentionSchedule)) ScheduleReport {
		t.Helper()
		out.Reset()
		r, err := EnsureSchedules(ctx, c, &out, retentionSchedules(taskQueue, change)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("setup:\n%s", out.String())
		return r
	}
	updated := describeSchedule(ctx, t, c, workflows.RetentionScheduleFiles).Info.LastUpdateAt
	if r := again("q1", nil); !slices.Equal(r.Present, ids) || len(r.Created)+len(r.Updated) > 0 {
		t.Fatalf("setup run again: %+v, want all present", r)
	}
	if at := describeSchedule(ctx, t, c, workflows.RetentionScheduleFiles).Info.LastUpdateAt; !at.Equal(updated) {
		t.Fatalf("setup run again updated a schedule (at %s)", at)
	}

	// An operator pauses the files' schedule; a new release runs the
	// workflows on another task queue, and the expired rows every 30 minutes.
	if err := c.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleFiles).Pause(ctx, client.SchedulePauseOptions{Note: "audit"}); err != nil {
		t.Fatal(err)
	}
	every30 := func(s *workflows.RetentionSchedule) {
		if s.Job == workflows.RetentionJobExpired {
			s.Every, s.Offset = 30*time.Minute, 0
		}
	}
	if r := again("q2", every30); !slices.Equal(r.Updated, ids) || len(r.Created)+len(r.Present) > 0 {
		t.Fatalf("setup with a new task queue: %+v, want all updated", r)
	}
	if !strings.Contains(out.String(), "task queue was q1") || !strings.Contains(out.String(), "PAUSED") {
		t.Fatalf("the setup's report does not say what changed, or that a schedule is paused:\n%s", out.String())
	}
	for _, id := range ids {
		d := describeSchedule(ctx, t, c, id)
		if q := d.Schedule.Action.(*client.ScheduleWorkflowAction).TaskQueue; q != "q2" {
			t.Fatalf("schedule %s runs on %s after the update", id, q)
		}
		if paused := d.Schedule.State.Paused; paused != (id == workflows.RetentionScheduleFiles) {
			t.Fatalf("schedule %s: paused %v after the update", id, paused)
		}
	}
	if iv := describeSchedule(ctx, t, c, workflows.RetentionScheduleExpired).Schedule.Spec.Intervals; !slices.Equal(iv, []client.ScheduleIntervalSpec{{Every: 30 * time.Minute}}) {
		t.Fatalf("expired rows' intervals after the update: %+v", iv)
	}
	if r := again("q2", every30); !slices.Equal(r.Present, ids) {
		t.Fatalf("setup run again after the update: %+v, want all present", r)
	}

	// The schedule's action runs the retention workflow of its job.
	w := worker.New(c, "q2", worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
	w.RegisterActivityWithOptions(func(ctx context.Context, b activities.RetentionBatch) (activities.RetentionBatchResult, error) {
		return activities.RetentionBatchResult{Deleted: len(b.What), Done: true}, nil
	}, activity.RegisterOptions{Name: "RetentionBatch"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	h := c.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleExpired)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var run *client.ScheduleWorkflowExecution
	for run == nil {
		if ctx.Err() != nil {
			t.Fatal("the triggered schedule started no workflow")
		}
		if a := describeSchedule(ctx, t, c, workflows.RetentionScheduleExpired).Info.RecentActions; len(a) > 0 {
			run = a[len(a)-1].StartWorkflowResult
		}
		time.Sleep(100 * time.Millisecond)
	}
	var res workflows.RetentionResult
	if err := c.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.WorkflowID, workflows.RetentionScheduleExpired) || res.Job != workflows.RetentionJobExpired || res.Batches != 3 ||
		res.Deleted[activities.RetainSessions] != len(activities.RetainSessions) {
		t.Fatalf("the schedule's run %s: %+v", run.WorkflowID, res)
	}
}

func describeSchedule(ctx context.Context, t *testing.T, c client.Client, id string) *client.ScheduleDescription {
	t.Helper()
	d, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if err != nil {
		t.Fatalf("describe schedule %s: %v", id, err)
	}
	return d
}

// payload is a schedule's one argument, as Describe returns it.
func payload(t *testing.T, args []any) *commonpb.Payload {
	t.Helper()
	if len(args) != 1 {
		t.Fatalf("%d arguments, want 1", len(args))
	}
	p, ok := args[0].(*commonpb.Payload)
	if !ok {
		t.Fatalf("argument %T, want a payload", args[0])
	}
	return p
}
