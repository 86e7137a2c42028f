package registrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
	"zikao/internal/mail"
	"zikao/internal/status"
)

// Completion records a successful on-site confirmation.
type Completion struct {
	RegistrationID string
	Seq            int
	At             time.Time
	Note           string
	PhotoFileID    string
	ByRole         string
	AccountID      int64 // the on-site operator
	UpdateID       string
	HistoryLength  int
	Online         *Online // the online verification's state, when it completes it
	Try            *Try    // the try that completes it (a match), if one does
}

// ErrTicketsExhausted: the 5-digit sequence of an exam area, year and sitting is used up.
var ErrTicketsExhausted = errors.New("admission ticket numbers exhausted for this exam area and sitting")

// Complete marks a registration completed and returns its admission ticket
// number: for a new applicant a fresh number (exam area, 2-digit year,
// sitting, 5-digit sequence) never issued before; for an enrolled applicant
// the selected one, re-activated. Retried, it returns the same number.
func (s *Store) Complete(ctx context.Context, c Completion) (string, error) {
	var ticket string
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var r Registration
		err := tx.GetContext(ctx, &r, `SELECT * FROM registrations WHERE id = $1 FOR UPDATE`, c.RegistrationID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock registration %s: %w", c.RegistrationID, err)
		}
		fresh, err := s.writeHistory(ctx, tx, historyEntry{RegistrationID: r.ID, Seq: c.Seq, Status: status.Completed, At: c.At,
			ByRole: c.ByRole, AccountID: c.AccountID, Note: c.Note, UpdateID: c.UpdateID, HistoryLength: c.HistoryLength})
		switch {
		case err != nil:
			return err
		case r.TicketNumber != nil:
			ticket = *r.TicketNumber
		case !fresh:
			return nil // a write of a superseded workflow task: nothing issued
		case r.SelectedTicketNumber != nil:
			ticket = *r.SelectedTicketNumber
		default:
			if ticket, err = allocateTicket(ctx, tx, r); err != nil {
				return err
			}
		}
		if !fresh {
			return nil
		}
		if err := s.retract(ctx, tx, r.ID, c.Seq); err != nil {
			return err
		}
		res, err := s.prepared.Exec(ctx, tx, `
			UPDATE registrations SET status = 'completed', ticket_number = $3, photo_file_id = $4::uuid, updated_at = $5, last_seq = $2,
				stage_since = CASE WHEN status = 'completed' THEN stage_since ELSE $5 END
			WHERE id = $1 AND last_seq <= $2`, r.ID, c.Seq, ticket, c.PhotoFileID, c.At)
		if err != nil {
			return fmt.Errorf("complete registration %s: %w", r.ID, err)
		}
		if err := writeOnline(ctx, tx, r.ID, c.Seq, c.At, c.Online, c.Try); err != nil {
			return err
		}
		return notify(ctx, tx, res, mail.Notice{RegistrationID: r.ID, Seq: c.Seq, Kind: mail.Completed})
	})
	return ticket, err
}

func allocateTicket(ctx context.Context, tx *sqlx.Tx, r Registration) (string, error) {
	prefix := fmt.Sprintf("%s%02d%d", r.ExamAreaCode, r.Year%100, r.Sitting)
	for {
		var seq int
		err := tx.GetContext(ctx, &seq, `
			INSERT INTO ticket_sequences AS t (prefix, last) VALUES ($1, 1)
			ON CONFLICT (prefix) DO UPDATE SET last = t.last + 1 RETURNING last`, prefix)
		if err != nil {
			return "", fmt.Errorf("next ticket sequence of %s: %w", prefix, err)
		}
		if seq > 99999 {
			return "", ErrTicketsExhausted
		}
		ticket := fmt.Sprintf("%s%05d", prefix, seq)
		// Legacy numbers of the enrolled records are never handed out again.
		var legacy bool
		if err := tx.GetContext(ctx, &legacy, `SELECT EXISTS (SELECT 1 FROM enrolled_records WHERE ticket_number = $1)`, ticket); err != nil {
			return "", fmt.Errorf("check legacy ticket numbers: %w", err)
		}
		if legacy {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tickets (ticket_number, registration_id) VALUES ($1, $2)`, ticket, r.ID); err != nil {
			return "", fmt.Errorf("issue ticket %s: %w", ticket, err)
		}
		return ticket, nil
	}
}
