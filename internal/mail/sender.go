package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	gomail "github.com/wneessen/go-mail"
)

// Sender delivers the outbox over SMTP. Any number of senders may run (one
// per worker): each message is claimed with FOR UPDATE SKIP LOCKED and held
// while it is sent, so two never send the same one at once.
//
// Exactly once, as far as SMTP allows: a message is marked accepted
// (accepted_at) in the transaction that claimed it, right after the server
// accepted it; a failure counts an attempt and sets the next one after an
// exponential backoff; a crash before the commit leaves the message due
// again, never lost. The one unavoidable gap is a crash (or PostgreSQL
// going away) between the server's acceptance and that commit: the message
// is then sent a second time, with the same Message-ID (MessageID). A
// stopped sender (its context cancelled) finishes the message it holds,
// recording it, before it returns.
type Sender struct {
	DB   *sqlx.DB
	SMTP SMTP
	From string // the sender's address, optionally with a display name

	Interval   time.Duration // between looks at the outbox when nothing is due; 0 means 2 s
	Backoff    time.Duration // wait after the first failure, doubling; 0 means 30 s
	MaxBackoff time.Duration // longest wait between attempts; 0 means 1 h

	// Attempted, when set, is called after each attempt is recorded: true
	// when the server accepted the message, false for a failure (for
	// metrics: it is called with no data of the message).
	Attempted func(accepted bool)

	// afterAccept, in tests, runs between the server's acceptance and the
	// commit of accepted_at; an error stands for a crash there (no commit).
	afterAccept func(id string) error
}

func (s *Sender) interval() time.Duration { return orDefault(s.Interval, 2*time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run delivers due messages until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	slog.InfoContext(ctx, "e-mail sender started", "smtp", s.SMTP.Address, "tls", s.SMTP.TLS)
	var warned time.Time // while PostgreSQL is away, one warning a minute
	for ctx.Err() == nil {
		if _, err := s.SendDue(ctx); err != nil && ctx.Err() == nil && time.Since(warned) >= time.Minute {
			slog.WarnContext(ctx, "e-mail sender: outbox not reachable; will try again", "error", scrub(err.Error()))
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.interval()):
		}
	}
}

// SendDue delivers the messages due now over one SMTP connection and
// returns how many the server accepted. It stops at the first failure to
// reach the server (the failed message waits for its next attempt), and
// between messages when ctx ends.
func (s *Sender) SendDue(ctx context.Context) (int, error) {
	c, err := s.SMTP.client()
	if err != nil {
		return 0, err
	}
	conn := &connection{client: c}
	defer conn.close()
	sent := 0
	for ctx.Err() == nil {
		claimed, err := s.sendOne(ctx, conn)
		switch {
		case errors.Is(err, errNothingDue), errors.Is(err, errPassOver):
			return sent, nil
		case err != nil:
			return sent, err
		case claimed:
			sent++
		}
	}
	return sent, nil
}

var (
	errNothingDue = errors.New("no message due")
	errPassOver   = errors.New("delivery failed: next pass") // recorded and logged already
)

// connection dials the SMTP server when first needed.
type connection struct {
	client *gomail.Client
	open   bool
}

func (c *connection) send(ctx context.Context, msg *gomail.Msg) error {
	if !c.open {
		if err := c.client.DialWithContext(ctx); err != nil {
			return fmt.Errorf("connect to the SMTP server: %w", err)
		}
		c.open = true
	}
	if err := c.client.Send(msg); err != nil {
		c.close() // start the next message on a fresh connection
		if msg.IsDelivered() {
			return nil // the server accepted it; only the RSET after it failed
		}
		return err
	}
	return nil
}

func (c *connection) close() {
	if c.open {
		_ = c.client.Close()
		c.open = false
	}
}

// sendOne claims the next due message, sends it and records the outcome in
// one transaction. It reports whether the server accepted it; a delivery
// failure is recorded and ends the pass (errPassOver): the next pass starts
// on a fresh connection after the interval.
func (s *Sender) sendOne(ctx context.Context, conn *connection) (bool, error) {
	// The transaction outlives a cancelled ctx: a message the server
	// accepted is recorded even while the sender stops.
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*orDefault(s.SMTP.Timeout, 30*time.Second)+30*time.Second)
	defer cancel()
	tx, err := s.DB.BeginTxx(txCtx, nil)
	if err != nil {
		return false, fmt.Errorf("begin outbox transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	var m message
	err = tx.GetContext(txCtx, &m, `
		SELECT id, recipient, subject, body, created_at, attempts FROM outbox
		WHERE accepted_at IS NULL AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`)
	if errors.Is(err, sql.ErrNoRows) {
		return false, errNothingDue
	}
	if err != nil {
		return false, fmt.Errorf("claim a due e-mail: %w", err)
	}
	sendErr := s.deliver(txCtx, conn, m)
	if sendErr == nil && s.afterAccept != nil {
		if err := s.afterAccept(m.ID); err != nil {
			return false, err // a crash between acceptance and commit
		}
	}
	if err := s.record(txCtx, tx, m, sendErr); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("record delivery of e-mail %s: %w", m.ID, err)
	}
	if s.Attempted != nil {
		s.Attempted(sendErr == nil)
	}
	if sendErr != nil {
		return false, errPassOver
	}
	return true, nil
}

func (s *Sender) deliver(ctx context.Context, conn *connection, m message) error {
	msg, err := build(m, s.From)
	if err != nil {
		return err
	}
	return conn.send(ctx, msg)
}

// record notes the server's acceptance, or the failure and when to try
// again (the backoff doubles with each attempt, up to MaxBackoff).
func (s *Sender) record(ctx context.Context, tx *sqlx.Tx, m message, sendErr error) error {
	if sendErr == nil {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET accepted_at = now(), attempts = attempts + 1, last_error = NULL
			WHERE id = $1`, m.ID); err != nil {
			return fmt.Errorf("record acceptance of e-mail %s: %w", m.ID, err)
		}
		slog.InfoContext(ctx, "e-mail accepted by the SMTP server", "outbox_id", m.ID, "attempt", m.Attempts+1)
		return nil
	}
	wait := s.backoff(m.Attempts)
	reason := scrub(sendErr.Error())
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2,
			next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1`, m.ID, reason, wait.Seconds()); err != nil {
		return fmt.Errorf("record failed delivery of e-mail %s: %w", m.ID, err)
	}
	slog.WarnContext(ctx, "e-mail not delivered; will try again", "outbox_id", m.ID, "attempt", m.Attempts+1,
		"retry_in", wait.String(), "error", reason)
	return nil
}

// backoff is the wait after the attempts-th failure (0: the first).
func (s *Sender) backoff(attempts int) time.Duration {
	wait, longest := orDefault(s.Backoff, 30*time.Second), orDefault(s.MaxBackoff, time.Hour)
	for i := 0; i < attempts && wait < longest; i++ {
		wait *= 2
	}
	return min(wait, longest)
}
