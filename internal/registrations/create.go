package registrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
	"zikao/internal/mail"
	"zikao/internal/status"
)

// ErrNotOpen: the exam area has no confirmation window this sitting, or it is over.
var ErrNotOpen = errors.New("no open confirmation window")

// Create inserts a new registration with its first history entry, giving it
// the exam area's confirmation window as it stands at that moment: the
// window's row is share-locked until the registration is committed, so an
// administrator moving the window waits for it and then finds it among the
// registrations to move. A second open registration of the account or the
// ID number is refused (ErrInProgress, ErrIDInProgress, ErrRegistered) by
// the unique indexes, with ON CONFLICT DO NOTHING so that no refusal writes
// an ID number into PostgreSQL's log. A registration the account already
// made with the same idempotency key is returned with ErrResubmitted.
func (s *Store) Create(ctx context.Context, r *Registration, note string) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		err := tx.QueryRowxContext(ctx, `
			SELECT starts_at, ends_at FROM confirmation_windows
			WHERE exam_area_code = $1 AND year = $2 AND sitting = $3 AND ends_at > $4 FOR SHARE`,
			r.ExamAreaCode, r.Year, r.Sitting, r.TermsAgreedAt).Scan(&r.WindowStartsAt, &r.WindowEndsAt)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotOpen
		}
		if err != nil {
			return fmt.Errorf("read confirmation window: %w", err)
		}
		q, args, err := sqlx.Named(`
			INSERT INTO registrations (id, account_id, kind, status, name, id_number, gender, birth_date, ethnicity,
				phone, address, education, major_type, level, major_code, exam_area_code, prior_school,
				prior_diploma_number, year, sitting, terms_agreed_at, selected_ticket_number, window_starts_at,
				window_ends_at, idempotency_key, last_seq)
			VALUES (:id, :account_id, :kind, :status, :name, :id_number, :gender, :birth_date, :ethnicity,
				:phone, :address, :education, :major_type, :level, :major_code, :exam_area_code, :prior_school,
				:prior_diploma_number, :year, :sitting, :terms_agreed_at, :selected_ticket_number, :window_starts_at,
				:window_ends_at, :idempotency_key, 1)
			ON CONFLICT DO NOTHING
			RETURNING *`, r)
		if err != nil {
			return fmt.Errorf("bind registration: %w", err)
		}
		err = tx.GetContext(ctx, r, tx.Rebind(q), args...)
		if errors.Is(err, sql.ErrNoRows) {
			return conflict(ctx, tx, r)
		}
		if err != nil {
			return fmt.Errorf("insert registration: %w", err)
		}
		first := historyEntry{RegistrationID: r.ID, Seq: 1, Status: r.Status, At: r.CreatedAt, ByRole: "applicant", Note: note, AccountID: r.AccountID}
		if _, err := s.writeHistory(ctx, tx, first); err != nil {
			return err
		}
		if r.Status == status.PreRegistered { // 专科 and 在籍 start there: where and when to go
			if err := enqueue(ctx, tx, mail.Notice{RegistrationID: r.ID, Seq: 1, Kind: mail.PreRegistered}); err != nil {
				return err
			}
		}
		r.History = []HistoryEntry{{Seq: 1, Status: r.Status, At: r.CreatedAt, ByRole: "applicant", Note: note, ByAccountID: &r.AccountID}}
		return nil
	})
}

// ErrResubmitted: the account already submitted with this idempotency key;
// Create has loaded that registration.
var ErrResubmitted = errors.New("submitted before with this idempotency key")

// conflict tells which registration was in the way of r, in the
// transaction that failed to insert it.
func conflict(ctx context.Context, tx *sqlx.Tx, r *Registration) error {
	var found []struct {
		ID        string `db:"id"`
		AccountID int64  `db:"account_id"`
		Status    string `db:"status"`
		SameKey   bool   `db:"same_key"`
	}
	err := tx.SelectContext(ctx, &found, `
		SELECT id, account_id, status, COALESCE(idempotency_key = $3 AND account_id = $1, false) AS same_key
		FROM registrations
		WHERE (account_id = $1 AND idempotency_key = $3)
		   OR (account_id = $1 AND `+status.OpenSQL+`)
		   OR (id_number = $2 AND `+status.HoldsIDNumberSQL+`)
		ORDER BY same_key DESC`, r.AccountID, r.IDNumber, r.IdempotencyKey)
	if err != nil {
		return fmt.Errorf("look up conflicting registrations: %w", err)
	}
	for _, f := range found {
		if f.SameKey {
			id := f.ID
			*r = Registration{}
			if err := tx.GetContext(ctx, r, `SELECT * FROM registrations WHERE id = $1`, id); err != nil {
				return fmt.Errorf("read resubmitted registration: %w", err)
			}
			return ErrResubmitted
		}
	}
	for _, f := range found {
		if f.AccountID == r.AccountID && !status.Terminal(f.Status) {
			return ErrInProgress
		}
	}
	for _, f := range found {
		if f.Status == status.Completed {
			return ErrRegistered
		}
	}
	if len(found) > 0 {
		return ErrIDInProgress
	}
	// The registration in the way has closed meanwhile: the caller tries again.
	return ErrInProgress
}
