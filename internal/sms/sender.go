package sms

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
)

// Sender delivers the SMS outbox through a Provider. Any number may run
// (one per worker, one per API instance for the codes it just wrote): each
// message is claimed with FOR UPDATE SKIP LOCKED and held while it is sent.
//
// Exactly once, as far as the provider allows: a message is marked
// accepted in the transaction that claimed it, right after the provider
// accepted it; a failure counts an attempt and sets the next one after an
// exponential backoff; a refusal for good (RefusedError) is marked failed
// and never retried; a crash before the commit leaves the message due
// again, never lost. A crash (or PostgreSQL going away) between the
// provider's acceptance and that commit sends it a second time with the
// same OutId (the outbox row's id): a provider that deduplicates by OutId
// (the stand-in does) sends it once, another sends a duplicate.
//
// A code that could not go within CodeTTL is given up: it has expired.
// Once a code is sent or given up, its parameters are emptied: the code
// lives hashed in sms_codes only.
type Sender struct {
	DB       *sqlx.DB
	Provider Provider

	Interval   time.Duration // between looks at the outbox when nothing is due; 0 means 1 s
	Backoff    time.Duration // wait after the first failure, doubling; 0 means 10 s
	MaxBackoff time.Duration // longest wait between attempts; 0 means 30 min
	Timeout    time.Duration // of one call to the provider; 0 means 15 s
	CodeTTL    time.Duration // 0 means CodeLifetime

	// Attempted, when set, is called after each attempt is recorded, with
	// the message's purpose and Sent, Failed or GivenUp (for metrics).
	Attempted func(p Purpose, result string)

	// afterAccept, in tests, runs between the provider's acceptance and
	// the commit; an error stands for a crash there (no commit).
	afterAccept func(id string) error
}

// The results of an attempt.
const (
	Sent    = "sent"     // the provider accepted it
	Failed  = "failed"   // it will be tried again
	GivenUp = "given_up" // refused for good, or a code that expired first
)

// CodeLifetime is how long an SMS code is valid.
const CodeLifetime = 10 * time.Minute

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run delivers due messages until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	slog.InfoContext(ctx, "SMS sender started")
	var warned time.Time
	for ctx.Err() == nil {
		if _, err := s.SendDue(ctx); err != nil && ctx.Err() == nil && time.Since(warned) >= time.Minute {
			slog.WarnContext(ctx, "SMS sender: outbox not reachable; will try again", "error", err.Error())
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(orDefault(s.Interval, time.Second)):
		}
	}
}

// SendDue delivers the messages due now and returns how many the provider
// accepted. It stops at the first failed attempt (the next pass comes after
// the interval) and between messages when ctx ends.
func (s *Sender) SendDue(ctx context.Context) (int, error) {
	sent := 0
	for ctx.Err() == nil {
		result, err := s.sendOne(ctx, "")
		switch {
		case errors.Is(err, errNothingDue):
			return sent, nil
		case err != nil:
			return sent, err
		case result == Sent:
			sent++
		case result == Failed:
			return sent, nil
		}
	}
	return sent, nil
}

// Deliver sends the message id now, unless it is not due or another sender
// holds it (then that sender, or the next pass, sends it). The API calls it
// for the codes and look-ups it writes, so that they need not wait for a
// pass.
func (s *Sender) Deliver(ctx context.Context, id string) error {
	_, err := s.sendOne(ctx, id)
	if errors.Is(err, errNothingDue) {
		return nil
	}
	return err
}

var errNothingDue = errors.New("no SMS due")

type message struct {
	ID           string    `db:"id"`
	Purpose      Purpose   `db:"purpose"`
	Phone        string    `db:"phone"`
	TemplateCode string    `db:"template_code"`
	Params       []byte    `db:"params"`
	CreatedAt    time.Time `db:"created_at"`
	Attempts     int       `db:"attempts"`
}

// sendOne claims the next due message (or only), sends it and records the
// outcome in one transaction.
func (s *Sender) sendOne(ctx context.Context, only string) (string, error) {
	timeout := orDefault(s.Timeout, 15*time.Second)
	// The transaction outlives a cancelled ctx: an accepted message is
	// recorded even while the sender stops.
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+30*time.Second)
	defer cancel()
	tx, err := s.DB.BeginTxx(txCtx, nil)
	if err != nil {
		return "", fmt.Errorf("begin SMS outbox transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	var m message
	err = tx.GetContext(txCtx, &m, `
		SELECT id, purpose, phone, template_code, params, created_at, attempts FROM sms_outbox
		WHERE accepted_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() AND ($1 = '' OR id = NULLIF($1, '')::uuid)
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, only)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNothingDue
	}
	if err != nil {
		return "", fmt.Errorf("claim a due SMS: %w", err)
	}
	var result string
	var providerID string
	var params map[string]string
	var sendErr error
	if m.Purpose.IsCode() && time.Since(m.CreatedAt) > orDefault(s.CodeTTL, CodeLifetime) {
		result, sendErr = GivenUp, errors.New("the code expired before it could be sent")
	} else if err := json.Unmarshal(m.Params, &params); err != nil {
		// Never sendable; returning the error instead would leave it first
		// in line and hold up every message behind it.
		result, sendErr = GivenUp, fmt.Errorf("its parameters are not a JSON object of strings: %w", err)
	} else {
		callCtx, cancelCall := context.WithTimeout(txCtx, timeout)
		providerID, sendErr = s.Provider.Send(callCtx, Message{Phone: m.Phone, TemplateCode: m.TemplateCode, Params: params, OutID: m.ID})
		cancelCall()
		var refused *RefusedError
		switch {
		case sendErr == nil:
			result = Sent
		case errors.As(sendErr, &refused):
			result = GivenUp
		default:
			result = Failed
		}
	}
	if result == Sent && s.afterAccept != nil {
		if err := s.afterAccept(m.ID); err != nil {
			return "", err // a crash between acceptance and commit
		}
	}
	if err := s.record(txCtx, tx, m, result, providerID, sendErr); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("record delivery of SMS %s: %w", m.ID, err)
	}
	if s.Attempted != nil {
		s.Attempted(m.Purpose, result)
	}
	return result, nil
}

// record notes the outcome of an attempt. A code's parameters go once it
// is sent or given up.
func (s *Sender) record(ctx context.Context, tx *sqlx.Tx, m message, result, providerID string, sendErr error) error {
	var err error
	switch result {
	case Sent:
		_, err = tx.ExecContext(ctx, `UPDATE sms_outbox SET accepted_at = now(), attempts = attempts + 1, last_error = NULL,
			provider_message_id = $2, params = CASE WHEN $3 THEN '{}'::jsonb ELSE params END WHERE id = $1`,
			m.ID, providerID, m.Purpose.IsCode())
		slog.InfoContext(ctx, "SMS accepted by the provider", "sms_id", m.ID, "purpose", m.Purpose, "attempt", m.Attempts+1)
	case GivenUp:
		_, err = tx.ExecContext(ctx, `UPDATE sms_outbox SET failed_at = now(), attempts = attempts + 1, last_error = $2,
			params = CASE WHEN $3 THEN '{}'::jsonb ELSE params END WHERE id = $1`, m.ID, sendErr.Error(), m.Purpose.IsCode())
		slog.WarnContext(ctx, "SMS given up", "sms_id", m.ID, "purpose", m.Purpose, "error", sendErr.Error())
	default:
		wait := s.backoff(m.Attempts)
		_, err = tx.ExecContext(ctx, `UPDATE sms_outbox SET attempts = attempts + 1, last_error = $2,
			next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1`, m.ID, sendErr.Error(), wait.Seconds())
		slog.WarnContext(ctx, "SMS not delivered; will try again", "sms_id", m.ID, "purpose", m.Purpose,
			"attempt", m.Attempts+1, "retry_in", wait.String(), "error", sendErr.Error())
	}
	if err != nil {
		return fmt.Errorf("record the outcome of SMS %s: %w", m.ID, err)
	}
	return nil
}

// backoff is the wait after the attempts-th failure (0: the first).
func (s *Sender) backoff(attempts int) time.Duration {
	wait, longest := orDefault(s.Backoff, 10*time.Second), orDefault(s.MaxBackoff, 30*time.Minute)
	for i := 0; i < attempts && wait < longest; i++ {
		wait *= 2
	}
	return min(wait, longest)
}
