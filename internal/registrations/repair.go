package registrations

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
	"zikao/internal/mail"
	"zikao/internal/status"
)

// Unchecked lists the registrations to check, least recently checked
// first: those that changed since they were last checked (or never were),
// and the open ones not checked since recheck; none that moved or was
// checked since cutoff.
func (s *Store) Unchecked(ctx context.Context, cutoff, recheck time.Time, limit int) ([]Registration, error) {
	regs := []Registration{}
	err := s.db.SelectContext(ctx, &regs, `
		SELECT * FROM registrations
		WHERE (`+status.OpenSQL+` OR checked_at < updated_at)
		  AND updated_at < $1 AND checked_at < $1
		  AND (checked_at < updated_at OR checked_at <= created_at OR checked_at < $2)
		ORDER BY checked_at LIMIT $3`, cutoff, recheck, limit)
	if err != nil {
		return nil, fmt.Errorf("list registrations to check: %w", err)
	}
	return regs, nil
}

// Checked notes that the reconciler looked at a registration.
func (s *Store) Checked(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE registrations SET checked_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("mark registration %s checked: %w", id, err)
	}
	return nil
}

// Snapshot is what the read model of a registration should show, as its
// workflow holds it.
type Snapshot struct {
	Status   string
	Seq      int
	ReasonID string
	ReportID string
	Online   Online
}

// Restore sets a registration back to its workflow's snapshot, removing the
// history entries after it (written by workflow tasks Temporal never
// committed).
func (s *Store) Restore(ctx context.Context, id string, snap Snapshot) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM registration_history WHERE registration_id = $1 AND seq > $2`, id, snap.Seq); err != nil {
			return fmt.Errorf("restore history of %s: %w", id, err)
		}
		if err := s.retract(ctx, tx, id, snap.Seq+1); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE registrations SET status = $3, last_seq = $2, updated_at = now(),
				stage_since = CASE WHEN status = $3 THEN stage_since ELSE COALESCE(
					(SELECT at FROM registration_history WHERE registration_id = $1 AND seq = $2), now()) END,`+reasons+`,
				report_id = NULLIF($4, '')::uuid,
				ticket_number = CASE WHEN $3 = 'completed' THEN ticket_number END
			WHERE id = $1 AND last_seq >= $2`, id, snap.Seq, snap.Status, snap.ReportID, snap.ReasonID)
		if err != nil {
			return fmt.Errorf("restore registration %s: %w", id, err)
		}
		return writeOnline(ctx, tx, id, snap.Seq, time.Time{}, &snap.Online, nil)
	})
}

// Close ends an open registration whose workflow is gone, with a history
// entry at seq; its other fields stay as they are.
func (s *Store) Close(ctx context.Context, id string, seq int, st, byRole, note string) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		at := time.Now()
		fresh, err := s.writeHistory(ctx, tx, historyEntry{RegistrationID: id, Seq: seq, Status: st, At: at, ByRole: byRole, Note: note})
		if err != nil || !fresh {
			return err
		}
		if err := s.retract(ctx, tx, id, seq); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE registrations SET status = $3, last_seq = $2, updated_at = $4, stage_since = $4
			WHERE id = $1 AND last_seq < $2 AND `+status.OpenSQL, id, seq, st, at)
		if err != nil {
			return fmt.Errorf("close registration %s: %w", id, err)
		}
		if kind, ok := noticeOf(Transition{Status: st}); ok {
			return notify(ctx, tx, res, mail.Notice{RegistrationID: id, Seq: seq, Kind: kind})
		}
		return nil
	})
}
