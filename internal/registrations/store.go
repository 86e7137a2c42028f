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
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"zikao/internal/catalog"
	"zikao/internal/db"
	"zikao/internal/mail"
	"zikao/internal/sms"
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
type Store struct{ db *sqlx.DB }

// NewStore returns a Store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

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
		if _, err := writeHistory(ctx, tx, first); err != nil {
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
		   OR (id_number = $2 AND status NOT IN ('expired', 'withdrawn', 'annulled'))
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

// Unchecked lists the registrations that are open or have changed since
// they were last checked, and have not moved or been checked since cutoff,
// least recently checked first.
func (s *Store) Unchecked(ctx context.Context, cutoff time.Time, limit int) ([]Registration, error) {
	regs := []Registration{}
	err := s.db.SelectContext(ctx, &regs, `
		SELECT * FROM registrations
		WHERE (`+status.OpenSQL+` OR checked_at < updated_at)
		  AND updated_at < $1 AND checked_at < $1
		ORDER BY checked_at LIMIT $2`, cutoff, limit)
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
	err := s.db.SelectContext(ctx, &rows, `SELECT h.registration_id, h.seq, h.status, h.at, h.by_role, h.note,
			h.by_account_id, a.login_name AS by_account, h.update_id
		FROM registration_history h LEFT JOIN accounts a ON a.id = h.by_account_id
		WHERE h.registration_id = ANY($1::uuid[]) ORDER BY h.registration_id, h.seq`, pq.Array(ids))
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

// PreRegistered lists the pre-registered registrations of an ID number in an exam area.
func (s *Store) PreRegistered(ctx context.Context, area, idNumber string) ([]Registration, error) {
	return s.selectWithHistory(ctx, `status = $1 AND exam_area_code = $2 AND id_number = $3 ORDER BY created_at`,
		status.PreRegistered, area, idNumber)
}

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

// AddReport stores the particulars of a diploma report uploaded by the
// request updateID and returns its id, for the workflow; the same request
// again gets the same id and report (what it sent the first time stands).
// Until the workflow accepts it (Record), the report is provisional:
// DiscardReport or the reconciler removes it.
func (s *Store) AddReport(ctx context.Context, registrationID, updateID, fileID, verificationCode, reportNumber, certificateNumber string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `
		INSERT INTO diploma_reports (id, registration_id, update_id, file_id, verification_code, report_number, certificate_number)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''))
		ON CONFLICT (registration_id, update_id) DO UPDATE SET update_id = EXCLUDED.update_id -- the first one stands
		RETURNING id`,
		uuid.NewString(), registrationID, updateID, fileID, verificationCode, reportNumber, certificateNumber)
	if err != nil {
		return "", fmt.Errorf("store diploma report of %s: %w", registrationID, err)
	}
	return id, nil
}

// DiscardReport removes a report the workflow refused (never one it accepted).
func (s *Store) DiscardReport(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM diploma_reports WHERE id = $1 AND accepted_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM registrations WHERE report_id = $1)`, id)
	if err != nil {
		return fmt.Errorf("discard diploma report %s: %w", id, err)
	}
	return nil
}

// AddReason stores the reason a reviewer typed for the decision updateID and
// returns its id: the free text stays in PostgreSQL, only the id travels
// through Temporal. The same decision again gets the same id.
func (s *Store) AddReason(ctx context.Context, registrationID, updateID, text string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `
		INSERT INTO decision_reasons (id, registration_id, update_id, text) VALUES ($1, $2, $3, $4)
		ON CONFLICT (registration_id, update_id) DO UPDATE SET update_id = EXCLUDED.update_id -- the first one stands
		RETURNING id`, uuid.NewString(), registrationID, updateID, text)
	if err != nil {
		return "", fmt.Errorf("store decision reason of %s: %w", registrationID, err)
	}
	return id, nil
}

// DiscardReason removes the reason of a rejection the workflow refused
// (never one a history entry shows).
func (s *Store) DiscardReason(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM decision_reasons d WHERE d.id = $1
		AND NOT EXISTS (SELECT 1 FROM registration_history h WHERE h.registration_id = d.registration_id AND h.update_id = d.update_id)`, id)
	if err != nil {
		return fmt.Errorf("discard decision reason %s: %w", id, err)
	}
	return nil
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
		fresh, err := writeHistory(ctx, tx, e)
		if err != nil || !fresh {
			return err
		}
		if err := retract(ctx, tx, t.RegistrationID, t.Seq); err != nil {
			return err
		}
		starts, ends := bounds(t.Window)
		res, err := tx.ExecContext(ctx, `
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
		if t.ReportID != "" {
			_, err = tx.ExecContext(ctx, `UPDATE diploma_reports SET accepted_at = COALESCE(accepted_at, now()) WHERE id = $1`, t.ReportID)
			if err != nil {
				return fmt.Errorf("accept diploma report of %s: %w", t.RegistrationID, err)
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
// from seq on (mail.Retract).
func retract(ctx context.Context, tx *sqlx.Tx, registrationID string, seq int) error {
	if err := mail.Retract(ctx, tx, registrationID, seq); err != nil {
		return err
	}
	return sms.Retract(ctx, tx, registrationID, seq)
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
func writeHistory(ctx context.Context, tx *sqlx.Tx, e historyEntry) (bool, error) {
	insert := func() (int64, error) {
		res, err := tx.ExecContext(ctx, `
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
		fresh, err := writeHistory(ctx, tx, historyEntry{RegistrationID: r.ID, Seq: c.Seq, Status: status.Completed, At: c.At,
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
		if err := retract(ctx, tx, r.ID, c.Seq); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
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
		if err := retract(ctx, tx, id, snap.Seq+1); err != nil {
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
		fresh, err := writeHistory(ctx, tx, historyEntry{RegistrationID: id, Seq: seq, Status: st, At: at, ByRole: byRole, Note: note})
		if err != nil || !fresh {
			return err
		}
		if err := retract(ctx, tx, id, seq); err != nil {
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

// DiscardAbandonedReports removes the reports that no workflow accepted
// within age (their request died before the workflow answered).
func (s *Store) DiscardAbandonedReports(ctx context.Context, age time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM diploma_reports d WHERE d.accepted_at IS NULL AND d.uploaded_at < now() - make_interval(secs => $1)
		  AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.report_id = d.id)`, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("discard abandoned reports: %w", err)
	}
	return res.RowsAffected()
}
