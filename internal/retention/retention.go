// Package retention deletes the rows of personal data whose time is up:
// messages delivered or refused, expired sessions and SMS codes, throttle
// rows, and the records of staff's fetches of files. (The files themselves
// are purged by files.Store.PurgeDue.)
//
// Each function deletes one bounded batch, at most limit rows, found by
// the index on their time (migrations 00004, 00011, 00015) and deleted by
// their key, and returns how many it deleted: fewer than limit means none
// were left. Each is idempotent: a row deleted is no longer due, and
// running it again deletes nothing more. The batch locks its rows as it
// finds them (FOR UPDATE, which checks the condition again on a row changed
// meanwhile: a code sent again stays), skipping those others hold, left to
// the next batch. Nothing of a row reaches a log or an error.
package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/throttle"
)

// Outbox deletes e-mails accepted or refused for good more than period
// ago (the recipient, subject and text go with them).
func Outbox(ctx context.Context, db sqlx.ExecerContext, period time.Duration, limit int) (int, error) {
	return deleteBatch(ctx, db, "outbox", `
		DELETE FROM outbox WHERE id = ANY(ARRAY(
			SELECT id FROM outbox WHERE (accepted_at IS NOT NULL OR failed_at IS NOT NULL)
				AND COALESCE(accepted_at, failed_at) < now() - make_interval(secs => $1)
			LIMIT $2 FOR UPDATE SKIP LOCKED))`, period.Seconds(), limit)
}

// SMSOutbox deletes SMS accepted by the provider or given up more than
// period ago (the phone numbers and parameters go with them).
func SMSOutbox(ctx context.Context, db sqlx.ExecerContext, period time.Duration, limit int) (int, error) {
	return deleteBatch(ctx, db, "sms_outbox", `
		DELETE FROM sms_outbox WHERE id = ANY(ARRAY(
			SELECT id FROM sms_outbox WHERE (accepted_at IS NOT NULL OR failed_at IS NOT NULL)
				AND COALESCE(accepted_at, failed_at) < now() - make_interval(secs => $1)
			LIMIT $2 FOR UPDATE SKIP LOCKED))`, period.Seconds(), limit)
}

// Sessions deletes expired sessions (a login removes its account's
// expired ones: these are of accounts that have not logged in since).
func Sessions(ctx context.Context, db sqlx.ExecerContext, limit int) (int, error) {
	return deleteBatch(ctx, db, "sessions", `
		DELETE FROM sessions WHERE token_hash = ANY(ARRAY(
			SELECT token_hash FROM sessions WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED))`, limit)
}

// SMSCodes deletes expired SMS codes (never entered, or entered too late).
func SMSCodes(ctx context.Context, db sqlx.ExecerContext, limit int) (int, error) {
	return deleteBatch(ctx, db, "sms_codes", `
		DELETE FROM sms_codes WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM sms_codes WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED))`, limit)
}

// ThrottleAttempts deletes the throttle rows older than throttle.Retention
// (of keys never tried again: the throttle forgets the others itself).
func ThrottleAttempts(ctx context.Context, db sqlx.ExecerContext, limit int) (int, error) {
	return throttle.DeleteOld(ctx, db, nil, limit)
}

// FileAccesses deletes the records of staff's fetches of files made more
// than period (the audit period) ago.
func FileAccesses(ctx context.Context, db sqlx.ExecerContext, period time.Duration, limit int) (int, error) {
	return deleteBatch(ctx, db, "file_accesses", `
		DELETE FROM file_accesses WHERE id = ANY(ARRAY(
			SELECT id FROM file_accesses WHERE at < now() - make_interval(secs => $1)
			LIMIT $2 FOR UPDATE SKIP LOCKED))`, period.Seconds(), limit)
}

// deleteBatch runs one batch's DELETE and counts the rows it deleted.
func deleteBatch(ctx context.Context, db sqlx.ExecerContext, table, query string, args ...any) (int, error) {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("delete %s due: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete %s due: %w", table, err)
	}
	return int(n), nil
}
