package chaos

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/devstack"
)

// checkMail waits (within limit) until the workers' senders have delivered
// the whole outbox, then compares it with what the run's Mailpit received:
// every message arrived, and none arrived twice but with the same
// Message-ID — a sender killed between the server's acceptance and the
// commit of accepted_at sends that one again, which the figures count.
// It also returns how many copies of each outbox message arrived.
func checkMail(ctx context.Context, database *sqlx.DB, mailpit *devstack.Mailpit, limit time.Duration) (*Invariant, map[string]int, error) {
	inv := &Invariant{Name: "every e-mail delivered, none lost (the outbox against the SMTP server)"}
	var pending, total int
	for deadline := time.Now().Add(limit); ; time.Sleep(time.Second) {
		err := database.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE accepted_at IS NULL), count(*) FROM outbox`).Scan(&pending, &total)
		if err != nil {
			return nil, nil, fmt.Errorf("read the outbox: %w", err)
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
	}
	if pending > 0 {
		inv.fail("%d of %d e-mails still not accepted by the SMTP server after %s", pending, total, limit)
	}
	var ids []string
	if err := database.SelectContext(ctx, &ids, `SELECT id::text FROM outbox WHERE accepted_at IS NOT NULL`); err != nil {
		return nil, nil, fmt.Errorf("read the outbox: %w", err)
	}
	received, err := mailpit.Search(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	copies := map[string]int{} // outbox id → messages received
	for _, m := range received {
		copies[outboxID(m.MessageID)]++
	}
	twice := 0
	for _, id := range ids {
		switch n := copies[id]; {
		case n == 0:
			inv.fail("outbox message %s is marked accepted but never arrived", id)
		case n > 1:
			twice++
		}
	}
	inv.Figures = fmt.Sprintf("%d e-mails in the outbox, %d received by the SMTP server; %d sent again after a kill between acceptance and commit (same Message-ID)",
		total, len(received), twice)
	return inv, copies, nil
}

// outboxRow is an e-mail of the outbox: which step of which registration.
type outboxRow struct {
	ID             string `db:"id"`
	RegistrationID string `db:"registration_id"`
	Kind           string `db:"kind"`
	Seq            int    `db:"seq"`
	Accepted       bool   `db:"accepted"`
}

// readOutbox reads the outbox (no recipients, subjects or bodies).
func readOutbox(ctx context.Context, database *sqlx.DB) ([]outboxRow, error) {
	var rows []outboxRow
	if err := database.SelectContext(ctx, &rows, `SELECT id::text, registration_id::text, kind, seq, accepted_at IS NOT NULL AS accepted
		FROM outbox ORDER BY registration_id, seq`); err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	return rows, nil
}

// outboxID is the outbox row's id in a Message-ID <outbox-ID@domain>.
func outboxID(messageID string) string {
	if a, err := mail.ParseAddress(messageID); err == nil {
		messageID = a.Address
	}
	id, _, _ := strings.Cut(strings.Trim(messageID, "<>"), "@")
	return strings.TrimPrefix(id, "outbox-")
}
