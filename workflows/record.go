package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zikao/internal/registrations"
	"zikao/internal/status"
)

// untilDone is the retry deadline of read-model writes: they wait for
// PostgreSQL to come back, however long it is away. (A zero
// ScheduleToCloseTimeout would not do: the SDK replaces it with
// StartToCloseTimeout.)
const untilDone = 10 * 365 * 24 * time.Hour

// quickTries is how long an activity is tried as a local activity (three
// tries, 1 s and 2 s apart) before it waits as a regular one. It stays under
// the 8 s after which the SDK heartbeats the workflow task.
const quickTries = 5 * time.Second

// From these versions on, an activity still failing after quickTries waits
// as a regular activity: a read-model write (versionLongWait), the diploma
// registry's question (versionLongAsk). Two ids, because a version holds for
// the rest of a workflow: an old history whose registry question failed
// after its hour replays DefaultVersion for the question, and its later
// writes must still take the new way.
const (
	versionLongWait = "long-wait-as-activity"
	versionLongAsk  = "long-ask-as-activity"
)

// localActivity sets the options of a local activity, retried with backoff
// (at most a minute apart) for scheduleToClose.
func localActivity(ctx workflow.Context, summary string, scheduleToClose time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: scheduleToClose,
		RetryPolicy:            retryPolicy,
	})
}

var retryPolicy = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}

// run runs an activity of the workflow's own (a read-model write, the
// diploma registry's question) and waits up to scheduleToClose for it. It is
// tried as a local activity first, which costs the history one marker. If it
// still fails after quickTries (PostgreSQL or the registry away), it goes on
// as a regular activity, retried by the server: a local activity's long
// retries would add a timer and a workflow task to the history for every
// try, a regular activity's add nothing until it ends. The activity is the
// same idempotent function either way.
func run(ctx workflow.Context, version, summary string, scheduleToClose time.Duration, activity, arg, result any) error {
	err := workflow.ExecuteLocalActivity(localActivity(ctx, summary, quickTries), activity, arg).Get(ctx, result)
	if err == nil || temporal.IsCanceledError(err) || nonRetryable(err) {
		return err
	}
	if workflow.GetVersion(ctx, version, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return err // an old history: its local activity failed after scheduleToClose
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary + " (waiting)",
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: scheduleToClose,
		RetryPolicy:            retryPolicy,
	})
	return workflow.ExecuteActivity(ctx, activity, arg).Get(ctx, result)
}

// nonRetryable tells an activity's permanent failure (see activities).
func nonRetryable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}

// record writes a new status to the read model (run: retried until it
// succeeds), then moves the workflow and its search attribute there.
// byAccount is the account that made the step (0 for the system). Not even
// a cancellation interrupts the write.
func (r *registration) record(ctx workflow.Context, next, byRole string, byAccount int64, note string) error {
	return r.recordStep(ctx, r.step(ctx, next, byRole, byAccount, note))
}

// step is the transition to next, as record writes it.
func (r *registration) step(ctx workflow.Context, next, byRole string, byAccount int64, note string) registrations.Transition {
	return registrations.Transition{
		RegistrationID: r.in.RegistrationID,
		Seq:            r.seq + 1,
		Status:         next,
		At:             workflow.Now(ctx),
		ByRole:         byRole,
		AccountID:      byAccount,
		Note:           note,
		ReasonID:       r.reasonID,
		ReportID:       r.reportID,
		UpdateID:       r.updateID,
		HistoryLength:  workflow.GetInfo(ctx).GetCurrentHistoryLength(),
	}
}

// recordStep writes a transition (record) and moves the workflow there.
func (r *registration) recordStep(ctx workflow.Context, t registrations.Transition) error {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	if err := run(ctx, versionLongWait, "record "+t.Status, untilDone, a.Record, t, nil); err != nil {
		return fmt.Errorf("record %s: %w", t.Status, err)
	}
	if t.Online != nil {
		r.online = *t.Online
	}
	r.moveTo(ctx, t.Status)
	return nil
}

// complete records the completion (the identity confirmed on site, online
// or by the office's manual check) and issues the admission ticket number.
// The number stays in PostgreSQL: the activity's result is not kept (old
// histories hold it; new ones need not).
func (r *registration) complete(ctx workflow.Context, c registrations.Completion) error {
	c.RegistrationID, c.Seq, c.At = r.in.RegistrationID, r.seq+1, workflow.Now(ctx)
	c.UpdateID, c.HistoryLength = r.updateID, workflow.GetInfo(ctx).GetCurrentHistoryLength()
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	if err := run(ctx, versionLongWait, "issue admission ticket", untilDone, a.Complete, c, nil); err != nil {
		return fmt.Errorf("complete registration: %w", err)
	}
	if c.Online != nil {
		r.online = *c.Online
	}
	r.moveTo(ctx, status.Completed)
	return nil
}

func (r *registration) moveTo(ctx workflow.Context, next string) {
	r.seq++
	changed := r.status != next // a failed online try stays pre-registered
	r.status = next
	if changed {
		if err := workflow.UpsertTypedSearchAttributes(ctx, StatusKey.ValueSet(next)); err != nil {
			workflow.GetLogger(ctx).Error("Upsert of RegistrationStatus failed", "Error", err)
		}
	}
	workflow.SetCurrentDetails(ctx, r.details())
}
