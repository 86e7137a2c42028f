package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/registrations"
	"zikao/internal/sms"
	"zikao/internal/status"
	"zikao/internal/testenv"
	"zikao/internal/throttle"
)

var phoneSeq atomic.Int64

// newPhone is a phone number no other call made.
func newPhone() string { return fmt.Sprintf("1360%07d", phoneSeq.Add(1)) }

// usedPhones are every phone the tests made, for the checks of what
// PostgreSQL and the throttle keep.
func usedPhones() []string {
	var out []string
	for i := int64(1); i <= phoneSeq.Load(); i++ {
		out = append(out, fmt.Sprintf("1360%07d", i))
	}
	return out
}

func newAddress() string { return "192.0.2." + uuid.NewString()[:8] }

// relaxed is a store whose SMS limits stay out of the way.
func relaxed() *accounts.Store {
	s := accounts.NewStore(database)
	s.SMSLimits.PhoneMinute.Max, s.SMSLimits.PhoneDay.Max, s.SMSLimits.Address.Max, s.SMSLimits.IDNumberDay.Max = 1000, 1000, 1000, 1000
	return s
}

// requestCode asks for a code and reads it from the outbox row, as the
// provider would get it.
func requestCode(t *testing.T, s *accounts.Store, phone string, purpose sms.Purpose) string {
	t.Helper()
	id, err := s.RequestCode(context.Background(), phone, string(purpose), newAddress())
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatalf("no %s code sent to a phone it fits", purpose)
	}
	var code string
	if err := database.Get(&code, `SELECT params->>'code' FROM sms_outbox WHERE id = $1 AND purpose = $2 AND phone = $3`, id, string(purpose), phone); err != nil {
		t.Fatal(err)
	}
	return code
}

// wrong is a 6-digit code other than code.
func wrong(code string, i int) string {
	w := fmt.Sprintf("%06d", (i*7919+1)%1_000_000)
	if w == code {
		w = fmt.Sprintf("%06d", (i*7919+2)%1_000_000)
	}
	return w
}

func newAccount(t *testing.T, s *accounts.Store) (accounts.Account, string) {
	t.Helper()
	login := "p-" + uuid.NewString()[:8] + "@example.com"
	a, err := s.SignUp(context.Background(), login, "secret1", 1, "答案")
	if err != nil {
		t.Fatal(err)
	}
	return a, login
}

// wantRejected checks err is the code's rejection: ErrCodeRejected, as an
// InvalidError of field sms_code.
func wantRejected(t *testing.T, what string, err error) {
	t.Helper()
	var invalid *accounts.InvalidError
	if !errors.Is(err, accounts.ErrCodeRejected) || !errors.As(err, &invalid) || invalid.Fields["sms_code"] == "" || len(invalid.Fields) != 1 {
		t.Errorf("%s: %v; want the code rejected (field sms_code)", what, err)
	}
}

func phoneOf(t *testing.T, accountID int64) string {
	t.Helper()
	var p *string
	if err := database.Get(&p, `SELECT phone FROM accounts WHERE id = $1`, accountID); err != nil {
		t.Fatal(err)
	}
	if p == nil {
		return ""
	}
	return *p
}

func outboxCount(t *testing.T, purpose sms.Purpose) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM sms_outbox WHERE purpose = $1`, string(purpose)); err != nil {
		t.Fatal(err)
	}
	return n
}

// A code is 6 digits from crypto/rand, goes to the outbox (no registration,
// no step) and lives in sms_codes only as an argon2id hash, for 10 minutes.
func TestCodeIsStoredHashedOnly(t *testing.T) {
	s := relaxed()
	seen := map[string]bool{}
	for i := 0; i < 12; i++ {
		phone := newPhone()
		code := requestCode(t, s, phone, sms.SignUp)
		if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
			t.Fatalf("code %q is not 6 digits", code)
		}
		seen[code] = true
		var row struct {
			Hash    string  `db:"code_hash"`
			All     string  `db:"all"`
			Expires float64 `db:"expires_in"`
			Wrong   int     `db:"wrong_entries"`
		}
		if err := database.Get(&row, `SELECT code_hash, row_to_json(c)::text AS all, wrong_entries,
			EXTRACT(EPOCH FROM expires_at - now())::float8 AS expires_in FROM sms_codes c WHERE phone = $1 AND purpose = 'sign_up'`, phone); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(row.Hash, "$argon2id$") || strings.Contains(row.All, code) {
			t.Fatalf("sms_codes holds %s for code %s: want its argon2id hash only", row.All, code)
		}
		if row.Expires < 9*60 || row.Expires > 10*60 || row.Wrong != 0 {
			t.Fatalf("the code expires in %.0fs with %d wrong entries; want 10 minutes, none", row.Expires, row.Wrong)
		}
		var msg struct {
			Registration *string `db:"registration_id"`
			Seq          *int    `db:"seq"`
			Template     string  `db:"template_code"`
		}
		if err := database.Get(&msg, `SELECT registration_id::text, seq, template_code FROM sms_outbox WHERE phone = $1`, phone); err != nil {
			t.Fatal(err)
		}
		if msg.Registration != nil || msg.Seq != nil || msg.Template != sms.Templates[sms.SignUp].Code {
			t.Fatalf("the code's message: %+v", msg)
		}
	}
	if len(seen) < 10 {
		t.Errorf("12 codes, only %d different", len(seen))
	}
}

func TestRequestCodeRefusesBadInput(t *testing.T) {
	s := relaxed()
	for _, c := range []struct{ phone, purpose, field string }{
		{"", "sign_up", "phone"}, {"1380000000", "sign_up", "phone"}, {"12800000000", "sign_up", "phone"}, {"+8613800000000", "sign_up", "phone"},
		{newPhone(), "ticket_lookup", "purpose"}, {newPhone(), "", "purpose"}, {newPhone(), "login", "purpose"},
	} {
		id, err := s.RequestCode(context.Background(), c.phone, c.purpose, newAddress())
		var invalid *accounts.InvalidError
		if !errors.As(err, &invalid) || invalid.Fields[c.field] == "" || id != "" {
			t.Errorf("phone %q purpose %q: %q, %v; want field %s refused", c.phone, c.purpose, id, err, c.field)
		}
	}
}

// A newer code for the same phone and purpose voids the older one.
func TestNewerCodeVoidsTheOlder(t *testing.T) {
	s := relaxed()
	a, _ := newAccount(t, s)
	phone := newPhone()
	older := requestCode(t, s, phone, sms.BindPhone)
	newer := requestCode(t, s, phone, sms.BindPhone)
	if older == newer {
		t.Skip("the two codes happen to be equal")
	}
	_, err := s.BindPhone(context.Background(), a.ID, phone, older)
	wantRejected(t, "the older code", err)
	if got, err := s.BindPhone(context.Background(), a.ID, phone, newer); err != nil || got != phone {
		t.Fatalf("the newer code: %q, %v", got, err)
	}
}

// Five wrong entries void a code; four do not.
func TestFiveWrongEntriesVoidTheCode(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	for _, wrongs := range []int{4, 5} {
		a, _ := newAccount(t, s)
		phone := newPhone()
		code := requestCode(t, s, phone, sms.BindPhone)
		for i := 0; i < wrongs; i++ {
			_, err := s.BindPhone(ctx, a.ID, phone, wrong(code, i))
			wantRejected(t, fmt.Sprintf("wrong entry %d", i+1), err)
		}
		_, err := s.BindPhone(ctx, a.ID, phone, code)
		if wrongs < accounts.MaxWrongEntries {
			if err != nil || phoneOf(t, a.ID) != phone {
				t.Errorf("the right code after %d wrong entries: %v", wrongs, err)
			}
			continue
		}
		wantRejected(t, "the right code after five wrong entries", err)
		var live int
		if err := database.Get(&live, `SELECT count(*) FROM sms_codes WHERE phone = $1`, phone); err != nil || live != 0 {
			t.Errorf("%d codes live after five wrong entries (%v)", live, err)
		}
		if phoneOf(t, a.ID) != "" {
			t.Errorf("the phone was bound with a voided code")
		}
	}
}

func TestExpiredCodeFails(t *testing.T) {
	s := relaxed()
	a, _ := newAccount(t, s)
	phone := newPhone()
	code := requestCode(t, s, phone, sms.BindPhone)
	if _, err := database.Exec(`UPDATE sms_codes SET expires_at = now() - interval '1 second' WHERE phone = $1`, phone); err != nil {
		t.Fatal(err)
	}
	_, err := s.BindPhone(context.Background(), a.ID, phone, code)
	wantRejected(t, "an expired code", err)
	if phoneOf(t, a.ID) != "" {
		t.Error("bound with an expired code")
	}
}

// A code is good for its own phone and purpose only.
func TestCodeOfAnotherPurposeOrPhoneFails(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	a, _ := newAccount(t, s)
	phone, other := newPhone(), newPhone()
	signUpCode := requestCode(t, s, phone, sms.SignUp)
	_, err := s.BindPhone(ctx, a.ID, phone, signUpCode)
	wantRejected(t, "a sign-up code to bind a phone", err)
	otherCode := requestCode(t, s, other, sms.BindPhone)
	bindCode := requestCode(t, s, phone, sms.BindPhone)
	if otherCode != bindCode {
		_, err = s.BindPhone(ctx, a.ID, phone, otherCode)
		wantRejected(t, "another phone's code", err)
	}
	_, err = s.Create(ctx, accounts.NewAccount{LoginName: "x-" + uuid.NewString()[:8] + "@example.com", Password: "secret1",
		QuestionID: 1, Answer: "a", Phone: phone, SMSCode: bindCode})
	wantRejected(t, "a bind_phone code to sign up", err)
	if got, err := s.BindPhone(ctx, a.ID, phone, bindCode); err != nil || got != phone {
		t.Fatalf("its own code: %q, %v", got, err)
	}
}

// A code is used once.
func TestCodeIsUsedOnce(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	a, _ := newAccount(t, s)
	b, _ := newAccount(t, s)
	phone := newPhone()
	code := requestCode(t, s, phone, sms.BindPhone)
	if _, err := s.BindPhone(ctx, a.ID, phone, code); err != nil {
		t.Fatal(err)
	}
	_, err := s.BindPhone(ctx, b.ID, phone, code)
	wantRejected(t, "the code used again (checked before the phone)", err)
	_, err = s.BindPhone(ctx, a.ID, phone, code)
	wantRejected(t, "the code used again by its account", err)
}

// Signing up with a phone and its code binds it; the code is checked first,
// then whether another account holds the phone by now (phone_taken).
func TestSignUpWithPhone(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	phone := newPhone()
	code := requestCode(t, s, phone, sms.SignUp)
	login := "s-" + uuid.NewString()[:8] + "@example.com"
	a, err := s.Create(ctx, accounts.NewAccount{LoginName: login, Password: "secret1", QuestionID: 1, Answer: "a", Phone: " " + phone + " ", SMSCode: code})
	if err != nil || a.Phone == nil || *a.Phone != phone || a.Role != accounts.RoleApplicant {
		t.Fatalf("sign-up with a phone: %+v, %v", a, err)
	}
	// The phone is held: no sign-up code goes to it, the answer the same.
	before := outboxCount(t, sms.SignUp)
	if id, err := s.RequestCode(ctx, phone, "sign_up", newAddress()); err != nil || id != "" || outboxCount(t, sms.SignUp) != before {
		t.Fatalf("a sign-up code to a held phone: %q, %v", id, err)
	}
	if id, err := s.RequestCode(ctx, phone, "bind_phone", newAddress()); err != nil || id != "" {
		t.Fatalf("a bind_phone code to a held phone: %q, %v", id, err)
	}

	// Codes sent while the phone was free; another account takes it.
	taken := newPhone()
	signUpCode := requestCode(t, s, taken, sms.SignUp)
	bindCode := requestCode(t, s, taken, sms.BindPhone)
	holder, _ := newAccount(t, s)
	if _, err := s.BindPhone(ctx, holder.ID, taken, bindCode); err != nil {
		t.Fatal(err)
	}
	late := "l-" + uuid.NewString()[:8] + "@example.com"
	_, err = s.Create(ctx, accounts.NewAccount{LoginName: late, Password: "secret1", QuestionID: 1, Answer: "a", Phone: taken, SMSCode: wrong(signUpCode, 1)})
	wantRejected(t, "a wrong code for a taken phone (the code is checked first)", err)
	_, err = s.Create(ctx, accounts.NewAccount{LoginName: late, Password: "secret1", QuestionID: 1, Answer: "a", Phone: taken, SMSCode: signUpCode})
	if !errors.Is(err, accounts.ErrPhoneTaken) {
		t.Fatalf("sign-up with a phone taken meanwhile: %v, want ErrPhoneTaken", err)
	}
	if _, err := s.SignUp(ctx, late, "secret1", 1, "a"); err != nil {
		t.Fatalf("the login name of the refused sign-up is not free: %v", err)
	}

	// Both or neither.
	for _, c := range []struct{ phone, code, field string }{{phone, "", "sms_code"}, {"", "123456", "phone"}, {"1234", "123456", "phone"}} {
		_, err := s.Create(ctx, accounts.NewAccount{LoginName: "n-" + uuid.NewString()[:8] + "@example.com", Password: "secret1", QuestionID: 1,
			Answer: "a", Phone: c.phone, SMSCode: c.code})
		var invalid *accounts.InvalidError
		if !errors.As(err, &invalid) || invalid.Fields[c.field] == "" {
			t.Errorf("phone %q code %q: %v, want field %s", c.phone, c.code, err, c.field)
		}
	}

	// A refused binding raises no unique violation, whose DETAIL would
	// write the number into PostgreSQL's server log.
	log, err := os.ReadFile(testenv.PostgresLog())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range usedPhones() {
		if strings.Contains(string(log), p) {
			t.Errorf("PostgreSQL's server log holds the phone %s", p)
		}
	}
}

// Binding (and changing) a phone; another account's phone is refused.
func TestBindPhone(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	a, login := newAccount(t, s)
	first, second := newPhone(), newPhone()
	if got, err := s.BindPhone(ctx, a.ID, first, requestCode(t, s, first, sms.BindPhone)); err != nil || got != first {
		t.Fatalf("bind: %q, %v", got, err)
	}
	sess, err := s.Login(ctx, login, "secret1", newAddress())
	if err != nil {
		t.Fatal(err)
	}
	if acc, err := s.Authenticate(ctx, sess.Token); err != nil || acc.Phone == nil || *acc.Phone != first {
		t.Fatalf("the account after binding: %+v, %v", acc, err)
	}
	// b's code to the other phone dies when a newer one is sent for it.
	b, _ := newAccount(t, s)
	forB := requestCode(t, s, second, sms.BindPhone)
	if _, err := s.BindPhone(ctx, a.ID, second, requestCode(t, s, second, sms.BindPhone)); err != nil {
		t.Fatalf("change the phone: %v", err)
	}
	if phoneOf(t, a.ID) != second {
		t.Fatalf("the phone was not changed")
	}
	// The first phone is free again: a sign-up code goes to it.
	if id, err := s.RequestCode(ctx, first, "sign_up", newAddress()); err != nil || id == "" {
		t.Errorf("a sign-up code to the phone given up: %q, %v", id, err)
	}
	_, err = s.BindPhone(ctx, b.ID, second, forB)
	wantRejected(t, "a code voided by the newer one", err)
	if id, err := s.RequestCode(ctx, second, "bind_phone", newAddress()); err != nil || id != "" {
		t.Errorf("a bind_phone code to a held phone: %q, %v", id, err)
	}
	// Invalid input.
	for _, in := range []struct{ phone, code, field string }{{"", "123456", "phone"}, {"123", "123456", "phone"}, {newPhone(), "", "sms_code"}} {
		_, err := s.BindPhone(ctx, a.ID, in.phone, in.code)
		var invalid *accounts.InvalidError
		if !errors.As(err, &invalid) || invalid.Fields[in.field] == "" {
			t.Errorf("bind %q with %q: %v, want field %s", in.phone, in.code, err, in.field)
		}
	}
}

// Another account holding the phone by the time the code is entered (it
// signed up with it meanwhile): ErrPhoneTaken, and the code stays usable
// (nothing was written).
func TestBindPhoneTaken(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	late, _ := newAccount(t, s)
	phone := newPhone()
	bindCode := requestCode(t, s, phone, sms.BindPhone)
	signUpCode := requestCode(t, s, phone, sms.SignUp)
	holder, err := s.Create(ctx, accounts.NewAccount{LoginName: "h-" + uuid.NewString()[:8] + "@example.com", Password: "secret1",
		QuestionID: 1, Answer: "a", Phone: phone, SMSCode: signUpCode})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BindPhone(ctx, late.ID, phone, bindCode); !errors.Is(err, accounts.ErrPhoneTaken) {
		t.Fatalf("binding a phone another account holds: %v, want ErrPhoneTaken", err)
	}
	if phoneOf(t, late.ID) != "" || phoneOf(t, holder.ID) != phone {
		t.Fatal("the phone moved")
	}
	var live int
	if err := database.Get(&live, `SELECT count(*) FROM sms_codes WHERE phone = $1 AND purpose = 'bind_phone'`, phone); err != nil || live != 1 {
		t.Errorf("%d binding codes live after the refusal, want it kept (%v)", live, err)
	}
	// Once the holder gives the phone up, the code binds it.
	other := newPhone()
	if _, err := s.BindPhone(ctx, holder.ID, other, requestCode(t, s, other, sms.BindPhone)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BindPhone(ctx, late.ID, phone, bindCode); err != nil || got != phone {
		t.Errorf("the kept code once the phone is free: %q, %v", got, err)
	}
}

// Signing in with the bound phone as the login name.
func TestLoginByPhone(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	a, _ := newAccount(t, s)
	phone := newPhone()
	if _, err := s.Login(ctx, phone, "secret1", newAddress()); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("a phone bound to nobody: %v", err)
	}
	if _, err := s.BindPhone(ctx, a.ID, phone, requestCode(t, s, phone, sms.BindPhone)); err != nil {
		t.Fatal(err)
	}
	sess, err := s.Login(ctx, " "+phone+" ", "secret1", newAddress())
	if err != nil {
		t.Fatalf("login by phone: %v", err)
	}
	if acc, err := s.Authenticate(ctx, sess.Token); err != nil || acc.ID != a.ID {
		t.Fatalf("the session of a login by phone: %+v, %v", acc, err)
	}
	if _, err := s.Login(ctx, phone, "wrong-password", newAddress()); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Errorf("a wrong password by phone: %v", err)
	}
}

// A reset by SMS code sets the password and ends every session.
func TestResetPasswordByPhoneEndsEverySession(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	a, login := newAccount(t, s)
	phone := newPhone()
	if _, err := s.BindPhone(ctx, a.ID, phone, requestCode(t, s, phone, sms.BindPhone)); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, name := range []string{login, phone} {
		sess, err := s.Login(ctx, name, "secret1", newAddress())
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, sess.Token)
	}
	code := requestCode(t, s, phone, sms.ResetPassword)
	if err := s.ResetPasswordByPhone(ctx, phone, wrong(code, 3), "newpass1", newAddress()); !errors.Is(err, accounts.ErrResetRejected) {
		t.Fatalf("a wrong code: %v, want ErrResetRejected", err)
	}
	var invalid *accounts.InvalidError
	if err := s.ResetPasswordByPhone(ctx, phone, code, "short", newAddress()); !errors.As(err, &invalid) || invalid.Fields["new_password"] == "" {
		t.Fatalf("a short password: %v", err)
	}
	if err := s.ResetPasswordByPhone(ctx, phone, code, "newpass1", newAddress()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	for i, tok := range tokens {
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, accounts.ErrUnauthenticated) {
			t.Errorf("session %d survived the reset: %v", i+1, err)
		}
	}
	if _, err := s.Login(ctx, phone, "secret1", newAddress()); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Errorf("the old password still works: %v", err)
	}
	if _, err := s.Login(ctx, login, "newpass1", newAddress()); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := s.ResetPasswordByPhone(ctx, phone, code, "newpass2", newAddress()); !errors.Is(err, accounts.ErrResetRejected) {
		t.Errorf("the code used again: %v", err)
	}
	for _, p := range []string{"", "123", newPhone()} {
		if err := s.ResetPasswordByPhone(ctx, p, code, "newpass2", newAddress()); !errors.Is(err, accounts.ErrResetRejected) {
			t.Errorf("reset of %q: %v, want ErrResetRejected", p, err)
		}
	}

	// No reset code goes to a phone no applicant holds: nobody's, or staff's.
	before := outboxCount(t, sms.ResetPassword)
	staff, err := s.CreateStaff(ctx, "staff-"+uuid.NewString()[:8]+"@example.com", "secret1", accounts.RoleAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	staffPhone := newPhone()
	if _, err := database.Exec(`UPDATE accounts SET phone = $2 WHERE id = $1`, staff.ID, staffPhone); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{newPhone(), staffPhone} {
		if id, err := s.RequestCode(ctx, p, "reset_password", newAddress()); err != nil || id != "" {
			t.Errorf("a reset code to a phone no applicant holds: %q, %v", id, err)
		}
	}
	if outboxCount(t, sms.ResetPassword) != before {
		t.Error("a reset code went to a phone no applicant holds")
	}
}

func wantLocked(t *testing.T, what string, err error) {
	t.Helper()
	var locked *throttle.LockedError
	if !errors.As(err, &locked) || locked.RetryAfter <= 0 {
		t.Errorf("%s: %v, want *throttle.LockedError", what, err)
	}
}

// completedRegistration is a completed registration (its account has no
// phone bound; the registration's phone is 13800000000) and its ticket.
func completedRegistration(t *testing.T, name string) (registrations.Registration, string) {
	t.Helper()
	ctx := context.Background()
	r, _ := testenv.Registration(t, database, name, status.PreRegistered)
	photo := testenv.FileRow(t, database, []byte("photo "+r.ID), "image/jpeg")
	ticket, err := registrations.NewStore(database).Complete(ctx, registrations.Completion{RegistrationID: r.ID, Seq: 2, At: time.Now(),
		PhotoFileID: photo, ByRole: "onsite_operator", UpdateID: "onsite/" + r.ID, HistoryLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	return r, ticket
}

// The limits: one code per phone a minute, 10 a day, 20 requests (codes and
// look-ups together) per address an hour, 3 look-ups per ID number a day.
// Every request counts, sent or not; the throttle's rows hold neither the
// phone nor the ID number.
func TestSMSLimits(t *testing.T) {
	ctx := context.Background()

	// PhoneMinute (the defaults).
	s := accounts.NewStore(database)
	phone := newPhone()
	if _, err := s.RequestCode(ctx, phone, "sign_up", newAddress()); err != nil {
		t.Fatal(err)
	}
	_, err := s.RequestCode(ctx, phone, "reset_password", newAddress())
	wantLocked(t, "a second code to a phone within the minute (another purpose, another address)", err)
	if _, err := s.RequestCode(ctx, newPhone(), "sign_up", newAddress()); err != nil {
		t.Errorf("another phone: %v", err)
	}

	// PhoneDay.
	s = relaxed()
	s.SMSLimits.PhoneDay.Max = 3
	phone = newPhone()
	for i := 0; i < 3; i++ {
		if _, err := s.RequestCode(ctx, phone, "sign_up", newAddress()); err != nil {
			t.Fatalf("code %d: %v", i+1, err)
		}
	}
	_, err = s.RequestCode(ctx, phone, "sign_up", newAddress())
	wantLocked(t, "the 4th code of the day with PhoneDay 3", err)

	// Address, shared by codes and look-ups.
	s = relaxed()
	s.SMSLimits.Address.Max = 3
	address := newAddress()
	if _, err := s.RequestCode(ctx, newPhone(), "sign_up", address); err != nil {
		t.Fatal(err)
	}
	held := newPhone() // counted though no code goes (it is held)
	a, _ := newAccount(t, s)
	if _, err := database.Exec(`UPDATE accounts SET phone = $2 WHERE id = $1`, a.ID, held); err != nil {
		t.Fatal(err)
	}
	if id, err := s.RequestCode(ctx, held, "sign_up", address); err != nil || id != "" {
		t.Fatal(id, err)
	}
	unknownID := testenv.IDNumber()
	if _, err := s.LookupTicket(ctx, "王五", unknownID, address); err != nil {
		t.Fatal(err)
	}
	_, err = s.RequestCode(ctx, newPhone(), "sign_up", address)
	wantLocked(t, "a code from an address past its limit", err)
	_, err = s.LookupTicket(ctx, "王五", testenv.IDNumber(), address)
	wantLocked(t, "a look-up from an address past its limit", err)
	if _, err := s.RequestCode(ctx, newPhone(), "sign_up", newAddress()); err != nil {
		t.Errorf("another address: %v", err)
	}

	// IDNumberDay (the default 3), whatever the name and address.
	s = accounts.NewStore(database)
	r, _ := completedRegistration(t, "赵六")
	for i, name := range []string{"赵六", "某某", "赵六"} {
		if _, err := s.LookupTicket(ctx, name, r.IDNumber, newAddress()); err != nil {
			t.Fatalf("look-up %d: %v", i+1, err)
		}
	}
	_, err = s.LookupTicket(ctx, "赵六", r.IDNumber, newAddress())
	wantLocked(t, "the 4th look-up of an ID number in a day", err)
	if _, err := s.LookupTicket(ctx, "王五", testenv.IDNumber(), newAddress()); err != nil {
		t.Errorf("another ID number: %v", err)
	}

	// Nothing the throttle keeps holds a phone or an ID number in clear.
	var rows []string
	if err := database.Select(&rows, `SELECT scope || ' ' || key FROM throttle_attempts`); err != nil {
		t.Fatal(err)
	}
	var sms int
	for _, row := range rows {
		if strings.HasPrefix(row, "sms:") {
			sms++
		}
		for _, p := range append(usedPhones(), r.IDNumber, unknownID) {
			if strings.Contains(row, p) {
				t.Errorf("throttle_attempts holds %q: %s", p, row)
			}
		}
		if regexp.MustCompile(`\b(1[3-9][0-9]{9}|[0-9]{17}[0-9X])\b`).MatchString(row) {
			t.Errorf("throttle_attempts holds a phone or ID number: %s", row)
		}
	}
	if sms == 0 {
		t.Error("no SMS attempt in throttle_attempts: the check read nothing")
	}
}

// 查询准考证: the ticket goes by SMS to the account's bound phone, else the
// registration's; nothing goes for anyone else, and the answer is the same.
func TestLookupTicket(t *testing.T) {
	s := relaxed()
	ctx := context.Background()
	r, ticket := completedRegistration(t, "钱七")

	lookups := func() int { return outboxCount(t, sms.TicketLookup) }
	before := lookups()
	for _, c := range []struct{ name, id string }{
		{"王五", testenv.IDNumber()}, // nobody
		{"孙八", r.IDNumber},         // another name
		{"钱七", testenv.IDNumber()}, // another ID number
	} {
		if id, err := s.LookupTicket(ctx, c.name, c.id, newAddress()); err != nil || id != "" {
			t.Errorf("look-up of %s: %q, %v; want nothing sent, nil", c.name, id, err)
		}
	}
	open, _ := testenv.Registration(t, database, "周九", status.PreRegistered)
	if id, err := s.LookupTicket(ctx, "周九", open.IDNumber, newAddress()); err != nil || id != "" {
		t.Errorf("look-up of a registration not completed: %q, %v", id, err)
	}
	if lookups() != before {
		t.Fatalf("a look-up that matched nothing wrote an SMS")
	}

	check := func(phone string) {
		t.Helper()
		id, err := s.LookupTicket(ctx, " 钱七 ", strings.ToLower(r.IDNumber), newAddress())
		if err != nil || id == "" {
			t.Fatalf("look-up: %q, %v", id, err)
		}
		var m struct {
			Phone  string  `db:"phone"`
			Ticket string  `db:"ticket"`
			RegID  *string `db:"registration_id"`
			Seq    *int    `db:"seq"`
			Params string  `db:"params"`
		}
		if err := database.Get(&m, `SELECT phone, params->>'ticket' AS ticket, registration_id::text, seq, params::text FROM sms_outbox
			WHERE id = $1 AND purpose = 'ticket_lookup'`, id); err != nil {
			t.Fatal(err)
		}
		if m.Phone != phone || m.Ticket != ticket || m.RegID == nil || *m.RegID != r.ID || m.Seq != nil {
			t.Errorf("the look-up's SMS: %+v; want ticket %s to %s", m, ticket, phone)
		}
		if strings.Contains(m.Params, r.Name) || strings.Contains(m.Params, r.IDNumber) {
			t.Errorf("the look-up's parameters hold personal data: %s", m.Params)
		}
	}
	check(r.Phone) // no phone bound: the registration's
	bound := newPhone()
	if _, err := database.Exec(`UPDATE accounts SET phone = $2 WHERE id = $1`, r.AccountID, bound); err != nil {
		t.Fatal(err)
	}
	check(bound)

	for _, c := range []struct{ name, id, field string }{{"", r.IDNumber, "name"}, {"Zhao", r.IDNumber, "name"}, {"钱七", "42010619900101123", "id_number"}} {
		_, err := s.LookupTicket(ctx, c.name, c.id, newAddress())
		var invalid *accounts.InvalidError
		if !errors.As(err, &invalid) || invalid.Fields[c.field] == "" {
			t.Errorf("look-up %q %q: %v, want field %s", c.name, c.id, err, c.field)
		}
	}
}
