// Package throttle limits attempts (logins, password resets, enrolment
// look-ups) per key in PostgreSQL, so that limits hold across API instances
// and restarts.
//
// Each attempt is one row of throttle_attempts for each of its keys: pending
// while it is being checked, then either deleted (it did not fail: Forgive)
// or marked failed (Failed). A key's count is its failures within its rule's
// window plus its pending attempts younger than Limiter.Pending. Begin checks
// the count and records the pending rows in one transaction holding an
// advisory lock per key, so parallel requests cannot exceed a limit: the
// ones beyond it are refused and leave nothing behind. A crash between Begin
// and the confirmation leaves a pending row that stops counting once it is
// older than Pending (30 s, longer than any check takes; callers read the
// request body before they begin, so a client cannot stretch a check). Rows
// are deleted once they no longer count: failures outside their key's window
// at that key's next attempt, any row older than Retention by a sweep of
// every Begin.
//
// A rule either locks or slows down. A locking rule (Delay 0) refuses a key
// once it has Max failures in its window, until the oldest of them leaves it:
// at most Max checks per window. A slowing rule never locks for long: past
// Max it lets one attempt through per Delay, doubled at each further
// attempt up to MaxDelay, and answers the others with that short wait.
// Refusals are *LockedError, with the time to wait.
package throttle

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"zikao/internal/db"
)

// Retention bounds how long any row is kept: longer than every rule's window.
const Retention = 24 * time.Hour

// Rule: Max failed attempts (failures and attempts being checked) within
// Window refuse further attempts of a key: until failures leave the window
// when Delay is 0, else for Delay, doubling past Max up to MaxDelay.
type Rule struct {
	Scope    string
	Max      int
	Window   time.Duration
	Delay    time.Duration
	MaxDelay time.Duration
}

// Key is a rule applied to one key (a login name, an address, …).
type Key struct {
	Rule Rule
	Key  string
}

// LockedError says a key is refused attempts for a while still.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry after %s", e.RetryAfter)
}

// Limiter applies rules to keys.
type Limiter struct {
	db *sqlx.DB
	// Pending is how long an attempt not yet confirmed counts.
	Pending time.Duration
	// Now is the clock; nil means PostgreSQL's, the same for every API
	// instance. Tests set it.
	Now func() time.Time
}

// New returns a Limiter storing its attempts in db.
func New(database *sqlx.DB) *Limiter { return &Limiter{db: database, Pending: 30 * time.Second} }

// Attempt is an attempt counted (pending) under every key it was begun with.
type Attempt struct {
	l   *Limiter
	ids []int64
}

// Begin counts one pending attempt for each key, or none and returns a
// *LockedError when any key refuses it (with the longest wait of those that
// refuse). It takes three statements in its transaction: the keys' locks
// and the clock, their attempts that count (forgetting their failures past
// the window), and the pending rows (with the sweep of old rows).
func (l *Limiter) Begin(ctx context.Context, keys ...Key) (*Attempt, error) {
	a := &Attempt{l: l}
	keys = distinct(keys)
	err := db.InTx(ctx, l.db, func(tx *sqlx.Tx) error {
		now, err := l.lock(ctx, tx, keys)
		if err != nil {
			return err
		}
		counted, err := l.counted(ctx, tx, keys, now)
		if err != nil {
			return err
		}
		var wait time.Duration // the longest any refusing key asks for
		for _, k := range keys {
			wait = max(wait, k.Rule.wait(counted[k.name()], now))
		}
		if wait > 0 {
			return &LockedError{RetryAfter: seconds(wait)}
		}
		a.ids, err = l.record(ctx, tx, keys, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (k Key) name() string { return k.Rule.Scope + "\n" + k.Key }

// distinct returns the keys sorted by name, each once: the order in which
// they are locked, the same for every transaction, so that transactions
// locking several keys cannot deadlock. (A scope names its rule: two keys of
// one name are one key.)
func distinct(keys []Key) []Key {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.name(), b.name()) })
	return slices.CompactFunc(keys, func(a, b Key) bool { return a.name() == b.name() })
}

// lock takes each key's advisory lock, in the keys' order, and returns the
// time of the transaction: the injected clock's, else PostgreSQL's.
func (l *Limiter) lock(ctx context.Context, tx *sqlx.Tx, keys []Key) (time.Time, error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name()
	}
	var now time.Time
	err := tx.GetContext(ctx, &now, `
		SELECT coalesce($2::timestamptz, now()) FROM (
			SELECT count(pg_advisory_xact_lock(hashtextextended(n, 0))) FROM unnest($1::text[]) AS n) AS locked`,
		pq.Array(names), l.clock())
	if err != nil {
		return time.Time{}, fmt.Errorf("lock throttle keys: %w", err)
	}
	return now, nil
}

func (l *Limiter) clock() *time.Time {
	if l.Now == nil {
		return nil
	}
	t := l.Now()
	return &t
}

// event is one attempt that counts: failed at at, or pending since at.
type event struct {
	Name    string    `db:"name"`
	At      time.Time `db:"at"`
	Pending bool      `db:"pending"`
}

// counted returns each key's attempts that count at now, oldest first, by
// key name: its failures within its rule's window, and its pending attempts
// younger than Pending. Its failures past the window are deleted.
func (l *Limiter) counted(ctx context.Context, tx *sqlx.Tx, keys []Key, now time.Time) (map[string][]event, error) {
	scopes, names := columns(keys)
	windows := make([]float64, len(keys))
	for i, k := range keys {
		windows[i] = k.Rule.Window.Seconds()
	}
	var events []event
	err := tx.SelectContext(ctx, &events, `
		WITH k AS (SELECT scope, key, $4::timestamptz - make_interval(secs => w) AS since
				FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(scope, key, w)),
			forgotten AS (
				DELETE FROM throttle_attempts t USING k WHERE t.scope = k.scope AND t.key = k.key AND t.failed_at <= k.since)
		SELECT t.scope || E'\n' || t.key AS name, coalesce(t.failed_at, t.started_at) AS at, t.failed_at IS NULL AS pending
		FROM throttle_attempts t JOIN k ON t.scope = k.scope AND t.key = k.key
		WHERE t.failed_at > k.since OR (t.failed_at IS NULL AND t.started_at > $5)
		ORDER BY at`, pq.Array(scopes), pq.Array(names), pq.Array(windows), now, now.Add(-l.Pending))
	if err != nil {
		return nil, fmt.Errorf("count attempts: %w", err)
	}
	byKey := map[string][]event{}
	for _, e := range events {
		byKey[e.Name] = append(byKey[e.Name], e)
	}
	return byKey, nil
}

// wait is how long an attempt at now must wait, given the attempts that
// count (oldest first); 0 lets it through.
func (r Rule) wait(events []event, now time.Time) time.Duration {
	if len(events) < r.Max {
		return 0
	}
	if r.Delay > 0 {
		return r.slowDown(len(events), events[len(events)-1].At, now)
	}
	var failures []time.Time
	for _, e := range events {
		if !e.Pending {
			failures = append(failures, e.At)
		}
	}
	if len(failures) < r.Max {
		return time.Second // only attempts still being checked fill the limit
	}
	return failures[len(failures)-r.Max].Add(r.Window).Sub(now)
}

// slowDown lets an attempt through once Delay, doubled for each of the n
// attempts past Max (at most MaxDelay), has passed since the last one.
func (r Rule) slowDown(n int, last, now time.Time) time.Duration {
	gap := r.Delay << min(n-r.Max, 30)
	if gap <= 0 || (r.MaxDelay > 0 && gap > r.MaxDelay) {
		gap = r.MaxDelay // past MaxDelay, or past what a Duration holds
	}
	return last.Add(gap).Sub(now)
}

func seconds(d time.Duration) time.Duration {
	return time.Duration(math.Max(1, math.Ceil(d.Seconds()))) * time.Second
}

// record inserts one pending row per key, started at now, and deletes up
// to 100 rows older than Retention at now (of keys never tried again) in the
// same statement: the attempts' own sweep (oldOnes).
func (l *Limiter) record(ctx context.Context, tx *sqlx.Tx, keys []Key, now time.Time) ([]int64, error) {
	scopes, names := columns(keys)
	var ids []int64
	err := tx.SelectContext(ctx, &ids, `
		WITH swept AS (`+oldOnes+`)
		INSERT INTO throttle_attempts (scope, key, started_at)
		SELECT s, k, $1 FROM unnest($4::text[], $5::text[]) AS u(s, k) RETURNING id`,
		now, Retention.Seconds(), 100, pq.Array(scopes), pq.Array(names))
	if err != nil {
		return nil, fmt.Errorf("count attempt: %w", err)
	}
	return ids, nil
}

// columns returns the keys' scopes and keys, as arrays for unnest.
func columns(keys []Key) (scopes, names []string) {
	scopes, names = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		scopes[i], names[i] = k.Rule.Scope, k.Key
	}
	return scopes, names
}

// oldOnes deletes up to $3 rows older than $2 seconds at $1 (null: the
// database's clock), skipping those another transaction holds.
const oldOnes = `
		DELETE FROM throttle_attempts WHERE id IN (
			SELECT id FROM throttle_attempts WHERE started_at < coalesce($1::timestamptz, now()) - make_interval(secs => $2)
			LIMIT $3 FOR UPDATE SKIP LOCKED)`

// DeleteOld deletes up to limit rows older than Retention at now (nil: the
// database's clock), skipping those another transaction holds, and says how
// many it deleted: the attempts' own sweep and the retention schedule's.
func DeleteOld(ctx context.Context, db sqlx.ExecerContext, now *time.Time, limit int) (int, error) {
	res, err := db.ExecContext(ctx, oldOnes, now, Retention.Seconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("delete old throttle rows: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Failed confirms that the attempt failed: it counts for its rules' windows.
func (a *Attempt) Failed(ctx context.Context) error {
	_, err := a.l.db.ExecContext(ctx, `UPDATE throttle_attempts SET failed_at = coalesce($2::timestamptz, now()) WHERE id = ANY($1)`,
		pq.Array(a.ids), a.l.clock())
	if err != nil {
		return fmt.Errorf("count failed attempt: %w", err)
	}
	return nil
}

// Forgive takes the attempt back: it did not fail.
func (a *Attempt) Forgive(ctx context.Context) error {
	if _, err := a.l.db.ExecContext(ctx, `DELETE FROM throttle_attempts WHERE id = ANY($1)`, pq.Array(a.ids)); err != nil {
		return fmt.Errorf("forgive attempt: %w", err)
	}
	return nil
}

// Reset forgets the failures of a key (after a success that proves them
// mistakes). Attempts still being checked stay counted.
func (l *Limiter) Reset(ctx context.Context, k Key) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM throttle_attempts WHERE scope = $1 AND key = $2 AND failed_at IS NOT NULL`, k.Rule.Scope, k.Key)
	if err != nil {
		return fmt.Errorf("reset %s failures: %w", k.Rule.Scope, err)
	}
	return nil
}
