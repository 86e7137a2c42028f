package registering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// Reconciler finds registrations whose row and workflow disagree for longer
// than Grace, and repairs each the one safe way:
//
//   - a row whose workflow never started (the start failed and nobody
//     submitted again) gets its workflow: the applicant's submission stands;
//   - a row whose workflow is gone or closed without closing it (an operator
//     terminated it) is closed as withdrawn, so that the person may register
//     again;
//   - a row whose workflow completed without the row showing its last step
//     is closed as the workflow ended;
//   - a row ahead of its running workflow (written by a workflow task that
//     Temporal never committed) is set back to what the workflow holds,
//     closed or not.
//
// It also removes what refused or abandoned uploads left behind. It runs in
// the worker, as a loop rather than a Temporal Schedule: it repairs what
// Temporal itself may have lost, so it should not depend on a workflow of
// its own, and it needs nothing but PostgreSQL and the Temporal client. An
// advisory lock lets one worker at a time sweep.
type Reconciler struct {
	Service *Service
	DB      *sqlx.DB
	Every   time.Duration // between sweeps
	Grace   time.Duration // how long row and workflow may disagree
	Batch   int           // registrations looked at per sweep
	// Recheck is how often an open registration that has not changed since
	// it was last found in order is looked at again (a workflow an operator
	// terminated); a new or changed one is looked at after Grace.
	Recheck time.Duration
}

// NewReconciler returns a Reconciler with the defaults: a sweep a minute,
// a minute of grace, 500 registrations a sweep, unchanged open ones again
// once a day.
func NewReconciler(s *Service, db *sqlx.DB) *Reconciler {
	return &Reconciler{Service: s, DB: db, Every: time.Minute, Grace: time.Minute, Batch: 500, Recheck: 24 * time.Hour}
}

// Sweep is what one sweep did.
type Sweep struct {
	Checked, Started, Closed, Restored int
	Discarded                          int64 // abandoned reports and files removed
}

// Run sweeps every Every until ctx ends.
func (rc *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(rc.Every)
	defer t.Stop()
	for {
		sw, err := rc.Once(ctx)
		if err != nil && ctx.Err() == nil {
			slog.WarnContext(ctx, "reconciler sweep failed", "error", err)
		} else if sw.Started+sw.Closed+sw.Restored > 0 || sw.Discarded > 0 {
			slog.InfoContext(ctx, "reconciler sweep", "checked", sw.Checked, "started", sw.Started,
				"closed", sw.Closed, "restored", sw.Restored, "discarded", sw.Discarded)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcilerLock is the advisory lock key of the sweep ("zikao-rc").
const reconcilerLock = 0x7a696b616f2d7263

// Once runs one sweep, unless another worker is sweeping.
func (rc *Reconciler) Once(ctx context.Context) (Sweep, error) {
	var sw Sweep
	conn, err := rc.DB.Connx(ctx)
	if err != nil {
		return sw, fmt.Errorf("reconciler: %w", err)
	}
	defer conn.Close()
	var locked bool
	if err := conn.GetContext(ctx, &locked, `SELECT pg_try_advisory_lock($1)`, int64(reconcilerLock)); err != nil || !locked {
		return sw, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(reconcilerLock))

	store := rc.Service.Registrations
	regs, err := store.Unchecked(ctx, time.Now().Add(-rc.Grace), time.Now().Add(-rc.Recheck), rc.Batch)
	if err != nil {
		return sw, err
	}
	for _, r := range regs {
		if err := rc.check(ctx, r, &sw); err != nil {
			slog.WarnContext(ctx, "reconcile registration", "registration_id", r.ID, "error", err)
			continue // looked at again in the next sweep
		}
		if err := store.Checked(ctx, r.ID); err != nil {
			return sw, err
		}
		sw.Checked++
	}
	n, err := store.DiscardAbandonedReports(ctx, time.Hour)
	sw.Discarded += n
	if err == nil {
		n, err = rc.Service.Files.DiscardOrphans(ctx, time.Hour)
		sw.Discarded += n
	}
	return sw, err
}

// check compares a registration with its workflow and repairs it.
func (rc *Reconciler) check(ctx context.Context, r registrations.Registration, sw *Sweep) error {
	tc := rc.Service.Temporal
	open := !status.Terminal(r.Status)
	d, err := tc.DescribeWorkflow(ctx, workflows.WorkflowID(r.ID), "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound) && open && r.LastSeq == 1:
		if err := rc.Service.ensureStarted(ctx, r); err != nil {
			return err
		}
		slog.WarnContext(ctx, "reconciler started the workflow of a registration whose start had failed", "registration_id", r.ID)
		sw.Started++
		return nil
	case errors.As(err, &notFound) && open:
		return rc.close(ctx, r, sw, status.Withdrawn, "注册流程已不存在，本次注册关闭")
	case errors.As(err, &notFound):
		return nil // closed, and its workflow's history has passed its retention
	case err != nil:
		return err
	}
	switch d.Status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		if !open {
			return nil
		}
		// Ended normally, its last step not in the row: close it as the workflow did.
		var end workflows.State
		if err := tc.GetWorkflow(ctx, workflows.WorkflowID(r.ID), "").Get(ctx, &end); err != nil {
			return fmt.Errorf("read workflow result: %w", err)
		}
		if !status.Terminal(end.Status) {
			end.Status = status.Withdrawn
		}
		return rc.close(ctx, r, sw, end.Status, "与注册流程同步：本次注册已结束")
	default: // terminated, failed, timed out, cancelled
		if !open {
			return nil
		}
		return rc.close(ctx, r, sw, status.Withdrawn, "注册流程已被终止，本次注册关闭")
	}
	if shown, _ := d.TypedSearchAttributes.GetKeyword(workflows.StatusKey); shown == r.Status && !triedSinceChecked(r) {
		return nil
	}
	// The workflow's search attribute is upserted after the row is written:
	// a difference that lasted a minute is worth asking the workflow. So is
	// a failed try of online verification, which leaves the status as it
	// was: the row may hold a try its workflow never committed.
	q, err := tc.QueryWorkflow(ctx, workflows.WorkflowID(r.ID), "", workflows.QuerySnapshot)
	if err != nil {
		return fmt.Errorf("query workflow: %w", err)
	}
	var snap workflows.Snapshot
	if err := q.Get(&snap); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	if snap.Status == r.Status && snap.Seq == r.LastSeq {
		return nil
	}
	if snap.Seq > r.LastSeq {
		return fmt.Errorf("read model behind its workflow (step %d, workflow at %d)", r.LastSeq, snap.Seq)
	}
	if err := rc.Service.Registrations.Restore(ctx, r.ID, registrations.Snapshot(snap)); err != nil {
		return err
	}
	slog.WarnContext(ctx, "reconciler set a registration back to its workflow's state",
		"registration_id", r.ID, "was", r.Status, "now", snap.Status)
	sw.Restored++
	return nil
}

// triedSinceChecked: the row recorded a try of online verification (or
// another step) since the reconciler last looked, and stays pre-registered.
func triedSinceChecked(r registrations.Registration) bool {
	return r.Status == status.PreRegistered && r.OnlineLastResult != nil && r.CheckedAt.Before(r.UpdatedAt)
}

// close closes a registration whose workflow has ended without closing it.
func (rc *Reconciler) close(ctx context.Context, r registrations.Registration, sw *Sweep, st, note string) error {
	if err := rc.Service.Registrations.Close(ctx, r.ID, r.LastSeq+1, st, workflows.BySystem, note); err != nil {
		return err
	}
	slog.WarnContext(ctx, "reconciler closed a registration whose workflow is gone", "registration_id", r.ID)
	sw.Closed++
	return nil
}
