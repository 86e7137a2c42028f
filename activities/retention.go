package activities

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/config"
	"zikao/internal/files"
	"zikao/internal/retention"
)

// The activity of the retention jobs (workflows.Retention): one bounded
// batch of one kind of personal data whose time is up, deleted. A batch
// run again deletes nothing twice (what it deleted is no longer due), so a
// retry after a crash or a timeout is safe.

// What retention deletes, one kind per batch (the metrics' label "what").
const (
	RetainFiles            = "files"             // online verification's files and reports (their bytes)
	RetainFileAccesses     = "file_accesses"     // records of staff's fetches of files
	RetainOutbox           = "outbox"            // e-mails accepted or refused
	RetainSMSOutbox        = "sms_outbox"        // SMS accepted or given up
	RetainSessions         = "sessions"          // expired sessions
	RetainSMSCodes         = "sms_codes"         // expired SMS codes
	RetainThrottleAttempts = "throttle_attempts" // throttle rows older than throttle.Retention
)

// DefaultRetentionBatch is how many rows (or files) a batch deletes at most.
const DefaultRetentionBatch = 500

// Retention is the retention jobs' activity.
type Retention struct {
	DB      *sqlx.DB
	Files   *files.Store
	Periods config.Retention
	// Deleted counts each batch's deletions by job and kind (a metrics
	// hook: metrics.Retention.Deleted); nil counts nothing.
	Deleted func(job, what string, n int)
}

// RetentionBatch asks for one batch of a job: up to Limit of What. After
// is the files' cursor: the id a batch of files goes on after ("" from the
// start); the other kinds need none (what they delete is gone).
type RetentionBatch struct {
	Job   string
	What  string
	After string
	Limit int // 0: DefaultRetentionBatch
}

// RetentionBatchResult is what a batch deleted, and whether nothing of its
// kind is left to look at: the next batch of files goes on after After.
type RetentionBatchResult struct {
	Deleted int
	After   string
	Done    bool
}

// RetentionBatch deletes one batch, counts it and logs its count (kinds
// and counts only: never an id, an address or a text).
func (a *Retention) RetentionBatch(ctx context.Context, b RetentionBatch) (RetentionBatchResult, error) {
	limit := b.Limit
	if limit <= 0 {
		limit = DefaultRetentionBatch
	}
	var res RetentionBatchResult
	var err error
	switch b.What {
	case RetainFiles:
		var p files.Purged
		p, err = a.Files.PurgeDue(ctx, files.Retention{Online: a.Periods.VerificationFiles, Reports: a.Periods.Reports}, b.After, limit)
		res = RetentionBatchResult{Deleted: p.Files, After: p.Last, Done: p.Last == ""}
	case RetainFileAccesses:
		res.Deleted, err = retention.FileAccesses(ctx, a.DB, a.Periods.FileAccesses, limit)
	case RetainOutbox:
		res.Deleted, err = retention.Outbox(ctx, a.DB, a.Periods.Messages, limit)
	case RetainSMSOutbox:
		res.Deleted, err = retention.SMSOutbox(ctx, a.DB, a.Periods.Messages, limit)
	case RetainSessions:
		res.Deleted, err = retention.Sessions(ctx, a.DB, limit)
	case RetainSMSCodes:
		res.Deleted, err = retention.SMSCodes(ctx, a.DB, limit)
	case RetainThrottleAttempts:
		res.Deleted, err = retention.ThrottleAttempts(ctx, a.DB, limit)
	default:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("retention: no such kind %q", b.What), "permanent", nil)
	}
	if b.What != RetainFiles {
		res.Done = res.Deleted < limit
	}
	if a.Deleted != nil {
		a.Deleted(b.Job, b.What, res.Deleted) // a failed batch of files may have purged some
	}
	if err != nil {
		slog.WarnContext(ctx, "retention batch failed", "job", b.Job, "what", b.What, "deleted", res.Deleted, "error", err)
		return RetentionBatchResult{}, err
	}
	slog.InfoContext(ctx, "retention batch", "job", b.Job, "what", b.What, "deleted", res.Deleted, "done", res.Done)
	return res, nil
}
