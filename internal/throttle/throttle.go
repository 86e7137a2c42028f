// Package throttle counts attempts (logins, password resets, enrolment
// look-ups) per key in PostgreSQL, so that limits hold across API instances
// and restarts, and locks a key out for a while once it failed too often.
//
// An attempt is counted before it is checked, in one atomic statement, so
// that parallel requests cannot all slip through before the first failure is
// counted; a success takes its count back (Forgive), a failure confirms it
// (Failed), and only confirmed failures lock a key out.
package throttle

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
)

// Rule: Max failed attempts within Window lock the key out for Lockout; no
// more than Max attempts are checked at once.
type Rule struct {
	Scope   string
	Max     int
	Window  time.Duration
	Lockout time.Duration
}

// Key is a rule applied to one key (a login name, an address, …).
type Key struct {
	Rule Rule
	Key  string
}

// LockedError says a key is locked out and for how long still.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry after %s", e.RetryAfter)
}

// Limiter applies rules to keys.
type Limiter struct{ db *sqlx.DB }

// New returns a Limiter storing its counters in db.
func New(db *sqlx.DB) *Limiter { return &Limiter{db: db} }

// Attempt counts one attempt for each key, before it is checked. It returns
// a *LockedError, counting nothing, when a key is locked out or already has
// Max attempts counted (failures, or attempts still being checked).
func (l *Limiter) Attempt(ctx context.Context, keys ...Key) error {
	for i, k := range keys {
		if err := l.attempt(ctx, k); err != nil {
			if ferr := l.Forgive(ctx, keys[:i]...); ferr != nil {
				return ferr
			}
			return err
		}
	}
	return nil
}

func (l *Limiter) attempt(ctx context.Context, k Key) error {
	var row struct {
		Count      int      `db:"failures"`
		LockedSecs *float64 `db:"locked_secs"`
		WindowSecs float64  `db:"window_secs"`
	}
	// A key still locked keeps its count; a lockout that ended, or a window
	// that passed, starts a new count.
	err := l.db.GetContext(ctx, &row, `
		INSERT INTO auth_failures AS f (scope, key, failures, window_start) VALUES ($1, $2, 1, now())
		ON CONFLICT (scope, key) DO UPDATE SET
			failures = CASE WHEN f.locked_until > now() THEN f.failures
				WHEN f.locked_until IS NOT NULL OR f.window_start < now() - make_interval(secs => $3) THEN 1
				ELSE f.failures + 1 END,
			window_start = CASE WHEN f.locked_until > now() THEN f.window_start
				WHEN f.locked_until IS NOT NULL OR f.window_start < now() - make_interval(secs => $3) THEN now()
				ELSE f.window_start END,
			locked_until = CASE WHEN f.locked_until > now() THEN f.locked_until END
		RETURNING failures, EXTRACT(EPOCH FROM locked_until - now())::float8 AS locked_secs,
			EXTRACT(EPOCH FROM window_start + make_interval(secs => $3) - now())::float8 AS window_secs`,
		k.Rule.Scope, k.Key, k.Rule.Window.Seconds())
	if err != nil {
		return fmt.Errorf("count %s attempt: %w", k.Rule.Scope, err)
	}
	if row.LockedSecs != nil {
		return &LockedError{RetryAfter: seconds(*row.LockedSecs)}
	}
	if row.Count <= k.Rule.Max {
		return nil
	}
	// Over the limit without a lockout: attempts are still being checked, or
	// failed ones count until the window passes. Refuse this one uncounted.
	if err := l.Forgive(ctx, k); err != nil {
		return err
	}
	return &LockedError{RetryAfter: seconds(row.WindowSecs)}
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Max(1, math.Ceil(s))) * time.Second
}

// Failed confirms that the counted attempts failed: a key with Max failures
// counted is locked out for its rule's Lockout.
func (l *Limiter) Failed(ctx context.Context, keys ...Key) error {
	for _, k := range keys {
		_, err := l.db.ExecContext(ctx, `
			UPDATE auth_failures SET locked_until = now() + make_interval(secs => $4)
			WHERE scope = $1 AND key = $2 AND failures >= $3 AND locked_until IS NULL`,
			k.Rule.Scope, k.Key, k.Rule.Max, k.Rule.Lockout.Seconds())
		if err != nil {
			return fmt.Errorf("lock %s: %w", k.Rule.Scope, err)
		}
	}
	return nil
}

// Forgive takes back the count of one successful attempt of each key.
func (l *Limiter) Forgive(ctx context.Context, keys ...Key) error {
	for _, k := range keys {
		_, err := l.db.ExecContext(ctx, `
			UPDATE auth_failures SET failures = greatest(failures - 1, 0)
			WHERE scope = $1 AND key = $2 AND locked_until IS NULL`, k.Rule.Scope, k.Key)
		if err != nil {
			return fmt.Errorf("forgive %s attempt: %w", k.Rule.Scope, err)
		}
	}
	return nil
}

// Reset forgets every failure of a key that is not locked out (after a
// success that proves the failures were mistakes).
func (l *Limiter) Reset(ctx context.Context, k Key) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM auth_failures WHERE scope = $1 AND key = $2 AND locked_until IS NULL`, k.Rule.Scope, k.Key)
	if err != nil {
		return fmt.Errorf("reset %s failures: %w", k.Rule.Scope, err)
	}
	return nil
}
