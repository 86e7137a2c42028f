package mail

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	gomail "github.com/wneessen/go-mail"
)

// permanent is the rule that tells a refusal for good from a failure to try
// again, by the SMTP command the server answered (go-mail's SendError
// reason), its reply code and its enhanced status code (RFC 3463; "" when
// the server gives none).
//
// A 5xx reply to RCPT TO, or at the end of DATA, is the server's verdict on
// this message: the address does not exist, the mailbox refuses it, the
// message is too big. Trying again would be refused again.
//
// Everything else is tried again: a 4xx reply; no reply at all (the
// connection, TLS, a timeout: code 0); a 5xx to MAIL FROM, AUTH or the DATA
// command, which says the server takes no mail from us (a misconfiguration
// to fix), not that this address is wrong; and, at any step, 530
// (authentication or STARTTLS required) or an enhanced status 5.7.x
// (security or policy: relaying denied, sender not authorised), which are
// about our credentials and domain too. Marking every message refused while
// the relay is misconfigured would lose them all.
func permanent(stage gomail.SendErrReason, code int, enhanced string) bool {
	if code < 500 || code > 599 || code == 530 || strings.HasPrefix(enhanced, "5.7.") {
		return false
	}
	return stage == gomail.ErrSMTPRcptTo || stage == gomail.ErrSMTPDataClose
}

// refusal reports whether err, from sending one message, is the SMTP
// server refusing it for good (permanent), and then its reply as code and
// enhanced status ("550 5.1.1", or "550" alone): never the server's text,
// which usually repeats the address.
func refusal(err error) (reply string, refused bool) {
	var se *gomail.SendError
	if !errors.As(err, &se) || !permanent(se.Reason, se.ErrorCode(), se.EnhancedStatusCode()) {
		return "", false
	}
	reply = strconv.Itoa(se.ErrorCode())
	if es := se.EnhancedStatusCode(); es != "" {
		reply += " " + es
	}
	return reply, true
}

// Refusal is an e-mail the SMTP server refused for good. It names no
// address: the registration id leads to the applicant for those who may
// see them.
type Refusal struct {
	OutboxID       string    `db:"id"`
	RegistrationID string    `db:"registration_id"`
	Kind           Kind      `db:"kind"`
	At             time.Time `db:"failed_at"`
	Reply          string    `db:"reply"` // the server's reply code and enhanced status, e.g. 550 5.1.1
}

// Refusals are the e-mails the SMTP server refused for good: how many
// there are, and the newest of them.
type Refusals struct {
	Count  int
	Newest []Refusal // newest first
}

// ReadRefused reads how many e-mails the SMTP server refused for good and the
// newest limit of them (none when limit is 0), for the administrators.
func ReadRefused(ctx context.Context, db sqlx.QueryerContext, limit int) (Refusals, error) {
	var out Refusals
	if limit > 0 {
		err := sqlx.SelectContext(ctx, db, &out.Newest, `
			SELECT id, registration_id, kind, failed_at, COALESCE(last_error, '') AS reply
			FROM outbox WHERE failed_at IS NOT NULL
			ORDER BY failed_at DESC, id LIMIT $1`, limit)
		if err != nil {
			return Refusals{}, fmt.Errorf("read the refused e-mails: %w", err)
		}
	}
	// Counted after the list: the count is never below its length.
	if err := sqlx.GetContext(ctx, db, &out.Count, `SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL`); err != nil {
		return Refusals{}, fmt.Errorf("count the refused e-mails: %w", err)
	}
	return out, nil
}
