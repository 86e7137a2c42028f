// Package throttle counts failed attempts (logins, password resets, enrolment
// look-ups) per key in PostgreSQL, so that limits hold across API instances
// and restarts, and locks a key out for a while once it failed too often.
package throttle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
)

// Rule: Max failures within Window lock the key out for Lockout.
type Rule struct {
	Scope   string
	Max     int
	Window  time.Duration
	Lockout time.Duration
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

// Check returns a *LockedError when key is locked out under rule.
func (l *Limiter) Check(ctx context.Context, r Rule, key string) error {
	var seconds float64
	err := l.db.GetContext(ctx, &seconds, `
		SELECT EXTRACT(EPOCH FROM locked_until - now())::float8 FROM auth_failures
		WHERE scope = $1 AND key = $2 AND locked_until > now()`, r.Scope, key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s throttle: %w", r.Scope, err)
	}
	return &LockedError{RetryAfter: time.Duration(math.Ceil(seconds)) * time.Second}
}

// Fail counts one failure of key; the one that reaches rule.Max starts a lockout.
func (l *Limiter) Fail(ctx context.Context, r Rule, key string) error {
	_, err := l.db.ExecContext(ctx, `
		INSERT INTO auth_failures AS f (scope, key, failures, window_start) VALUES ($1, $2, 1, now())
		ON CONFLICT (scope, key) DO UPDATE SET
			failures = CASE WHEN f.window_start < now() - make_interval(secs => $3) THEN 1 ELSE f.failures + 1 END,
			window_start = CASE WHEN f.window_start < now() - make_interval(secs => $3) THEN now() ELSE f.window_start END;
		`, r.Scope, key, r.Window.Seconds())
	if err != nil {
		return fmt.Errorf("count %s failure: %w", r.Scope, err)
	}
	_, err = l.db.ExecContext(ctx, `
		UPDATE auth_failures SET locked_until = now() + make_interval(secs => $4), failures = 0, window_start = now()
		WHERE scope = $1 AND key = $2 AND failures >= $3`, r.Scope, key, r.Max, r.Lockout.Seconds())
	if err != nil {
		return fmt.Errorf("lock %s: %w", r.Scope, err)
	}
	return nil
}

// Reset forgets the failures of key (after a success).
func (l *Limiter) Reset(ctx context.Context, r Rule, key string) error {
	if _, err := l.db.ExecContext(ctx, `DELETE FROM auth_failures WHERE scope = $1 AND key = $2 AND (locked_until IS NULL OR locked_until <= now())`, r.Scope, key); err != nil {
		return fmt.Errorf("reset %s failures: %w", r.Scope, err)
	}
	return nil
}

// Key is a rule applied to one key.
type Key struct {
	Rule Rule
	Key  string
}

// CheckAll returns the first *LockedError among keys.
func (l *Limiter) CheckAll(ctx context.Context, keys ...Key) error {
	for _, k := range keys {
		if err := l.Check(ctx, k.Rule, k.Key); err != nil {
			return err
		}
	}
	return nil
}

// FailAll counts one failure of each key.
func (l *Limiter) FailAll(ctx context.Context, keys ...Key) error {
	for _, k := range keys {
		if err := l.Fail(ctx, k.Rule, k.Key); err != nil {
			return err
		}
	}
	return nil
}
