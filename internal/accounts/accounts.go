// Package accounts keeps the platform's accounts (考生服务平台账号) and staff
// accounts: sign-up, sessions with bearer tokens, password reset by security
// question and password change. Passwords and security answers are stored as
// argon2id hashes, tokens as SHA-256.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/jmoiron/sqlx"
	"golang.org/x/text/unicode/norm"

	"zikao/internal/db"
	"zikao/internal/sms"
	"zikao/internal/throttle"
	"zikao/internal/wellformed"
)

// Roles.
const (
	RoleApplicant          = "applicant"
	RoleCountyReviewer     = "county_reviewer"
	RoleProvincialReviewer = "provincial_reviewer"
	RoleOnsiteOperator     = "onsite_operator"
	RoleAdmin              = "admin"
)

// Errors the API maps to the contract's codes.
var (
	ErrLoginNameTaken     = errors.New("login name already in use")
	ErrInvalidCredentials = errors.New("invalid login name or password")
	ErrResetRejected      = errors.New("password reset rejected")
	ErrUnauthenticated    = errors.New("no valid session")
)

// InvalidError says which input fields are wrong, keyed by field name.
type InvalidError struct{ Fields map[string]string }

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input:")
	for _, f := range slices.Sorted(maps.Keys(e.Fields)) {
		fmt.Fprintf(&b, "\n  %s: %s", f, e.Fields[f])
	}
	return b.String()
}

// Account is what the rest of the system knows of a logged-in account.
type Account struct {
	ID           int64   `db:"id"`
	LoginName    string  `db:"login_name"`
	Role         string  `db:"role"`
	ExamAreaCode *string `db:"exam_area_code"`
	Phone        *string `db:"phone"` // the bound, verified phone (nil for none)
}

// Area is the exam area a county reviewer or on-site operator is bound to.
func (a Account) Area() string {
	if a.ExamAreaCode == nil {
		return ""
	}
	return *a.ExamAreaCode
}

// Session is a freshly issued bearer token.
type Session struct {
	Token     string
	ExpiresAt time.Time
	Role      string
}

// Limits for failed attempts of one kind (logins, resets, look-ups),
// following OWASP's advice against automated attacks: a login name is locked
// only for the address its failures come from (the pair); failures from
// every address together only slow it down, so that nobody can lock anyone
// else out; an address is locked after many failures, whatever the names. A
// rule with no Scope is not applied.
type Limits struct {
	PerPair    throttle.Rule // failures of one login name from one address
	PerLogin   throttle.Rule // failures of one login name (or account) from every address
	PerAddress throttle.Rule // failures from one client address
}

// DefaultLimits: within 15 minutes, 5 failures of a login name from one
// address, or 50 from one address, refuse it until they are 15 minutes old;
// past 20 failures of a login name from every address, one attempt per
// second, doubling at each further one up to a minute. Resets count apart.
func DefaultLimits(prefix string) Limits {
	const window = 15 * time.Minute
	return Limits{
		PerPair:    throttle.Rule{Scope: prefix + ":pair", Max: 5, Window: window},
		PerLogin:   throttle.Rule{Scope: prefix + ":login", Max: 20, Window: window, Delay: time.Second, MaxDelay: time.Minute},
		PerAddress: throttle.Rule{Scope: prefix + ":address", Max: 50, Window: window},
	}
}

// Store keeps accounts and sessions in PostgreSQL.
type Store struct {
	db          *sqlx.DB
	prepared    *db.Prepared
	limiter     *throttle.Limiter
	SessionTTL  time.Duration
	LoginLimits Limits
	ResetLimits Limits
	SMSLimits   SMSLimits
}

// NewStore returns a Store with the default limits and a 12-hour session.
func NewStore(database *sqlx.DB) *Store {
	return &Store{
		db:          database,
		prepared:    db.NewPrepared(database),
		limiter:     throttle.New(database),
		SessionTTL:  12 * time.Hour,
		LoginLimits: DefaultLimits("password"),
		ResetLimits: DefaultLimits("reset"),
		SMSLimits:   DefaultSMSLimits(),
	}
}

// argon2id parameters: OWASP's second recommended set (19 MiB, 2 passes).
var hashParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash is compared against when a login name does not exist, so that a
// miss costs as long as a wrong password.
var dummyHash, _ = argon2id.CreateHash("not-a-password", hashParams)

func hash(secret string) (string, error) {
	h, err := argon2id.CreateHash(secret, hashParams)
	if err != nil {
		return "", fmt.Errorf("hash secret: %w", err)
	}
	return h, nil
}

func matches(secret, h string) bool {
	ok, err := argon2id.ComparePasswordAndHash(secret, h)
	return err == nil && ok
}

// NormalizeAnswer makes security answers compare the same whatever their
// case, character width (全角/半角) and surrounding or repeated spaces.
func NormalizeAnswer(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(norm.NFKC.String(s)), " "))
}

// NormalizeLoginName trims and lower-cases an e-mail login name.
func NormalizeLoginName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckLoginName validates an e-mail address used as a login name.
func CheckLoginName(s string) string {
	if s == "" {
		return "请填写电子邮箱 / login name (e-mail) is required"
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 {
		return "登录名须为有效的电子邮箱 / login name must be a valid e-mail address"
	}
	return ""
}

// CheckPassword applies the authority's password rule.
func CheckPassword(p string) string {
	switch n := utf8.RuneCountInString(p); {
	case n < 6:
		return "密码至少 6 个字符 / password must have at least 6 characters"
	case n > 128:
		return "密码最多 128 个字符 / password must have at most 128 characters"
	}
	return ""
}

// NewAccount is a sign-up: the e-mail login name, the password, the
// security question and answer, and optionally a phone with the SMS code
// sent to it for sign_up (both or neither).
type NewAccount struct {
	LoginName  string
	Password   string
	QuestionID int
	Answer     string
	Phone      string
	SMSCode    string
}

// SignUp creates an applicant account without a phone.
func (s *Store) SignUp(ctx context.Context, loginName, password string, questionID int, answer string) (Account, error) {
	return s.Create(ctx, NewAccount{LoginName: loginName, Password: password, QuestionID: questionID, Answer: answer})
}

// Create creates an applicant account. With a phone, the code is checked
// first (ErrCodeRejected, as an InvalidError of field sms_code), then
// whether another account holds the phone by now (ErrPhoneTaken); the code
// is used only when the account is created.
func (s *Store) Create(ctx context.Context, in NewAccount) (Account, error) {
	loginName, password, questionID, answer := strings.TrimSpace(in.LoginName), in.Password, in.QuestionID, in.Answer
	fields := map[string]string{}
	if msg := CheckLoginName(loginName); msg != "" {
		fields["login_name"] = msg
	}
	if msg := CheckPassword(password); msg != "" {
		fields["password"] = msg
	}
	known := false // an id past PostgreSQL's integer names no question (and is no error)
	if questionID >= math.MinInt32 && questionID <= math.MaxInt32 {
		if err := s.db.GetContext(ctx, &known, `SELECT EXISTS (SELECT 1 FROM security_questions WHERE id = $1)`, questionID); err != nil {
			return Account{}, fmt.Errorf("look up security question: %w", err)
		}
	}
	if !known {
		fields["security_question_id"] = "请从列表中选择密保问题 / choose a security question from the list"
	}
	if a := NormalizeAnswer(answer); a == "" {
		fields["security_answer"] = "请填写密保答案 / security answer is required"
	} else if utf8.RuneCountInString(a) > 100 {
		fields["security_answer"] = "密保答案最多 100 个字符 / security answer must have at most 100 characters"
	}
	phone := strings.TrimSpace(in.Phone)
	checkPhoneAndCode(phone, in.SMSCode, true, fields)
	if len(fields) > 0 {
		return Account{}, &InvalidError{Fields: fields}
	}
	pw, err := hash(password)
	if err != nil {
		return Account{}, err
	}
	ans, err := hash(NormalizeAnswer(answer))
	if err != nil {
		return Account{}, err
	}
	var a Account
	create := func(tx *sqlx.Tx) error {
		var phoneArg any
		if phone != "" {
			if err := lockPhone(ctx, tx, phone, 0); err != nil {
				return err
			}
			phoneArg = phone
		}
		// ON CONFLICT, not a unique violation: its error would write the
		// login name into PostgreSQL's server log.
		err := tx.GetContext(ctx, &a, `
			INSERT INTO accounts (login_name, password_hash, security_question_id, security_answer_hash, role, phone)
			VALUES ($1, $2, $3, $4, 'applicant', $5) ON CONFLICT (lower(login_name)) DO NOTHING
			RETURNING id, login_name, role, exam_area_code, phone`,
			loginName, pw, questionID, ans, phoneArg)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLoginNameTaken
		}
		if err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		return nil
	}
	if phone == "" {
		err = db.InTx(ctx, s.db, create)
	} else {
		err = s.useCode(ctx, phone, sms.SignUp, in.SMSCode, create)
	}
	if err != nil {
		return Account{}, err
	}
	return a, nil
}

// ErrNotStaff: the login name belongs to an applicant, who cannot be made staff.
var ErrNotStaff = errors.New("this login name belongs to an applicant account")

// CreateStaff creates (or, when the login name is a staff account already,
// updates the role, area and password of, enabling it and ending its
// sessions) a staff account. Staff never sign up themselves, and an
// applicant's account never becomes a staff account. (AddStaff, in
// staff.go, creates only: the same rules.)
func (s *Store) CreateStaff(ctx context.Context, loginName, password, role, area string) (Account, error) {
	a, err := s.putStaff(ctx, loginName, password, role, area, true)
	return a.Account, err
}

type credentials struct {
	Account
	PasswordHash string  `db:"password_hash"`
	QuestionID   *int    `db:"security_question_id"`
	AnswerHash   *string `db:"security_answer_hash"`
	Disabled     bool    `db:"disabled"`
}

func (s *Store) credentials(ctx context.Context, loginName string) (*credentials, error) {
	login, by := NormalizeLoginName(loginName), "lower(login_name)"
	if sms.ValidPhone(login) {
		by = "phone" // an e-mail never looks like a phone: the bound phone is a login name too
	}
	var c credentials
	err := s.db.GetContext(ctx, &c, `
		SELECT id, login_name, role, exam_area_code, phone, password_hash, security_question_id, security_answer_hash,
			disabled_at IS NOT NULL AS disabled
		FROM accounts WHERE `+by+` = $1`, login)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up account: %w", err)
	}
	return &c, nil
}

// Keys are the throttle keys of an attempt of login from address.
func (l Limits) Keys(login, address string) []throttle.Key {
	var keys []throttle.Key
	for _, k := range []throttle.Key{l.pair(login, address), {Rule: l.PerLogin, Key: login}, {Rule: l.PerAddress, Key: address}} {
		if k.Rule.Scope != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// pair is the key of login from address (an address holds no space).
func (l Limits) pair(login, address string) throttle.Key {
	return throttle.Key{Rule: l.PerPair, Key: login + " " + address}
}

// attempt counts an attempt under limits l and runs check; a success takes
// the count back and forgets the failures of the login name from this
// address. (Callers have read the request already, so that the attempt is
// pending only while it is checked.)
func (s *Store) attempt(ctx context.Context, l Limits, loginName, address string, check func() (bool, error)) (bool, error) {
	login := NormalizeLoginName(loginName)
	if sms.ValidPhone(login) {
		login = digest(login) // a phone (sign-in by phone, reset by SMS code) stays out of the throttle's rows, as in the SMS limits
	}
	a, err := s.limiter.Begin(ctx, l.Keys(login, address)...)
	if err != nil {
		return false, err
	}
	ok, err := check()
	ctx = context.WithoutCancel(ctx) // confirm even when the client has gone
	switch {
	case err != nil:
		return false, errors.Join(err, a.Forgive(ctx))
	case !ok:
		return false, a.Failed(ctx)
	}
	if l.PerPair.Scope == "" {
		return true, a.Forgive(ctx)
	}
	return true, errors.Join(a.Forgive(ctx), s.limiter.Reset(ctx, l.pair(login, address)))
}

// Login checks a login name and password and opens a session.
func (s *Store) Login(ctx context.Context, loginName, password, address string) (Session, error) {
	if !wellformed.Text(loginName) {
		return Session{}, ErrInvalidCredentials // no such login; nothing to count
	}
	var c *credentials
	ok, err := s.attempt(ctx, s.LoginLimits, loginName, address, func() (bool, error) {
		var err error
		if c, err = s.credentials(ctx, loginName); err != nil {
			return false, err
		}
		if c == nil {
			matches(password, dummyHash) // as slow as a wrong password
			return false, nil
		}
		return matches(password, c.PasswordHash) && !c.Disabled, nil // a disabled account: as a wrong password
	})
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, ErrInvalidCredentials
	}
	return s.newSession(ctx, c.Account)
}

func (s *Store) newSession(ctx context.Context, a Account) (Session, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Session{}, fmt.Errorf("make token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1 AND expires_at <= now()`, a.ID); err != nil {
		return Session{}, fmt.Errorf("remove expired sessions: %w", err)
	}
	var expires time.Time
	err := s.db.GetContext(ctx, &expires, `
		INSERT INTO sessions (token_hash, account_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
		RETURNING expires_at`, tokenHash(token), a.ID, s.SessionTTL.Seconds())
	if err != nil {
		return Session{}, fmt.Errorf("store session: %w", err)
	}
	return Session{Token: token, ExpiresAt: expires, Role: a.Role}, nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Authenticate returns the account of a valid, unexpired token of an
// account that is not disabled.
func (s *Store) Authenticate(ctx context.Context, token string) (Account, error) {
	var a Account
	st, err := s.prepared.Stmt(ctx, `
		SELECT a.id, a.login_name, a.role, a.exam_area_code, a.phone FROM sessions s JOIN accounts a ON a.id = s.account_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND a.disabled_at IS NULL`) // every request's: prepared
	if err == nil {
		err = st.GetContext(ctx, &a, tokenHash(token))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrUnauthenticated
	}
	if err != nil {
		return Account{}, fmt.Errorf("look up session: %w", err)
	}
	return a, nil
}

// Logout ends the session of token.
func (s *Store) Logout(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// ResetPassword sets a new password when the login name (of an applicant:
// staff reset nothing here), the security question chosen at sign-up and
// its answer all match. Every failure is ErrResetRejected, whether or not the
// login name exists, and counts toward a lockout. A reset ends every session
// of the account.
func (s *Store) ResetPassword(ctx context.Context, loginName string, questionID int, answer, newPassword, address string) error {
	if !wellformed.Text(loginName) {
		return ErrResetRejected
	}
	if msg := CheckPassword(newPassword); msg != "" {
		return &InvalidError{Fields: map[string]string{"new_password": msg}}
	}
	var c *credentials
	ok, err := s.attempt(ctx, s.ResetLimits, loginName, address, func() (bool, error) {
		var err error
		if c, err = s.credentials(ctx, loginName); err != nil {
			return false, err
		}
		if c == nil || c.Role != RoleApplicant || c.AnswerHash == nil || c.QuestionID == nil || *c.QuestionID != questionID {
			matches(answer, dummyHash)
			return false, nil
		}
		return matches(NormalizeAnswer(answer), *c.AnswerHash), nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return ErrResetRejected
	}
	return s.setPassword(ctx, c.ID, newPassword, nil)
}

// ChangePassword replaces the password of a logged-in account after checking
// the old one, and ends the account's other sessions (the one of keepToken
// stays open).
func (s *Store) ChangePassword(ctx context.Context, accountID int64, keepToken, oldPassword, newPassword, address string) error {
	if msg := CheckPassword(newPassword); msg != "" {
		return &InvalidError{Fields: map[string]string{"new_password": msg}}
	}
	var a credentials
	if err := s.db.GetContext(ctx, &a, `SELECT id, login_name, role, exam_area_code, password_hash FROM accounts WHERE id = $1`, accountID); err != nil {
		return fmt.Errorf("look up account: %w", err)
	}
	ok, err := s.attempt(ctx, s.LoginLimits, a.LoginName, address, func() (bool, error) {
		return matches(oldPassword, a.PasswordHash), nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCredentials
	}
	return s.setPassword(ctx, accountID, newPassword, tokenHash(keepToken))
}

// setPassword stores a new password and ends every session but keep's.
func (s *Store) setPassword(ctx context.Context, accountID int64, password string, keep []byte) error {
	pw, err := hash(password)
	if err != nil {
		return err
	}
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $2, password_changed_at = now() WHERE id = $1`, accountID, pw); err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)`, accountID, keep); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return nil
	})
}
