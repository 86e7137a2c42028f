package registrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/catalog"
	"zikao/internal/db"
	"zikao/internal/mail"
	"zikao/internal/sms"
	"zikao/internal/status"
)

// Transition is one change of a registration, recorded by the workflow.
// Seq orders the changes: recording the same Seq twice changes nothing.
// UpdateID names the Workflow Update that made it, if one did.
// HistoryLength is the workflow's history length when the workflow task
// that records it started: of two different writes of the same Seq, the
// later task's wins (the earlier one's task was never committed).
type Transition struct {
	RegistrationID string
	Seq            int
	Status         string
	At             time.Time
	ByRole         string
	AccountID      int64  // the account that made the change (0: the system)
	Note           string // a rejection's or annulment's reason (by ReasonID) is appended to it
	ReasonID       string // the reason (decision_reasons) of a rejection, while awaiting a new report, or of the annulment
	ReportID       string // the diploma report on file
	UpdateID       string
	HistoryLength  int
	// Online is the online verification's state after this step, for the
	// steps that change it (nil: unchanged); Try is the try this step
	// records, if it is one.
	Online *Online
	Try    *Try
	// Window is the registration's new confirmation window, for the steps
	// that move it: an administrator's window move, and an area change
	// (Area, 考区变更). Both keep the status and its waiting time.
	Window *catalog.Window
	Area   *AreaChange
}

// AreaChange is an exam-area change (考区变更): the areas' codes, and the
// office's reason (decision_reasons), which the history entry and the
// notice give.
type AreaChange struct {
	From, To string
	ReasonID string
}

// Record writes a transition: the new status and its history entry. It is
// idempotent, so the workflow may retry it. A completed registration is
// final: nothing but a replacement of its own step changes it.
func (s *Store) Record(ctx context.Context, t Transition) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		e := historyEntry{RegistrationID: t.RegistrationID, Seq: t.Seq, Status: t.Status,
			At: t.At, ByRole: t.ByRole, AccountID: t.AccountID, Note: t.Note, ReasonID: t.ReasonID, UpdateID: t.UpdateID, HistoryLength: t.HistoryLength}
		if err := moveNote(ctx, tx, t, &e); err != nil {
			return err
		}
		fresh, err := s.writeHistory(ctx, tx, e)
		if err != nil || !fresh {
			return err
		}
		if err := s.retract(ctx, tx, t.RegistrationID, t.Seq); err != nil {
			return err
		}
		starts, ends := bounds(t.Window)
		// The report on file is accepted (kept from the clean-up of reports
		// never handed over) in the same statement.
		res, err := s.prepared.Exec(ctx, tx, `
			WITH accepted AS (
				UPDATE diploma_reports SET accepted_at = now() WHERE id = NULLIF($6, '')::uuid AND accepted_at IS NULL)
			UPDATE registrations SET status = $3, updated_at = $4, last_seq = $2,
				stage_since = CASE WHEN status = $3 THEN stage_since ELSE $4 END,`+reasons+`,
				report_id = NULLIF($6, '')::uuid,
				ticket_number = CASE WHEN $3 = 'completed' THEN ticket_number END,
				exam_area_code = COALESCE(NULLIF($7, ''), exam_area_code),
				window_starts_at = COALESCE($8, window_starts_at), window_ends_at = COALESCE($9, window_ends_at)
			WHERE id = $1 AND last_seq <= $2`,
			t.RegistrationID, t.Seq, t.Status, t.At, t.ReasonID, t.ReportID, t.Area.to(), starts, ends)
		if err != nil {
			return fmt.Errorf("record status %s of %s: %w", t.Status, t.RegistrationID, err)
		}
		if err := writeOnline(ctx, tx, t.RegistrationID, t.Seq, t.At, t.Online, t.Try); err != nil {
			return err
		}
		if kind, ok := noticeOf(t); ok {
			if err := notify(ctx, tx, res, mail.Notice{RegistrationID: t.RegistrationID, Seq: t.Seq, Kind: kind, ReasonID: e.ReasonID}); err != nil {
				return err
			}
		}
		return nil
	})
}

// reasons sets the rejection or annulment reason of a registration from a
// reason id ($5) and a status ($3). (A refused manual check's reason, on
// the way back to pre_registered, is the online verification's:
// writeOnline.)
const reasons = `
				rejection_reason = CASE WHEN $3 NOT IN ('annulled', 'pre_registered') THEN (SELECT text FROM decision_reasons WHERE id = NULLIF($5, '')::uuid) END,
				annulment_reason = CASE WHEN $3 = 'annulled' THEN (SELECT text FROM decision_reasons WHERE id = NULLIF($5, '')::uuid) END`

// noticeOf tells which e-mail a transition sends the applicant, if any.
func noticeOf(t Transition) (mail.Kind, bool) {
	switch {
	case t.Area != nil:
		return mail.AreaChanged, true // the change's reason is the history entry's
	case t.Window != nil:
		return mail.WindowMoved, true
	case t.Try != nil || t.Status == status.IdentityReview:
		return "", false // a try (failed: still pre-registered), or the manual check asked for
	case t.Status == status.PreRegistered && t.Online != nil && t.ReasonID != "":
		return mail.IdentityRefused, true // the manual check refused: the reason is t.ReasonID's
	case t.Status == status.AwaitingReport && t.ReasonID != "":
		return mail.Rejected, true // a review rejected the report: the reason is t.ReasonID's
	case t.Status == status.PreRegistered:
		return mail.PreRegistered, true
	case t.Status == status.Expired:
		return mail.Expired, true
	case t.Status == status.Withdrawn:
		return mail.Withdrawn, true
	case t.Status == status.Annulled:
		return mail.Annulled, true // the annulment's reason is t.ReasonID's
	}
	return "", false
}

// notify writes the e-mail and the SMS of a step into their outboxes when
// the update res changed the registration's row (the step is the read
// model's news), in the transaction that wrote it: the messages and the
// change commit together.
func notify(ctx context.Context, tx *sqlx.Tx, res sql.Result, n mail.Notice) error {
	changed, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("e-mail of %s: %w", n.RegistrationID, err)
	}
	if changed == 0 {
		return nil
	}
	return enqueue(ctx, tx, n)
}

// enqueue writes the e-mail and the SMS of a step (the SMS goes to the
// account's bound phone, else the registration's).
func enqueue(ctx context.Context, tx *sqlx.Tx, n mail.Notice) error {
	if err := mail.Enqueue(ctx, tx, n); err != nil {
		return err
	}
	return sms.EnqueueNotice(ctx, tx, n.RegistrationID, n.Seq, sms.Purpose(n.Kind))
}

// retract removes the unsent e-mails and SMS of a registration's steps
// from seq on: those steps were written by a workflow task Temporal never
// committed, and are being replaced. A message a sender is delivering at
// this moment is left to it (SKIP LOCKED, never waited for); when that
// delivery fails, the message is left behind with its entry gone, so
// retract runs at every step written, not only where history entries are
// removed: the next write of that step removes it. Both outboxes in one
// statement (a data-modifying WITH runs whether or not it is read).
func (s *Store) retract(ctx context.Context, tx *sqlx.Tx, registrationID string, seq int) error {
	_, err := s.prepared.Exec(ctx, tx, `
		WITH mail AS (
			DELETE FROM outbox WHERE id IN (
				SELECT id FROM outbox WHERE registration_id = $1 AND seq >= $2 AND accepted_at IS NULL
				FOR UPDATE SKIP LOCKED))
		DELETE FROM sms_outbox WHERE id IN (
			SELECT id FROM sms_outbox WHERE registration_id = $1 AND seq >= $2 AND accepted_at IS NULL
			FOR UPDATE SKIP LOCKED)`, registrationID, seq)
	if err != nil {
		return fmt.Errorf("retract unsent e-mails and SMS of %s: %w", registrationID, err)
	}
	return nil
}

// historyEntry is a history row as written.
type historyEntry struct {
	RegistrationID string
	Seq            int
	Status         string
	At             time.Time
	ByRole         string
	AccountID      int64 // 0: the system
	Note           string
	ReasonID       string
	UpdateID       string
	HistoryLength  int
}

// writeHistory inserts a history entry and reports whether the registration
// row must follow it. Written before with the same status, role and update,
// it is a retry: nothing to do. Written before differently, the write with
// the longer workflow history wins: the other came from a workflow task that
// Temporal never committed (a worker died after the write; the update it
// handled was lost), or is that task, late.
func (s *Store) writeHistory(ctx context.Context, tx *sqlx.Tx, e historyEntry) (bool, error) {
	insert := func() (int64, error) {
		res, err := s.prepared.Exec(ctx, tx, `
			INSERT INTO registration_history (registration_id, seq, status, at, by_role, note, update_id, history_length, by_account_id)
			VALUES ($1, $2, $3, $4, $5, $6 || COALESCE((SELECT text FROM decision_reasons WHERE id = NULLIF($7, '')::uuid), ''),
				NULLIF($8, ''), $9, NULLIF($10, 0))
			ON CONFLICT DO NOTHING`, e.RegistrationID, e.Seq, e.Status, e.At, e.ByRole, e.Note, e.ReasonID, e.UpdateID, e.HistoryLength, e.AccountID)
		if db.IsForeignKeyViolation(err) {
			return 0, ErrNotFound
		}
		if err != nil {
			return 0, fmt.Errorf("record history of %s: %w", e.RegistrationID, err)
		}
		return res.RowsAffected()
	}
	if n, err := insert(); err != nil || n == 1 {
		return n == 1, err
	}
	var old struct {
		Status        string  `db:"status"`
		ByRole        string  `db:"by_role"`
		UpdateID      *string `db:"update_id"`
		HistoryLength int     `db:"history_length"`
	}
	err := tx.GetContext(ctx, &old, `SELECT status, by_role, update_id, history_length FROM registration_history
		WHERE registration_id = $1 AND seq = $2 FOR UPDATE`, e.RegistrationID, e.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("history of %s: update %s recorded at another step", e.RegistrationID, e.UpdateID)
	}
	if err != nil {
		return false, fmt.Errorf("read history of %s: %w", e.RegistrationID, err)
	}
	if old.Status == e.Status && old.ByRole == e.ByRole && deref(old.UpdateID) == e.UpdateID {
		return false, nil // a retry of this very write
	}
	if old.HistoryLength >= e.HistoryLength {
		slog.WarnContext(ctx, "history entry from a superseded workflow task ignored",
			"registration_id", e.RegistrationID, "seq", e.Seq, "status", e.Status)
		return false, nil
	}
	slog.WarnContext(ctx, "history entry of an uncommitted workflow task replaced",
		"registration_id", e.RegistrationID, "seq", e.Seq, "was", old.Status, "now", e.Status)
	if _, err := tx.ExecContext(ctx, `DELETE FROM registration_history WHERE registration_id = $1 AND seq >= $2`,
		e.RegistrationID, e.Seq); err != nil {
		return false, fmt.Errorf("replace history of %s: %w", e.RegistrationID, err)
	}
	n, err := insert()
	return n == 1, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// WindowChange gives a registration a new confirmation window.
type WindowChange struct {
	RegistrationID   string
	StartsAt, EndsAt time.Time
}

// ChangeWindow records a registration's new confirmation window.
func (s *Store) ChangeWindow(ctx context.Context, w WindowChange) error {
	res, err := s.db.ExecContext(ctx, `UPDATE registrations SET window_starts_at = $2, window_ends_at = $3 WHERE id = $1`,
		w.RegistrationID, w.StartsAt, w.EndsAt)
	if err != nil {
		return fmt.Errorf("change window of %s: %w", w.RegistrationID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
