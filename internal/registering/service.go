// Package registering is the registration service: every action on a
// registration — submit, upload a report, review, confirm on site,
// withdraw, move a confirmation window, reconcile — goes through it,
// whoever asks (the JSON API, the web pages, the command-line tools). It
// owns the order of the PostgreSQL and Temporal steps and the rules of who
// may do what, and answers with typed errors: *Refusal (the contract's
// codes), *Invalid (per-field messages) and ErrUnavailable.
package registering

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/config"
	"zikao/internal/enrolled"
	"zikao/internal/files"
	"zikao/internal/registrations"
)

// Service runs the actions on registrations.
type Service struct {
	Temporal      client.Client
	TaskQueue     string
	Year, Sitting int // the current sitting
	Registrations *registrations.Store
	Catalog       *catalog.Catalog
	Enrolled      *enrolled.Store
	Files         *files.Store
	// UpdateTimeout bounds how long a decision waits for the workflow;
	// StartTimeout how long a submission waits for its workflow to start.
	UpdateTimeout, StartTimeout time.Duration
	// OverdueAfter is how long a review waits before it is overdue
	// (ZIKAO_REVIEW_OVERDUE_AFTER).
	OverdueAfter time.Duration
	// Identity is the citizen identity verification service of online
	// verification; VerifyTimeout bounds a try's call to it, retries included.
	Identity      Verifier
	VerifyTimeout time.Duration
	// Moves tune window moves (MoveWindow).
	Moves MoveOptions
}

// New returns a Service over a database and a Temporal client.
func New(db *sqlx.DB, tc client.Client, taskQueue string, year, sitting int) *Service {
	return &Service{
		Temporal: tc, TaskQueue: taskQueue, Year: year, Sitting: sitting,
		Registrations: registrations.NewStore(db),
		Catalog:       catalog.New(db),
		Enrolled:      enrolled.NewStore(db),
		Files:         files.NewStore(db, nil, files.Keys{}), // none: uploads fail until the caller sets one
		UpdateTimeout: 20 * time.Second,
		StartTimeout:  10 * time.Second,
		OverdueAfter:  config.DefaultReviewOverdueAfter,
		VerifyTimeout: 25 * time.Second,
		Moves:         MoveOptions{Wait: 10 * time.Second},
	}
}

// Refusal codes of the contract that the service answers with, besides the
// workflow's own (workflows.Err…).
const (
	CodeNotFound         = "registration_not_found"
	CodeForbidden        = "forbidden"
	CodeEnrolmentMissing = "enrolment_not_found"
	CodeIDEnrolled       = "id_number_enrolled"
	CodeIDRegistered     = "id_number_registered"
	CodeInProgress       = "registration_in_progress"
	CodeNotOpen          = "registration_not_open"
	CodeIdentityMismatch = "identity_mismatch"
	CodeNoReport         = "not_found"
	CodeFilePurged       = "file_purged"
	CodeFileTooLarge     = "file_too_large"
	CodeFileType         = "unsupported_file_type"
	CodeAreaNotFound     = "not_found" // with DetailExamArea: no such exam area
)

// Details of refusals that have more than one cause.
const (
	DetailOtherAccount = "other_account" // registration_in_progress: the ID number's, from another account
	DetailIDNumber     = "id_number"     // identity_mismatch: the ID number differs
	DetailName         = "name"          // identity_mismatch: the name differs
	DetailExamArea     = "exam_area"     // not_found: no such exam area
)

// Refusal is an action the rules do not allow, now or at all.
type Refusal struct {
	Code   string
	Detail string         // which cause, for codes with several (Detail…)
	Window catalog.Window // the registration's window, for outside_confirmation_window
}

func (r *Refusal) Error() string {
	if r.Detail != "" {
		return "refused: " + r.Code + " (" + r.Detail + ")"
	}
	return "refused: " + r.Code
}

func refuse(code string) error { return &Refusal{Code: code} }

// Invalid is input that fails validation: what is wrong, per field.
type Invalid struct{ Fields Fields }

func (e *Invalid) Error() string {
	return fmt.Sprintf("validation failed (%d field(s))", len(e.Fields))
}

// ErrUnavailable: PostgreSQL or Temporal did not answer in time; the same
// request may be sent again (with its Idempotency-Key).
var ErrUnavailable = errors.New("temporarily unavailable")

// Unavailable reports whether err means that PostgreSQL or Temporal could
// not be reached or did not answer in time, rather than a fault.
func Unavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, files.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var netErr net.Error
	var pqErr *pq.Error
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var exhausted *serviceerror.ResourceExhausted
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	switch {
	case errors.As(err, &pqErr):
		// connection exceptions, shutdown, too many connections, read-only standby
		class := pqErr.Code.Class()
		return class == "08" || class == "57" || pqErr.Code == "53300" || pqErr.Code == "25006"
	case errors.As(err, &netErr), errors.As(err, &unavailable), errors.As(err, &deadline),
		errors.As(err, &exhausted), errors.As(err, &timeout):
		return true
	}
	return false
}

// unavailable wraps err as ErrUnavailable when it is one.
func unavailable(err error) error {
	if err != nil && Unavailable(err) && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// Get returns a registration the caller may see: its owner, or staff whose
// scope covers it.
func (s *Service) Get(ctx context.Context, who accounts.Account, id string) (registrations.Registration, error) {
	r, err := s.Registrations.Get(ctx, id)
	if errors.Is(err, registrations.ErrNotFound) {
		return r, refuse(CodeNotFound)
	}
	if err != nil {
		return r, unavailable(err)
	}
	if !visible(who, r) {
		return r, refuse(CodeForbidden)
	}
	return r, nil
}

func visible(who accounts.Account, r registrations.Registration) bool {
	switch who.Role {
	case accounts.RoleApplicant:
		return r.AccountID == who.ID
	case accounts.RoleCountyReviewer, accounts.RoleOnsiteOperator:
		return r.ExamAreaCode == who.Area()
	case accounts.RoleProvincialReviewer, accounts.RoleAdmin:
		return true
	}
	return false
}

// Mine returns the applicant's newest registration.
func (s *Service) Mine(ctx context.Context, who accounts.Account) (registrations.Registration, error) {
	r, err := s.Registrations.Latest(ctx, who.ID)
	if errors.Is(err, registrations.ErrNotFound) {
		return r, refuse(CodeNotFound)
	}
	return r, unavailable(err)
}
