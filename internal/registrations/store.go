// Package registrations is the read model of registrations in PostgreSQL:
// the API creates a row when an applicant submits, the workflow's
// activities record every later change, and the API serves views, the
// reviewers' inbox and the on-site look-up from it.
package registrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"zikao/internal/db"
	"zikao/internal/status"
)

var (
	// ErrNotFound: no registration with that id (or none for that account).
	ErrNotFound = errors.New("registration not found")
	// ErrInProgress: the account or the ID number already has an open registration.
	ErrInProgress = errors.New("an open registration exists")
	// ErrIDInProgress: the ID number has an open registration (of any account).
	ErrIDInProgress = errors.New("an open registration of this id number exists")
	// ErrRegistered: the ID number is already registered and confirmed on site.
	ErrRegistered = errors.New("id number already registered and confirmed")
)

// Registration is one row of the read model.
type Registration struct {
	ID                   string         `db:"id"`
	AccountID            int64          `db:"account_id"`
	Kind                 string         `db:"kind"`
	Status               string         `db:"status"`
	Name                 string         `db:"name"`
	IDNumber             string         `db:"id_number"`
	Gender               string         `db:"gender"`
	BirthDate            time.Time      `db:"birth_date"`
	Ethnicity            string         `db:"ethnicity"`
	Phone                string         `db:"phone"`
	Address              string         `db:"address"`
	Education            string         `db:"education"`
	MajorType            string         `db:"major_type"`
	Level                string         `db:"level"`
	MajorCode            string         `db:"major_code"`
	ExamAreaCode         string         `db:"exam_area_code"`
	PriorSchool          string         `db:"prior_school"`
	PriorDiplomaNumber   string         `db:"prior_diploma_number"`
	Year                 int            `db:"year"`
	Sitting              int            `db:"sitting"`
	TermsAgreedAt        time.Time      `db:"terms_agreed_at"`
	SelectedTicketNumber *string        `db:"selected_ticket_number"`
	IdempotencyKey       *string        `db:"idempotency_key"`
	TicketNumber         *string        `db:"ticket_number"`
	WindowStartsAt       time.Time      `db:"window_starts_at"`
	WindowEndsAt         time.Time      `db:"window_ends_at"`
	RejectionReason      *string        `db:"rejection_reason"`
	ReportID             *string        `db:"report_id"`
	PhotoFileID          *string        `db:"photo_file_id"`
	LastSeq              int            `db:"last_seq"`
	CreatedAt            time.Time      `db:"created_at"`
	UpdatedAt            time.Time      `db:"updated_at"`
	History              []HistoryEntry `db:"-"`

	// The report on file (from diploma_reports), when there is one.
	ReportFileID            *string `db:"report_file_id"`
	ReportVerificationCode  *string `db:"report_verification_code"`
	ReportNumber            *string `db:"report_number"`
	ReportCertificateNumber *string `db:"report_certificate_number"`
}

// HistoryEntry is one step of a registration.
type HistoryEntry struct {
	Seq    int       `db:"seq" json:"-"`
	Status string    `db:"status" json:"status"`
	At     time.Time `db:"at" json:"at"`
	ByRole string    `db:"by_role" json:"by_role"`
	Note   string    `db:"note" json:"note"`
}

// Store reads and writes the read model.
type Store struct{ db *sqlx.DB }

// NewStore returns a Store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// Create inserts a new registration with its first history entry. A second
// open registration of the same account or ID number fails with
// ErrInProgress: the database's unique indexes decide, so racing requests
// cannot both pass.
func (s *Store) Create(ctx context.Context, r *Registration, note string) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		q, args, err := sqlx.Named(`
			INSERT INTO registrations (id, account_id, kind, status, name, id_number, gender, birth_date, ethnicity,
				phone, address, education, major_type, level, major_code, exam_area_code, prior_school,
				prior_diploma_number, year, sitting, terms_agreed_at, selected_ticket_number, window_starts_at,
				window_ends_at, idempotency_key, last_seq)
			VALUES (:id, :account_id, :kind, :status, :name, :id_number, :gender, :birth_date, :ethnicity,
				:phone, :address, :education, :major_type, :level, :major_code, :exam_area_code, :prior_school,
				:prior_diploma_number, :year, :sitting, :terms_agreed_at, :selected_ticket_number, :window_starts_at,
				:window_ends_at, :idempotency_key, 1)
			RETURNING *`, r)
		if err != nil {
			return fmt.Errorf("bind registration: %w", err)
		}
		if err := tx.GetContext(ctx, r, tx.Rebind(q), args...); err != nil {
			if db.IsUniqueViolation(err, "registrations_open_account_key") || db.IsUniqueViolation(err, "registrations_idempotency_key") {
				return ErrInProgress
			}
			if db.IsUniqueViolation(err, "registrations_active_id_number_key") {
				return s.activeConflict(ctx, r.IDNumber)
			}
			return fmt.Errorf("insert registration: %w", err)
		}
		if err := insertHistory(ctx, tx, r.ID, 1, r.Status, r.CreatedAt, "applicant", note, ""); err != nil {
			return err
		}
		r.History = []HistoryEntry{{Seq: 1, Status: r.Status, At: r.CreatedAt, ByRole: "applicant", Note: note}}
		return nil
	})
}

// activeConflict tells which registration of an ID number was in the way.
func (s *Store) activeConflict(ctx context.Context, idNumber string) error {
	done, err := s.idNumberCompleted(ctx, idNumber)
	if err != nil {
		return err
	}
	if done {
		return ErrRegistered
	}
	return ErrIDInProgress
}

// Delete removes a registration whose workflow could not be started.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM registrations WHERE id = $1 AND last_seq = 1`, id); err != nil {
		return fmt.Errorf("delete registration %s: %w", id, err)
	}
	return nil
}

// OpenBefore returns the open registrations of an account or an ID number
// created before cutoff.
func (s *Store) OpenBefore(ctx context.Context, accountID int64, idNumber string, cutoff time.Time) ([]Registration, error) {
	var regs []Registration
	err := s.db.SelectContext(ctx, &regs, `
		SELECT * FROM registrations
		WHERE (account_id = $1 OR id_number = $2) AND created_at < $3
		  AND status NOT IN ('completed', 'expired', 'withdrawn')`, accountID, idNumber, cutoff)
	if err != nil {
		return nil, fmt.Errorf("look up open registrations: %w", err)
	}
	return regs, nil
}

// idNumberCompleted reports whether an ID number was already registered and
// confirmed on site.
func (s *Store) idNumberCompleted(ctx context.Context, idNumber string) (bool, error) {
	var done bool
	err := s.db.GetContext(ctx, &done, `SELECT EXISTS (SELECT 1 FROM registrations WHERE id_number = $1 AND status = 'completed')`, idNumber)
	if err != nil {
		return false, fmt.Errorf("look up completed registrations: %w", err)
	}
	return done, nil
}

func (s *Store) selectWithHistory(ctx context.Context, where string, args ...any) ([]Registration, error) {
	regs := []Registration{}
	if err := s.db.SelectContext(ctx, &regs, `SELECT * FROM (
			SELECT r.*, d.file_id AS report_file_id, d.verification_code AS report_verification_code,
				d.report_number, d.certificate_number AS report_certificate_number
			FROM registrations r LEFT JOIN diploma_reports d ON d.id = r.report_id) v
		WHERE `+where, args...); err != nil {
		return nil, fmt.Errorf("select registrations: %w", err)
	}
	if len(regs) == 0 {
		return regs, nil
	}
	ids := make([]string, len(regs))
	index := make(map[string]int, len(regs))
	for i, r := range regs {
		ids[i] = r.ID
		index[r.ID] = i
	}
	var rows []struct {
		RegistrationID string `db:"registration_id"`
		HistoryEntry
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT registration_id, seq, status, at, by_role, note FROM registration_history
		WHERE registration_id = ANY($1::uuid[]) ORDER BY registration_id, seq`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("select history: %w", err)
	}
	for _, row := range rows {
		i := index[row.RegistrationID]
		regs[i].History = append(regs[i].History, row.HistoryEntry)
	}
	return regs, nil
}

func (s *Store) one(ctx context.Context, where string, args ...any) (Registration, error) {
	regs, err := s.selectWithHistory(ctx, where, args...)
	if err != nil {
		return Registration{}, err
	}
	if len(regs) == 0 {
		return Registration{}, ErrNotFound
	}
	return regs[0], nil
}

// Get returns one registration with its history.
func (s *Store) Get(ctx context.Context, id string) (Registration, error) {
	if uuid.Validate(id) != nil {
		return Registration{}, ErrNotFound
	}
	return s.one(ctx, `id = $1`, id)
}

// ByKey returns the registration an account submitted with an Idempotency-Key.
func (s *Store) ByKey(ctx context.Context, accountID int64, key string) (Registration, error) {
	return s.one(ctx, `account_id = $1 AND idempotency_key = $2`, accountID, key)
}

// Latest returns the newest registration of an account.
func (s *Store) Latest(ctx context.Context, accountID int64) (Registration, error) {
	return s.one(ctx, `account_id = $1 ORDER BY created_at DESC LIMIT 1`, accountID)
}

// Waiting lists the registrations in a status, oldest first (by the time
// they entered it), within one exam area or all when area is empty.
func (s *Store) Waiting(ctx context.Context, st, area string, limit int) ([]Registration, error) {
	return s.selectWithHistory(ctx, `status = $1 AND ($2 = '' OR exam_area_code = $2) ORDER BY updated_at, id LIMIT $3`, st, area, limit)
}

// PreRegistered lists the pre-registered registrations of an ID number in an exam area.
func (s *Store) PreRegistered(ctx context.Context, area, idNumber string) ([]Registration, error) {
	return s.selectWithHistory(ctx, `status = $1 AND exam_area_code = $2 AND id_number = $3 ORDER BY created_at`,
		status.PreRegistered, area, idNumber)
}

// Transition is one change of a registration, recorded by the workflow.
// Seq orders the changes: recording the same Seq twice changes nothing.
// UpdateID names the Workflow Update that made it, if one did.
type Transition struct {
	RegistrationID  string
	Seq             int
	Status          string
	At              time.Time
	ByRole          string
	Note            string
	RejectionReason string
	ReportID        string // the diploma report on file
	UpdateID        string
}

// AddReport stores the particulars of an uploaded diploma report and
// returns its id, for the workflow.
func (s *Store) AddReport(ctx context.Context, registrationID, fileID, verificationCode, reportNumber, certificateNumber string) (string, error) {
	id := uuid.NewString()
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO diploma_reports (id, registration_id, file_id, verification_code, report_number, certificate_number)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''))`,
		id, registrationID, fileID, verificationCode, reportNumber, certificateNumber)
	if err != nil {
		return "", fmt.Errorf("store diploma report of %s: %w", registrationID, err)
	}
	return id, nil
}

// StepDone reports whether the Workflow Update updateID already made a
// step of the registration (a retried request).
func (s *Store) StepDone(ctx context.Context, registrationID, updateID string) (bool, error) {
	var done bool
	err := s.db.GetContext(ctx, &done, `SELECT EXISTS (SELECT 1 FROM registration_history WHERE registration_id = $1 AND update_id = $2)`,
		registrationID, updateID)
	if err != nil {
		return false, fmt.Errorf("look up step %s: %w", updateID, err)
	}
	return done, nil
}

// Record writes a transition: the new status and its history entry. It is
// idempotent, so the workflow may retry it. A completed registration is
// final: nothing changes it any more.
func (s *Store) Record(ctx context.Context, t Transition) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := insertHistory(ctx, tx, t.RegistrationID, t.Seq, t.Status, t.At, t.ByRole, t.Note, t.UpdateID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE registrations SET status = $3, updated_at = $4, last_seq = $2,
				rejection_reason = NULLIF($5, ''), report_id = NULLIF($6, '')::uuid
			WHERE id = $1 AND last_seq < $2 AND status <> 'completed'`,
			t.RegistrationID, t.Seq, t.Status, t.At, t.RejectionReason, t.ReportID)
		if err != nil {
			return fmt.Errorf("record status %s of %s: %w", t.Status, t.RegistrationID, err)
		}
		return nil
	})
}

func insertHistory(ctx context.Context, tx *sqlx.Tx, id string, seq int, st string, at time.Time, byRole, note, updateID string) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO registration_history (registration_id, seq, status, at, by_role, note, update_id)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''))
		ON CONFLICT (registration_id, seq) DO NOTHING`, id, seq, st, at, byRole, note, updateID)
	if db.IsForeignKeyViolation(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("record history of %s: %w", id, err)
	}
	return nil
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

// OffWindow lists the ids of the open registrations of an exam area and
// sitting whose window is not the given one.
func (s *Store) OffWindow(ctx context.Context, area string, year, sitting int, startsAt, endsAt time.Time) ([]string, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `
		SELECT id FROM registrations WHERE exam_area_code = $1 AND year = $2 AND sitting = $3
		  AND status NOT IN ('completed', 'expired', 'withdrawn')
		  AND (window_starts_at, window_ends_at) IS DISTINCT FROM ($4::timestamptz, $5::timestamptz)
		ORDER BY created_at`, area, year, sitting, startsAt, endsAt)
	if err != nil {
		return nil, fmt.Errorf("list open registrations of %s: %w", area, err)
	}
	return ids, nil
}

// Completion records a successful on-site confirmation.
type Completion struct {
	RegistrationID string
	Seq            int
	At             time.Time
	Note           string
	PhotoFileID    string
	UpdateID       string
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
		switch {
		case r.TicketNumber != nil:
			ticket = *r.TicketNumber
		case r.SelectedTicketNumber != nil:
			ticket = *r.SelectedTicketNumber
		default:
			var err error
			if ticket, err = allocateTicket(ctx, tx, r); err != nil {
				return err
			}
		}
		if err := insertHistory(ctx, tx, r.ID, c.Seq, status.Completed, c.At, "onsite_operator", c.Note, c.UpdateID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE registrations SET status = 'completed', ticket_number = $3, photo_file_id = $4::uuid, updated_at = $5, last_seq = $2
			WHERE id = $1 AND last_seq < $2`, r.ID, c.Seq, ticket, c.PhotoFileID, c.At)
		if err != nil {
			return fmt.Errorf("complete registration %s: %w", r.ID, err)
		}
		return nil
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

// Personal is what the diploma check sends to the registry.
type Personal struct {
	Name     string `db:"name"`
	IDNumber string `db:"id_number"`
}

// PersonalOf returns the name and ID number of a registration.
func (s *Store) PersonalOf(ctx context.Context, id string) (Personal, error) {
	var p Personal
	err := s.db.GetContext(ctx, &p, `SELECT name, id_number FROM registrations WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("read registration %s: %w", id, err)
	}
	return p, nil
}
