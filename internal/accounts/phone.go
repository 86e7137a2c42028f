package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
	"zikao/internal/sms"
	"zikao/internal/throttle"
)

// Errors of phones and SMS codes.
var (
	// ErrCodeRejected: the SMS code is wrong, expired, used, voided, or for
	// another phone or purpose. It comes as an InvalidError of field
	// sms_code where the contract says 422.
	ErrCodeRejected = errors.New("SMS code rejected")
	// ErrPhoneTaken: another account holds the phone.
	ErrPhoneTaken = errors.New("phone bound to another account")
)

// Phone numbers: 11 digits, 1 then 3–9.

// CheckPhone validates a mobile phone number.
func CheckPhone(p string) string {
	switch {
	case p == "":
		return "请填写手机号码 / phone number is required"
	case !sms.ValidPhone(p):
		return "手机号码须为11位数字，以1开头 / phone number must be 11 digits starting with 1"
	}
	return ""
}

const codeRejected = "短信验证码错误、已过期或已使用，请重新获取 / the SMS code is wrong, expired or used: ask for a new one"

// checkPhoneAndCode checks a phone and its code into fields; optional
// allows neither (both or neither).
func checkPhoneAndCode(phone, code string, optional bool, fields map[string]string) {
	if optional && phone == "" && code == "" {
		return
	}
	if msg := CheckPhone(phone); msg != "" {
		fields["phone"] = msg
	}
	if code == "" {
		fields["sms_code"] = "请填写短信验证码 / SMS code is required"
	}
}

// SMSLimits bound the SMS a phone and an address can cause (api.md:
// one code per phone per 60 s, 10 per phone per day, 20 per address per
// hour, shared with ticket look-ups, and 3 look-ups per ID number per day).
// Every request counts, whether or not a message goes: a limit that only
// counted sent messages would tell which phones are known.
type SMSLimits struct {
	PhoneMinute throttle.Rule
	PhoneDay    throttle.Rule
	Address     throttle.Rule
	IDNumberDay throttle.Rule
}

// DefaultSMSLimits are api.md's defaults.
func DefaultSMSLimits() SMSLimits {
	return SMSLimits{
		PhoneMinute: throttle.Rule{Scope: "sms:phone-minute", Max: 1, Window: time.Minute},
		PhoneDay:    throttle.Rule{Scope: "sms:phone-day", Max: 10, Window: 24 * time.Hour},
		Address:     throttle.Rule{Scope: "sms:address", Max: 20, Window: time.Hour},
		IDNumberDay: throttle.Rule{Scope: "sms:id-number-day", Max: 3, Window: 24 * time.Hour},
	}
}

// digest is the throttle key of a phone or an ID number: their rows must not
// hold them.
func digest(s string) string {
	h := sha256.Sum256([]byte("zikao throttle\x00" + s))
	return hex.EncodeToString(h[:16])
}

// countSMS counts one request under keys (every one counts: Failed), or
// refuses it with a *throttle.LockedError.
func (s *Store) countSMS(ctx context.Context, keys ...throttle.Key) error {
	a, err := s.limiter.Begin(ctx, keys...)
	if err != nil {
		return err
	}
	return a.Failed(context.WithoutCancel(ctx))
}

// RequestCode asks for an SMS code for phone and purpose from address. It
// answers the same whether or not a code is sent (nil, or an error for bad
// input or a limit): a code goes where the purpose fits (sign_up and
// bind_phone: no account holds the phone; reset_password: an applicant's
// account holds it). smsID is the outbox row of the code ("" when none
// went), for Sender.Deliver; it must not reach the client.
func (s *Store) RequestCode(ctx context.Context, phone, purpose, address string) (smsID string, err error) {
	phone = strings.TrimSpace(phone)
	fields := map[string]string{}
	if msg := CheckPhone(phone); msg != "" {
		fields["phone"] = msg
	}
	p := sms.Purpose(purpose)
	if !p.IsCode() {
		fields["purpose"] = "用途须为 sign_up、bind_phone 或 reset_password / purpose must be sign_up, bind_phone or reset_password"
	}
	if len(fields) > 0 {
		return "", &InvalidError{Fields: fields}
	}
	l := s.SMSLimits
	if err := s.countSMS(ctx, throttle.Key{Rule: l.PhoneMinute, Key: digest(phone)},
		throttle.Key{Rule: l.PhoneDay, Key: digest(phone)}, throttle.Key{Rule: l.Address, Key: address}); err != nil {
		return "", err
	}
	code, err := newCode()
	if err != nil {
		return "", err
	}
	h, err := hash(code) // before knowing whether it goes: the same time either way
	if err != nil {
		return "", err
	}
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var holder sql.NullString // the role of the account holding the phone
		if err := tx.GetContext(ctx, &holder, `SELECT (SELECT role FROM accounts WHERE phone = $1)`, phone); err != nil {
			return fmt.Errorf("look up phone: %w", err)
		}
		fits := !holder.Valid
		if p == sms.ResetPassword {
			fits = holder.String == RoleApplicant
		}
		if !fits {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO sms_codes (phone, purpose, code_hash, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))
			ON CONFLICT (phone, purpose) DO UPDATE SET code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at,
				wrong_entries = 0, created_at = now()`, phone, purpose, h, sms.CodeLifetime.Seconds()); err != nil {
			return fmt.Errorf("store SMS code: %w", err)
		}
		smsID, err = sms.Enqueue(ctx, tx, sms.Outgoing{Purpose: p, Phone: phone, Params: map[string]string{"code": code}})
		return err
	})
	return smsID, err
}

// newCode is 6 digits from crypto/rand.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("make SMS code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// MaxWrongEntries void a code.
const MaxWrongEntries = 5

// useCode checks code against the live code of phone and purpose and, when
// it is right, deletes it and runs fn in the same transaction: fn's error
// rolls both back (the code stays usable). A wrong code counts an entry (the
// fifth voids it) and answers an InvalidError of field sms_code, as does a
// missing, expired or voided one.
func (s *Store) useCode(ctx context.Context, phone string, purpose sms.Purpose, code string, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	var live struct {
		Hash    string `db:"code_hash"`
		Expired bool   `db:"expired"`
	}
	err = tx.GetContext(ctx, &live, `SELECT code_hash, expires_at <= now() AS expired FROM sms_codes
		WHERE phone = $1 AND purpose = $2 FOR UPDATE`, phone, string(purpose))
	rejected := &InvalidError{Fields: map[string]string{"sms_code": codeRejected}}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		matches(code, dummyHash)
		return errors.Join(rejected, ErrCodeRejected)
	case err != nil:
		return fmt.Errorf("look up SMS code: %w", err)
	case live.Expired:
		return errors.Join(rejected, ErrCodeRejected)
	case !matches(strings.TrimSpace(code), live.Hash):
		// Two statements: in one (an UPDATE in a WITH, a DELETE of the same
		// row), the DELETE cannot see the row the UPDATE wrote and deletes
		// nothing, and the code would outlive its fifth wrong entry.
		if _, err := tx.ExecContext(ctx, `UPDATE sms_codes SET wrong_entries = wrong_entries + 1 WHERE phone = $1 AND purpose = $2`,
			phone, string(purpose)); err != nil {
			return fmt.Errorf("count a wrong SMS code: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sms_codes WHERE phone = $1 AND purpose = $2 AND wrong_entries >= $3`,
			phone, string(purpose), MaxWrongEntries); err != nil {
			return fmt.Errorf("count a wrong SMS code: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("count a wrong SMS code: %w", err)
		}
		return errors.Join(rejected, ErrCodeRejected)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sms_codes WHERE phone = $1 AND purpose = $2`, phone, string(purpose)); err != nil {
		return fmt.Errorf("use SMS code: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// lockPhone takes phone's advisory lock for tx and refuses it when an
// account other than self holds it: the check and the write that follows
// cannot race another binding (nor hit the unique index, whose error would
// put the number in the server's log).
func lockPhone(ctx context.Context, tx *sqlx.Tx, phone string, self int64) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('phone:' || $1, 0))`, phone); err != nil {
		return fmt.Errorf("lock phone: %w", err)
	}
	var taken bool
	if err := tx.GetContext(ctx, &taken, `SELECT EXISTS (SELECT 1 FROM accounts WHERE phone = $1 AND id <> $2)`, phone, self); err != nil {
		return fmt.Errorf("look up phone: %w", err)
	}
	if taken {
		return ErrPhoneTaken
	}
	return nil
}

// BindPhone binds (or changes to) phone for an account, with the code sent
// to it for bind_phone. It returns the phone bound.
func (s *Store) BindPhone(ctx context.Context, accountID int64, phone, code string) (string, error) {
	phone = strings.TrimSpace(phone)
	fields := map[string]string{}
	checkPhoneAndCode(phone, code, false, fields)
	if len(fields) > 0 {
		return "", &InvalidError{Fields: fields}
	}
	err := s.useCode(ctx, phone, sms.BindPhone, code, func(tx *sqlx.Tx) error {
		if err := lockPhone(ctx, tx, phone, accountID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET phone = $2 WHERE id = $1`, accountID, phone); err != nil {
			return fmt.Errorf("bind phone: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return phone, nil
}

// ResetPasswordByPhone sets a new password for the applicant's account
// bound to phone, with the code sent to it for reset_password, and ends
// every session of the account. Every failure is ErrResetRejected (a bad
// new password apart), and counts toward the reset limits of the phone.
func (s *Store) ResetPasswordByPhone(ctx context.Context, phone, code, newPassword, address string) error {
	phone = strings.TrimSpace(phone)
	if msg := CheckPassword(newPassword); msg != "" {
		return &InvalidError{Fields: map[string]string{"new_password": msg}}
	}
	if !sms.ValidPhone(phone) {
		return ErrResetRejected
	}
	pw, err := hash(newPassword)
	if err != nil {
		return err
	}
	ok, err := s.attempt(ctx, s.ResetLimits, phone, address, func() (bool, error) {
		err := s.useCode(ctx, phone, sms.ResetPassword, code, func(tx *sqlx.Tx) error {
			var id int64
			err := tx.GetContext(ctx, &id, `UPDATE accounts SET password_hash = $2, password_changed_at = now()
				WHERE phone = $1 AND role = 'applicant' RETURNING id`, phone, pw)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrResetRejected // the phone was unbound since the code went
			}
			if err != nil {
				return fmt.Errorf("store password: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1`, id); err != nil {
				return fmt.Errorf("end sessions: %w", err)
			}
			return nil
		})
		if errors.Is(err, ErrCodeRejected) || errors.Is(err, ErrResetRejected) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	if !ok {
		return ErrResetRejected
	}
	return nil
}
