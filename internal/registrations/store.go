// Package registrations is the read model of registrations in PostgreSQL:
// the API creates a row when an applicant submits, the workflow's
// activities record every later change, and the API serves views, the
// reviewers' inbox and the on-site look-up from it.
package registrations

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

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
	ID                   string    `db:"id"`
	AccountID            int64     `db:"account_id"`
	Kind                 string    `db:"kind"`
	Status               string    `db:"status"`
	Name                 string    `db:"name"`
	IDNumber             string    `db:"id_number"`
	Gender               string    `db:"gender"`
	BirthDate            time.Time `db:"birth_date"`
	Ethnicity            string    `db:"ethnicity"`
	Phone                string    `db:"phone"`
	Address              string    `db:"address"`
	Education            string    `db:"education"`
	MajorType            string    `db:"major_type"`
	Level                string    `db:"level"`
	MajorCode            string    `db:"major_code"`
	ExamAreaCode         string    `db:"exam_area_code"`
	PriorSchool          string    `db:"prior_school"`
	PriorDiplomaNumber   string    `db:"prior_diploma_number"`
	Year                 int       `db:"year"`
	Sitting              int       `db:"sitting"`
	TermsAgreedAt        time.Time `db:"terms_agreed_at"`
	SelectedTicketNumber *string   `db:"selected_ticket_number"`
	IdempotencyKey       *string   `db:"idempotency_key"`
	TicketNumber         *string   `db:"ticket_number"`
	WindowStartsAt       time.Time `db:"window_starts_at"`
	WindowEndsAt         time.Time `db:"window_ends_at"`
	RejectionReason      *string   `db:"rejection_reason"`
	AnnulmentReason      *string   `db:"annulment_reason"` // the office's reason, once annulled
	ReportID             *string   `db:"report_id"`
	PhotoFileID          *string   `db:"photo_file_id"`
	LastSeq              int       `db:"last_seq"`
	CheckedAt            time.Time `db:"checked_at"` // by the reconciler
	CreatedAt            time.Time `db:"created_at"`
	UpdatedAt            time.Time `db:"updated_at"`
	StageSince           time.Time `db:"stage_since"` // when it entered its status (that step's time)
	// Online identity verification (网上验证), as its workflow holds it.
	OnlineTriesLeft      int            `db:"online_tries_left"`
	OnlineClosed         bool           `db:"online_closed"`
	OnlineLastResult     *string        `db:"online_last_result"`
	IdentityReviewAsked  bool           `db:"identity_review_asked"`
	IdentityReviewReason *string        `db:"identity_review_reason"` // the office's reason, when the manual check refused
	History              []HistoryEntry `db:"-"`
	// Overdue: waiting for a review longer than the overdue time (set by
	// the registration service's inbox only).
	Overdue bool `db:"-"`

	// The report on file (from diploma_reports), when there is one.
	ReportFileID            *string `db:"report_file_id"`
	ReportVerificationCode  *string `db:"report_verification_code"`
	ReportNumber            *string `db:"report_number"`
	ReportCertificateNumber *string `db:"report_certificate_number"`
}

// HistoryEntry is one step of a registration. ByAccountID is the account
// that made it (none for system steps), ByAccount its login name: for staff
// only (the API's view removes it for applicants).
type HistoryEntry struct {
	Seq         int       `db:"seq" json:"-"`
	Status      string    `db:"status" json:"status"`
	At          time.Time `db:"at" json:"at"`
	ByRole      string    `db:"by_role" json:"by_role"`
	Note        string    `db:"note" json:"note"`
	ByAccountID *int64    `db:"by_account_id" json:"-"`
	ByAccount   *string   `db:"by_account" json:"by_account,omitempty"`
	UpdateID    *string   `db:"update_id" json:"-"` // the decision that made it
}

// Made reports whether the decision updateID made one of the registration's steps.
func (r Registration) Made(updateID string) bool {
	for _, h := range r.History {
		if h.UpdateID != nil && *h.UpdateID == updateID {
			return true
		}
	}
	return false
}

// Store reads and writes the read model.
type Store struct {
	db       *sqlx.DB
	prepared *db.Prepared
}

// NewStore returns a Store over db.
func NewStore(pool *sqlx.DB) *Store { return &Store{db: pool, prepared: db.NewPrepared(pool)} }

// withHistory selects registrations, each with its report and its history
// (as JSON), in one statement: the condition on the row, with its order and
// limit, follows.
const withHistory = `SELECT v.*, (
			SELECT json_agg(json_build_object('seq', h.seq, 'status', h.status, 'at', h.at, 'by_role', h.by_role,
					'note', h.note, 'by_account_id', h.by_account_id, 'update_id', h.update_id,
					'by_account', (SELECT a.login_name FROM accounts a WHERE a.id = h.by_account_id)) ORDER BY h.seq)
				FROM registration_history h WHERE h.registration_id = v.id) AS history
		FROM (SELECT r.*, d.file_id AS report_file_id, d.verification_code AS report_verification_code,
				d.report_number, d.certificate_number AS report_certificate_number
			FROM registrations r LEFT JOIN diploma_reports d ON d.id = r.report_id) v
		WHERE `

// rowWithHistory is a row of withHistory.
type rowWithHistory struct {
	Registration
	History []byte `db:"history"`
}

// selectWithHistory reads the registrations that where selects (a
// condition on the row, with its order and limit), each with its report and
// its history, in one statement.
func (s *Store) selectWithHistory(ctx context.Context, where string, args ...any) ([]Registration, error) {
	var rows []rowWithHistory
	if err := s.db.SelectContext(ctx, &rows, withHistory+where, args...); err != nil {
		return nil, fmt.Errorf("select registrations: %w", err)
	}
	return historiesOf(rows)
}

// historiesOf returns the registrations of rows with their histories.
func historiesOf(rows []rowWithHistory) ([]Registration, error) {
	regs := make([]Registration, len(rows))
	for i, row := range rows {
		regs[i] = row.Registration
		if row.History == nil {
			continue
		}
		var history []historyJSON
		if err := json.Unmarshal(row.History, &history); err != nil {
			return nil, fmt.Errorf("read history of %s: %w", row.ID, err)
		}
		regs[i].History = make([]HistoryEntry, len(history))
		for j, h := range history {
			h.At = h.At.In(row.CreatedAt.Location()) // as the driver gives the row's times
			regs[i].History[j] = HistoryEntry(h)
		}
	}
	return regs, nil
}

// historyJSON is a HistoryEntry as selectWithHistory reads it (field for
// field the same, so that one converts to the other).
type historyJSON struct {
	Seq         int       `json:"seq"`
	Status      string    `json:"status"`
	At          time.Time `json:"at"`
	ByRole      string    `json:"by_role"`
	Note        string    `json:"note"`
	ByAccountID *int64    `json:"by_account_id"`
	ByAccount   *string   `json:"by_account"`
	UpdateID    *string   `json:"update_id"`
}

// one reads the registration that where selects by a key (with its
// history), with a prepared statement: the statement run most per
// registration (every look-up and every answer of a decision), and one
// whose plan never depends on the key.
func (s *Store) one(ctx context.Context, where string, args ...any) (Registration, error) {
	st, err := s.prepared.Stmt(ctx, withHistory+where)
	if err != nil {
		return Registration{}, fmt.Errorf("select registration: %w", err)
	}
	var rows []rowWithHistory
	if err := st.SelectContext(ctx, &rows, args...); err != nil {
		return Registration{}, fmt.Errorf("select registration: %w", err)
	}
	regs, err := historiesOf(rows)
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

// PreRegistered lists the pre-registered registrations of an ID number in an exam area.
func (s *Store) PreRegistered(ctx context.Context, area, idNumber string) ([]Registration, error) {
	return s.selectWithHistory(ctx, `status = $1 AND exam_area_code = $2 AND id_number = $3 ORDER BY created_at`,
		status.PreRegistered, area, idNumber)
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
