package sms

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"zikao/internal/catalog"
)

// Outgoing is a message to write into the outbox. A registration's notice
// names its step (RegistrationID and Seq): written again for the same step
// and purpose, it adds nothing.
type Outgoing struct {
	Purpose        Purpose
	Phone          string
	Params         map[string]string
	RegistrationID string // "" for a code
	Seq            int    // the step; 0 for a code or a ticket look-up
}

// Enqueue writes o into the outbox in tx (the transaction of what causes
// it) and returns its id ("" when the step's message was written already).
func Enqueue(ctx context.Context, tx sqlx.ExtContext, o Outgoing) (string, error) {
	tpl, ok := Templates[o.Purpose]
	if !ok {
		return "", fmt.Errorf("no SMS template for %q", o.Purpose)
	}
	if _, err := tpl.Render(DefaultSignName, o.Params); err != nil {
		return "", err // caught here, not by the provider hours later
	}
	params, err := json.Marshal(o.Params)
	if err != nil {
		return "", fmt.Errorf("encode SMS parameters: %w", err)
	}
	id := uuid.NewString()
	var registrationID, seq any
	if o.RegistrationID != "" {
		registrationID = o.RegistrationID
		if o.Seq > 0 {
			seq = o.Seq
		}
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO sms_outbox (id, purpose, registration_id, seq, phone, template_code, params)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (registration_id, purpose, seq) DO NOTHING`,
		id, string(o.Purpose), registrationID, seq, o.Phone, tpl.Code, string(params))
	if err != nil {
		return "", fmt.Errorf("write %s SMS to the outbox: %w", o.Purpose, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", nil
	}
	return id, nil
}

// EnqueueNotice writes the SMS of a registration's step (purpose: one of
// the e-mail kinds) in tx, to the phone bound to the registration's account,
// else the phone on the registration. The row must already show the step.
func EnqueueNotice(ctx context.Context, tx *sqlx.Tx, registrationID string, seq int, purpose Purpose) error {
	var f struct {
		Phone        string       `db:"phone"`
		TicketNumber string       `db:"ticket_number"`
		AreaName     string       `db:"area_name"`
		City         string       `db:"city"`
		StartsAt     sql.NullTime `db:"window_starts_at"`
		EndsAt       sql.NullTime `db:"window_ends_at"`
	}
	err := tx.GetContext(ctx, &f, `
		SELECT COALESCE(a.phone, r.phone) AS phone, COALESCE(r.ticket_number, '') AS ticket_number,
			e.name AS area_name, e.city, r.window_starts_at, r.window_ends_at
		FROM registrations r JOIN accounts a ON a.id = r.account_id JOIN exam_areas e ON e.code = r.exam_area_code
		WHERE r.id = $1`, registrationID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("SMS of %s: registration not found", registrationID)
	}
	if err != nil {
		return fmt.Errorf("read the facts of %s for its %s SMS: %w", registrationID, purpose, err)
	}
	all := map[string]string{"ticket": f.TicketNumber, "area": catalog.FullName(f.City, f.AreaName), "start": Day(f.StartsAt.Time), "end": Day(f.EndsAt.Time)}
	params := map[string]string{}
	for _, name := range Templates[purpose].Params() {
		params[name] = all[name]
	}
	if !ValidPhone(f.Phone) {
		return nil // a registration's phone is checked at submission: nothing to send to otherwise
	}
	_, err = Enqueue(ctx, tx, Outgoing{Purpose: purpose, Phone: f.Phone, Params: params, RegistrationID: registrationID, Seq: seq})
	return err
}

// Params are the names of a template's placeholders.
func (t Template) Params() []string {
	var names []string
	for _, m := range placeholder.FindAllStringSubmatch(t.Text, -1) {
		names = append(names, m[1])
	}
	return names
}

// Backlog is the SMS outbox's queue: messages not yet accepted by the
// provider (nor given up), the ones whose last attempt failed, the ones
// given up, and how long the oldest pending one has waited.
type Backlog struct {
	Pending       int
	Failing       int
	GivenUp       int
	OldestWaiting time.Duration
}

// ReadBacklog reads the SMS outbox's queue (for metrics).
func ReadBacklog(ctx context.Context, db sqlx.QueryerContext) (Backlog, error) {
	var row struct {
		Pending int     `db:"pending"`
		Failing int     `db:"failing"`
		GivenUp int     `db:"given_up"`
		Oldest  float64 `db:"oldest"`
	}
	err := sqlx.GetContext(ctx, db, &row, `
		SELECT count(*) FILTER (WHERE failed_at IS NULL) AS pending,
			count(*) FILTER (WHERE failed_at IS NULL AND attempts > 0) AS failing,
			count(*) FILTER (WHERE failed_at IS NOT NULL) AS given_up,
			COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE failed_at IS NULL)), 0)::float8 AS oldest
		FROM sms_outbox WHERE accepted_at IS NULL`)
	if err != nil {
		return Backlog{}, fmt.Errorf("read the SMS outbox's backlog: %w", err)
	}
	return Backlog{Pending: row.Pending, Failing: row.Failing, GivenUp: row.GivenUp,
		OldestWaiting: time.Duration(row.Oldest * float64(time.Second))}, nil
}
