package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
)

// RetentionWorkflowName is the registered name of the retention workflow.
const RetentionWorkflowName = "Retention"

// The retention jobs, each run by a Temporal Schedule of its own.
const (
	RetentionJobFiles    = "files"    // online verification's files and reports; file access records
	RetentionJobMessages = "messages" // e-mails and SMS delivered or refused
	RetentionJobExpired  = "expired"  // expired sessions and SMS codes; old throttle rows
)

// The retention schedules' ids (`zikao temporal setup` creates them).
const (
	RetentionScheduleFiles    = "zikao-retention-files"
	RetentionScheduleMessages = "zikao-retention-messages"
	RetentionScheduleExpired  = "zikao-retention-expired"
)

// DefaultRetentionContinueAfter is how many batches a run does before it
// continues as new: its history stays a few thousand events.
const DefaultRetentionContinueAfter = 200

// retentionKinds is what each job deletes, kind after kind.
var retentionKinds = map[string][]string{
	RetentionJobFiles:    {activities.RetainFiles, activities.RetainFileAccesses},
	RetentionJobMessages: {activities.RetainOutbox, activities.RetainSMSOutbox},
	RetentionJobExpired:  {activities.RetainSessions, activities.RetainSMSCodes, activities.RetainThrottleAttempts},
}

// RetentionInput names the job a run does. The fields after ContinueAfter
// are the progress a run hands to the next when it continues as new.
type RetentionInput struct {
	Job           string
	BatchSize     int // rows or files per batch (0: activities.DefaultRetentionBatch)
	ContinueAfter int // batches a run does before it continues as new (0: DefaultRetentionContinueAfter)

	Step    int            // the kind being deleted: an index into the job's kinds
	After   string         // the files' cursor within that kind
	Deleted map[string]int // deleted so far, by kind
	Batches int            // batches so far
	Runs    int            // runs before this one
}

// RetentionResult is what a job deleted, by kind, in how many batches and
// runs.
type RetentionResult struct {
	Job     string
	Deleted map[string]int
	Batches int
	Runs    int
}

var ra *activities.Retention

// Retention deletes the personal data of one job whose time is up, kind
// after kind: each kind batch after batch (an activity each, bounded and
// idempotent) until a batch finds nothing more of it. A run continues as
// new after ContinueAfter batches, carrying the kind, the files' cursor and
// the counts. The periods are the worker's settings (config.Retention).
func Retention(ctx workflow.Context, in RetentionInput) (RetentionResult, error) {
	kinds, ok := retentionKinds[in.Job]
	if !ok {
		return RetentionResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no retention job %q", in.Job), "permanent", nil)
	}
	continueAfter := in.ContinueAfter
	if continueAfter <= 0 {
		continueAfter = DefaultRetentionContinueAfter
	}
	if in.Deleted == nil {
		in.Deleted = map[string]int{}
	}
	details := func() {
		counts := make([]string, len(kinds))
		for i, k := range kinds {
			counts[i] = fmt.Sprintf("%s %d", k, in.Deleted[k])
		}
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s**: deleted %s (%d batches; run %d)",
			in.Job, strings.Join(counts, ", "), in.Batches, in.Runs+1))
	}
	details()

	for batches := 0; in.Step < len(kinds); batches++ {
		if batches >= continueAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			in.Runs++
			return RetentionResult{}, workflow.NewContinueAsNewError(ctx, RetentionWorkflowName, in)
		}
		// A batch failing for some minutes fails the run, to be seen among
		// the schedule's recent actions; the next run starts over (what was
		// deleted stays deleted).
		what := kinds[in.Step]
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 5 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
				MaximumInterval: time.Minute, MaximumAttempts: 10},
			Summary: "delete " + what,
		})
		var res activities.RetentionBatchResult
		err := workflow.ExecuteActivity(actx, ra.RetentionBatch,
			activities.RetentionBatch{Job: in.Job, What: what, After: in.After, Limit: in.BatchSize}).Get(ctx, &res)
		if err != nil {
			return RetentionResult{}, fmt.Errorf("delete %s: %w", what, err)
		}
		in.Deleted[what] += res.Deleted
		in.Batches++
		in.After = res.After
		if res.Done {
			in.Step, in.After = in.Step+1, ""
		}
		details()
	}
	return RetentionResult{Job: in.Job, Deleted: in.Deleted, Batches: in.Batches, Runs: in.Runs}, nil
}

// RetentionSchedule is a retention job's schedule: its id (that of the
// workflows it starts, too), its job, and how often it runs (every Every,
// at Offset past the multiples of Every since the epoch, UTC).
type RetentionSchedule struct {
	ID            string
	Job           string
	Every, Offset time.Duration
	Summary       string // shown in the Temporal UI
}

// RetentionSchedules are the retention jobs' schedules: files and messages
// daily at night in China (03:00 and 03:30, UTC+8), expired rows hourly.
func RetentionSchedules() []RetentionSchedule {
	return []RetentionSchedule{
		{ID: RetentionScheduleFiles, Job: RetentionJobFiles, Every: 24 * time.Hour, Offset: 19 * time.Hour,
			Summary: "保留期清理 · 网上验证材料与学历报告"},
		{ID: RetentionScheduleMessages, Job: RetentionJobMessages, Every: 24 * time.Hour, Offset: 19*time.Hour + 30*time.Minute,
			Summary: "保留期清理 · 已发送的邮件与短信"},
		{ID: RetentionScheduleExpired, Job: RetentionJobExpired, Every: time.Hour, Offset: 5 * time.Minute,
			Summary: "保留期清理 · 过期会话、验证码与限流记录"},
	}
}

// Options are the schedule's options with its workflows on taskQueue: one
// run at a time (a run still going when the next is due skips that one).
func (s RetentionSchedule) Options(taskQueue string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   s.ID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.Every, Offset: s.Offset}}},
		Action: &client.ScheduleWorkflowAction{
			ID:            s.ID,
			Workflow:      RetentionWorkflowName,
			Args:          []any{RetentionInput{Job: s.Job}},
			TaskQueue:     taskQueue,
			StaticSummary: s.Summary,
		},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	}
}
