package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zikao/activities"
)

// WindowMoveWorkflowName is the registered name of the window move workflow.
const WindowMoveWorkflowName = "WindowMove"

// Defaults of a window move: registrations per batch activity, and how many
// a run handles before it continues as new (its history stays a few hundred
// events, far below Temporal's limits, whatever the size of the area).
const (
	DefaultMoveBatch         = 500
	DefaultMoveContinueAfter = 5000
)

// A registration not moved on one look (its workflow still starting, say)
// is looked for again, up to windowMoveLooks looks, windowMoveLookAgain apart.
const (
	windowMoveLooks     = 3
	windowMoveLookAgain = 2 * time.Second
)

// WindowMoveWorkflowID is the workflow ID of a window move: from the
// move's opaque id, no personal data.
func WindowMoveWorkflowID(moveID string) string { return "window-move-" + moveID }

// WindowMoveInput starts a window move. The fields after Window are the
// progress a run hands to the next when it continues as new.
type WindowMoveInput struct {
	MoveID        string
	ExamAreaCode  string
	Year, Sitting int
	Window        Window
	BatchSize     int // registrations per batch (0: DefaultMoveBatch)
	ContinueAfter int // registrations a run handles before it continues as new (0: DefaultMoveContinueAfter)

	Begun          bool   // WindowMoveBegin has run: Total is counted
	Total          int    // registrations to move, as counted when the move began
	Look           int    // 0, 1, 2: which look for registrations off the window
	After          string // the last registration id handled in this look ("" at its start)
	Moved          int    // moved so far (every look)
	NotMovedInLook int    // not moved so far in this look
	Ended          int    // ended meanwhile, so far
	Runs           int    // runs before this one
}

// WindowMoveResult is a finished window move's outcome, as its last
// activity reads it; the registrations not moved are listed in PostgreSQL
// (registrations.Store.WindowMove).
type WindowMoveResult = activities.WindowMoveSummary

// WindowMoveStartOptions are the options to start window move moveID of
// an exam area: an ID from the move's id, a summary for operators.
func WindowMoveStartOptions(in WindowMoveInput, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       WindowMoveWorkflowID(in.MoveID),
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            fmt.Sprintf("调整现场确认时间 · 考区 %s", in.ExamAreaCode),
		StaticDetails: fmt.Sprintf("Window move `%s`\n\n- exam area: %s\n- sitting: %d-%d\n- new confirmation window: %s – %s",
			in.MoveID, in.ExamAreaCode, in.Year, in.Sitting,
			in.Window.StartsAt.Format(time.RFC3339), in.Window.EndsAt.Format(time.RFC3339)),
	}
}

var wm *activities.WindowMoves

// WindowMove moves the open registrations of an exam area and sitting to a
// new confirmation window (the catalog already holds it), as an operation
// of its own:
//
//	begin: wait for earlier moves of the area to stop; count the registrations off the window
//	look 1: page through them by id; each page a batch activity that sends the
//	        change-window update (update id from the move: applied once) to each,
//	        a bounded number at a time, and records moved / not moved / ended
//	looks 2 and 3, 2 s apart: the same for those still off the window (workflows
//	        still starting, refusals, Temporal away), while there are any
//	finish: mark the move done
//
// A run continues as new after ContinueAfter registrations, carrying the
// cursor and the counts. A later move of the same area supersedes this one:
// its next batch sends nothing, and it finishes at once.
func WindowMove(ctx workflow.Context, in WindowMoveInput) (WindowMoveResult, error) {
	batch, continueAfter := in.BatchSize, in.ContinueAfter
	if batch <= 0 {
		batch = DefaultMoveBatch
	}
	if continueAfter <= 0 {
		continueAfter = DefaultMoveContinueAfter
	}
	spec := activities.WindowMoveSpec{MoveID: in.MoveID, ExamAreaCode: in.ExamAreaCode, Year: in.Year, Sitting: in.Sitting,
		StartsAt: in.Window.StartsAt, EndsAt: in.Window.EndsAt}
	forever := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: forever})

	if !in.Begun {
		begin := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Minute,
			HeartbeatTimeout: 30 * time.Second, RetryPolicy: forever, Summary: "wait for earlier moves; count"})
		if err := workflow.ExecuteActivity(begin, wm.WindowMoveBegin, spec).Get(ctx, &in.Total); err != nil {
			return WindowMoveResult{}, fmt.Errorf("begin window move: %w", err)
		}
		in.Begun = true
	}
	details := func() {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%d of %d moved** (look %d of %d; %d ended meanwhile; %d not moved in this look; run %d)",
			in.Moved, in.Total, in.Look+1, windowMoveLooks, in.Ended, in.NotMovedInLook, in.Runs+1))
	}
	details()

	handled, superseded := 0, ""
	for in.Look < windowMoveLooks {
		var ids []string
		err := workflow.ExecuteActivity(short, wm.WindowMoveList, activities.WindowMovePage{WindowMoveSpec: spec, After: in.After, Limit: batch}).Get(ctx, &ids)
		if err != nil {
			return WindowMoveResult{}, fmt.Errorf("list registrations to move: %w", err)
		}
		if len(ids) == 0 {
			if in.After == "" {
				break // nobody (left) off the window
			}
			in.Look, in.After, in.NotMovedInLook = in.Look+1, "", 0 // look again from the start
			continue
		}
		if in.Look > 0 && in.After == "" {
			// Let workflows being started start.
			if err := workflow.Sleep(ctx, windowMoveLookAgain); err != nil {
				return WindowMoveResult{}, err
			}
		}
		send := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 15 * time.Minute,
			HeartbeatTimeout: 20 * time.Second, RetryPolicy: forever, Summary: fmt.Sprintf("move %d registrations", len(ids))})
		var res activities.WindowMoveBatchResult
		if err := workflow.ExecuteActivity(send, wm.WindowMoveBatch, activities.WindowMoveBatch{WindowMoveSpec: spec, RegistrationIDs: ids}).Get(ctx, &res); err != nil {
			return WindowMoveResult{}, fmt.Errorf("move a batch: %w", err)
		}
		if res.SupersededBy != "" {
			superseded = res.SupersededBy
			break
		}
		in.After = ids[len(ids)-1]
		in.Moved, in.NotMovedInLook, in.Ended = in.Moved+res.Moved, in.NotMovedInLook+res.NotMoved, in.Ended+res.Ended
		details()
		if handled += len(ids); handled >= continueAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			in.Runs++
			return WindowMoveResult{}, workflow.NewContinueAsNewError(ctx, WindowMoveWorkflowName, in)
		}
	}

	var sum WindowMoveResult
	if err := workflow.ExecuteActivity(short, wm.WindowMoveFinish, activities.WindowMoveEnd{MoveID: in.MoveID, SupersededBy: superseded}).Get(ctx, &sum); err != nil {
		return WindowMoveResult{}, fmt.Errorf("finish window move: %w", err)
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**done: %d of %d moved**, %d not moved", sum.Moved, sum.Total, sum.NotMoved))
	return sum, nil
}

// WindowChanger sends window moves' decisions through a Temporal client:
// the activities' activities.WindowChanger.
type WindowChanger struct{ Client client.Client }

// ChangeWindow sends the change-window update of window move moveID to a
// registration's workflow; its update id is the move's, so that sent
// again it is applied once.
func (c WindowChanger) ChangeWindow(ctx context.Context, registrationID string, startsAt, endsAt time.Time, moveID string) error {
	err := ChangeWindow(ctx, c.Client, registrationID, Window{StartsAt: startsAt, EndsAt: endsAt}, moveID)
	var notFound *serviceerror.NotFound
	code, refused := IsRefusal(err)
	switch {
	case err == nil:
		return nil
	case refused && code == ErrClosed, temporal.IsCanceledError(err):
		return fmt.Errorf("%w: %w", activities.ErrRegistrationEnded, err)
	case errors.As(err, &notFound):
		// Open in the read model, but no workflow runs it: still starting,
		// or its start failed (the reconciler starts it).
		return fmt.Errorf("no workflow runs registration %s (yet): %w", registrationID, err)
	}
	return err
}

// MoveRunning reports whether the workflow of window move moveID runs.
func (c WindowChanger) MoveRunning(ctx context.Context, moveID string) (bool, error) {
	d, err := c.Client.DescribeWorkflow(ctx, WindowMoveWorkflowID(moveID), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
