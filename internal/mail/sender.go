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
// again, never lost. An address the server refuses for good (permanent: a
// 5xx reply to RCPT TO or at the end of DATA) is marked failed (failed_at)
// and never tried again; last_error then holds the reply code only. The one
// unavoidable gap is a crash (or PostgreSQL going away) between the
// server's acceptance and that commit: the message is then sent a second
// time, with the same Message-ID (MessageID). A stopped sender (its
// context cancelled) finishes the message it holds, recording it, before
// it returns.
type Sender struct {
	DB   *sqlx.DB
	SMTP SMTP
	From string // the sender's address, optionally with a display name

	Interval   time.Duration // between looks at the outbox when nothing is due; 0 means 2 s
	Backoff    time.Duration // wait after the first failure, doubling; 0 means 30 s
	MaxBackoff time.Duration // longest wait between attempts; 0 means 1 h

	// Attempted, when set, is called after each attempt is recorded, with
	// its result: Accepted, Failed or Refused (for metrics: it is called
	// with no data of the message).
	Attempted func(result string)

	// afterAccept, in tests, runs between the server's acceptance and the
	// commit of accepted_at; an error stands for a crash there (no commit).
	afterAccept func(id string) error
}

// The results of an attempt.
const (
	Accepted = "accepted" // the server accepted the message
	Failed   = "failed"   // it will be tried again
	Refused  = "refused"  // the server refused the address for good: never tried again
)

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
// between messages when ctx ends; a message refused for good is recorded
// and the next one is sent (the server is well, the address is not).
func (s *Sender) SendDue(ctx context.Context) (int, error) {
	c, err := s.SMTP.client()
	if err != nil {
		return 0, err
	}
	conn := &connection{client: c}
	defer conn.close()
	sent := 0
	for ctx.Err() == nil {
		result, err := s.sendOne(ctx, conn)
		switch {
		case errors.Is(err, errNothingDue):
			return sent, nil
		case err != nil:
			return sent, err
		case result == Accepted:
			sent++
		case result == Failed:
			return sent, nil // the next pass starts on a fresh connection after the interval
		}
	}
	return sent, nil
}

var errNothingDue = errors.New("no message due")

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
// one transaction. It returns the result: Accepted, Failed (recorded; it
// will be tried again) or Refused (recorded; never again).
func (s *Sender) sendOne(ctx context.Context, conn *connection) (string, error) {
	// The transaction outlives a cancelled ctx: a message the server
	// accepted is recorded even while the sender stops.
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*orDefault(s.SMTP.Timeout, 30*time.Second)+30*time.Second)
	defer cancel()
	tx, err := s.DB.BeginTxx(txCtx, nil)
	if err != nil {
		return "", fmt.Errorf("begin outbox transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	var m message
	err = tx.GetContext(txCtx, &m, `
		SELECT id, recipient, subject, body, created_at, attempts FROM outbox
		WHERE accepted_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNothingDue
	}
	if err != nil {
		return "", fmt.Errorf("claim a due e-mail: %w", err)
	}
	sendErr := s.deliver(txCtx, conn, m)
	if sendErr == nil && s.afterAccept != nil {
		if err := s.afterAccept(m.ID); err != nil {
			return "", err // a crash between acceptance and commit
		}
	}
	result, err := s.record(txCtx, tx, m, sendErr)
	if err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("record delivery of e-mail %s: %w", m.ID, err)
	}
	if s.Attempted != nil {
		s.Attempted(result)
	}
	return result, nil
}

func (s *Sender) deliver(ctx context.Context, conn *connection, m message) error {
	msg, err := build(m, s.From)
	if err != nil {
		return err
	}
	return conn.send(ctx, msg)
}

// record notes the server's acceptance; or its refusal for good, with the
// reply code only; or the failure and when to try again (the backoff
// doubles with each attempt, up to MaxBackoff). It returns the result.
func (s *Sender) record(ctx context.Context, tx *sqlx.Tx, m message, sendErr error) (string, error) {
	if sendErr == nil {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET accepted_at = now(), attempts = attempts + 1, last_error = NULL
			WHERE id = $1`, m.ID); err != nil {
			return "", fmt.Errorf("record acceptance of e-mail %s: %w", m.ID, err)
		}
		slog.InfoContext(ctx, "e-mail accepted by the SMTP server", "outbox_id", m.ID, "attempt", m.Attempts+1)
		return Accepted, nil
	}
	if reply, refused := refusal(sendErr); refused {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET failed_at = now(), attempts = attempts + 1, last_error = $2
			WHERE id = $1`, m.ID, reply); err != nil {
			return "", fmt.Errorf("record refusal of e-mail %s: %w", m.ID, err)
		}
		slog.WarnContext(ctx, "e-mail refused for good by the SMTP server; not tried again", "outbox_id", m.ID, "reply", reply)
		return Refused, nil
	}
	wait := s.backoff(m.Attempts)
	reason := scrub(sendErr.Error())
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2,
			next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1`, m.ID, reason, wait.Seconds()); err != nil {
		return "", fmt.Errorf("record failed delivery of e-mail %s: %w", m.ID, err)
	}
	slog.WarnContext(ctx, "e-mail not delivered; will try again", "outbox_id", m.ID, "attempt", m.Attempts+1,
		"retry_in", wait.String(), "error", reason)
	return Failed, nil
}

// backoff is the wait after the attempts-th failure (0: the first).
func (s *Sender) backoff(attempts int) time.Duration {
	wait, longest := orDefault(s.Backoff, 30*time.Second), orDefault(s.MaxBackoff, time.Hour)
	for i := 0; i < attempts && wait < longest; i++ {
		wait *= 2
	}
	return min(wait, longest)
}
