package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Notice asks for a message about one step of a registration: the history
// entry Seq, whose write is in the transaction that enqueues it.
type Notice struct {
	RegistrationID string
	Seq            int
	Kind           Kind
	ReasonID       string // decision_reasons: the reviewer's reason (rejected, annulled)
}

// Enqueue writes the message of n into the outbox, in tx (the transaction
// of the read-model change that causes it; the row must already show the
// change, for example its ticket number). The recipient is the account's
// login name. Written again for the same step and kind, it adds nothing.
func Enqueue(ctx context.Context, tx *sqlx.Tx, n Notice) error {
	recipient, facts, err := factsOf(ctx, tx, n)
	if err != nil {
		return err
	}
	subject, body, err := Compose(n.Kind, facts)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO outbox (id, registration_id, kind, seq, recipient, subject, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (registration_id, kind, seq) DO NOTHING`,
		uuid.NewString(), n.RegistrationID, string(n.Kind), n.Seq, recipient, subject, body)
	if err != nil {
		return fmt.Errorf("write %s e-mail of %s to the outbox: %w", n.Kind, n.RegistrationID, err)
	}
	return nil
}

func factsOf(ctx context.Context, tx *sqlx.Tx, n Notice) (string, Facts, error) {
	var row struct {
		Recipient      string       `db:"recipient"`
		TicketNumber   string       `db:"ticket_number"`
		Reason         string       `db:"reason"`
		AreaName       string       `db:"area_name"`
		City           string       `db:"city"`
		OfficeAddress  string       `db:"office_address"`
		WindowStartsAt sql.NullTime `db:"window_starts_at"`
		WindowEndsAt   sql.NullTime `db:"window_ends_at"`
		WindowEnded    bool         `db:"window_ended"`
	}
	err := tx.GetContext(ctx, &row, `
		SELECT a.login_name AS recipient, COALESCE(r.ticket_number, '') AS ticket_number,
			COALESCE((SELECT text FROM decision_reasons WHERE id = NULLIF($2, '')::uuid), '') AS reason,
			e.name AS area_name, e.city, e.office_address, r.window_starts_at, r.window_ends_at,
			COALESCE((SELECT h.at >= r.window_ends_at FROM registration_history h
				WHERE h.registration_id = r.id AND h.seq = $3), false) AS window_ended
		FROM registrations r
		JOIN accounts a ON a.id = r.account_id
		JOIN exam_areas e ON e.code = r.exam_area_code
		WHERE r.id = $1`, n.RegistrationID, n.ReasonID, n.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return "", Facts{}, fmt.Errorf("e-mail of %s: registration not found", n.RegistrationID)
	}
	if err != nil {
		return "", Facts{}, fmt.Errorf("read the facts of %s for its %s e-mail: %w", n.RegistrationID, n.Kind, err)
	}
	return row.Recipient, Facts{
		RegistrationID: n.RegistrationID, AreaName: row.AreaName, City: row.City, OfficeAddress: row.OfficeAddress,
		WindowStartsAt: row.WindowStartsAt.Time, WindowEndsAt: row.WindowEndsAt.Time, WindowEnded: row.WindowEnded,
		Reason: row.Reason, TicketNumber: row.TicketNumber,
	}, nil
}

// Backlog is the outbox's queue: the messages the SMTP server has neither
// accepted nor refused yet, and how long the oldest of them has waited (0
// when none); and how many it refused for good.
type Backlog struct {
	Pending       int
	Failing       int // of those, the ones whose last attempt failed
	OldestWaiting time.Duration
	Refused       int // refused for good (failed_at), never tried again; not pending
}

// ReadBacklog reads the outbox's queue (for metrics).
func ReadBacklog(ctx context.Context, db sqlx.QueryerContext) (Backlog, error) {
	var row struct {
		Pending int     `db:"pending"`
		Failing int     `db:"failing"`
		Oldest  float64 `db:"oldest"`
		Refused int     `db:"refused"`
	}
	err := sqlx.GetContext(ctx, db, &row, `
		SELECT count(*) AS pending, count(*) FILTER (WHERE attempts > 0) AS failing,
			COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest,
			(SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL) AS refused
		FROM outbox WHERE accepted_at IS NULL AND failed_at IS NULL`)
	if err != nil {
		return Backlog{}, fmt.Errorf("read the outbox's backlog: %w", err)
	}
	return Backlog{Pending: row.Pending, Failing: row.Failing, Refused: row.Refused,
		OldestWaiting: time.Duration(row.Oldest * float64(time.Second))}, nil
}
