package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
	"zikao/internal/idcard"
	"zikao/internal/sms"
	"zikao/internal/throttle"
)

// LookupTicket is 查询准考证: where a completed registration of that name
// and ID number exists, its ticket number goes by SMS to the phone bound to
// its account, else to the phone on the registration. It answers the same
// whatever matched (nil, or an error for bad input or a limit: 20 requests
// per address per hour, shared with SMS codes, and 3 per ID number per
// day). smsID is the message's outbox row ("" when none), for
// Sender.Deliver; it must not reach the client.
func (s *Store) LookupTicket(ctx context.Context, name, idNumber, address string) (smsID string, err error) {
	name = idcard.NormalizeName(name)
	fields := map[string]string{}
	if name == "" {
		fields["name"] = "请填写姓名 / name is required"
	} else if !idcard.ValidName(name) {
		fields["name"] = "姓名须为汉字（少数民族姓名可用间隔号·）/ name must be Chinese characters, with · between parts of a minority name"
	}
	n, err := idcard.Parse(strings.TrimSpace(idNumber), time.Now())
	if err != nil {
		fields["id_number"] = "身份证号格式不正确 / the ID number is not valid"
	}
	if len(fields) > 0 {
		return "", &InvalidError{Fields: fields}
	}
	l := s.SMSLimits
	if err := s.countSMS(ctx, throttle.Key{Rule: l.Address, Key: address},
		throttle.Key{Rule: l.IDNumberDay, Key: digest(n.String())}); err != nil {
		return "", err
	}
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var found struct {
			ID     string `db:"id"`
			Phone  string `db:"phone"`
			Ticket string `db:"ticket_number"`
		}
		err := tx.GetContext(ctx, &found, `
			SELECT r.id, COALESCE(a.phone, r.phone) AS phone, r.ticket_number
			FROM registrations r JOIN accounts a ON a.id = r.account_id
			WHERE r.id_number = $1 AND r.name = $2 AND r.status = 'completed' AND r.ticket_number IS NOT NULL
			ORDER BY r.updated_at DESC LIMIT 1`, n.String(), name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up ticket: %w", err)
		}
		smsID, err = sms.Enqueue(ctx, tx, sms.Outgoing{Purpose: sms.TicketLookup, Phone: found.Phone,
			Params: map[string]string{"ticket": found.Ticket}, RegistrationID: found.ID})
		return err
	})
	return smsID, err
}

// Ticket is a ticket number an applicant holds (我的准考证号): one of a
// completed registration, new or enrolled (在籍, which keeps its ticket).
type Ticket struct {
	TicketNumber string    `db:"ticket_number" json:"ticket_number"`
	Kind         string    `db:"kind" json:"kind"`
	Level        string    `db:"level" json:"level"`
	MajorCode    string    `db:"major_code" json:"major_code"`
	MajorName    string    `db:"major_name" json:"major_name"`
	ExamAreaCode string    `db:"exam_area_code" json:"exam_area_code"`
	CompletedAt  time.Time `db:"completed_at" json:"completed_at"`
}

// Tickets lists the ticket numbers of an account's completed
// registrations, newest first.
func (s *Store) Tickets(ctx context.Context, accountID int64) ([]Ticket, error) {
	tickets := []Ticket{}
	err := s.db.SelectContext(ctx, &tickets, `
		SELECT r.ticket_number, r.kind, r.level, r.major_code, m.name AS major_name, r.exam_area_code,
			COALESCE((SELECT max(h.at) FROM registration_history h WHERE h.registration_id = r.id AND h.status = 'completed'),
				r.updated_at) AS completed_at
		FROM registrations r JOIN majors m ON m.code = r.major_code
		WHERE r.account_id = $1 AND r.status = 'completed' AND r.ticket_number IS NOT NULL
		ORDER BY completed_at DESC, r.ticket_number`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return tickets, nil
}
