package throttle_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/testenv"
	"zikao/internal/throttle"
)

var database *sqlx.DB

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database = db
		return m.Run()
	}, false))
}

// clock is a settable clock for a Limiter.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// limiter returns a Limiter on a clock of its own, starting now.
func limiter() (*throttle.Limiter, *clock) {
	c := &clock{now: time.Now()}
	l := throttle.New(database)
	l.Now = c.Now
	return l, c
}

func lockRule(max int) throttle.Key {
	return throttle.Key{Rule: throttle.Rule{Scope: "test:lock", Max: max, Window: time.Hour}, Key: uuid.NewString()}
}

func slowRule(max int) throttle.Key {
	return throttle.Key{Rule: throttle.Rule{Scope: "test:slow", Max: max, Window: time.Hour, Delay: time.Second, MaxDelay: 8 * time.Second}, Key: uuid.NewString()}
}

// refused returns how long err says to wait, failing the test when err is
// not a refusal.
func refused(t *testing.T, err error) time.Duration {
	t.Helper()
	var l *throttle.LockedError
	if !errors.As(err, &l) {
		t.Fatalf("got %v, want a refusal", err)
	}
	return l.RetryAfter
}

func fail(t *testing.T, l *throttle.Limiter, keys ...throttle.Key) {
	t.Helper()
	a, err := l.Begin(context.Background(), keys...)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if err := a.Failed(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func succeed(t *testing.T, l *throttle.Limiter, keys ...throttle.Key) {
	t.Helper()
	a, err := l.Begin(context.Background(), keys...)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if err := a.Forgive(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, k throttle.Key) int {
	t.Helper()
	var n int
	if err := database.Get(&n, `SELECT count(*) FROM throttle_attempts WHERE scope = $1 AND key = $2`, k.Rule.Scope, k.Key); err != nil {
		t.Fatal(err)
	}
	return n
}

// Max failures refuse attempts until the oldest leaves the window.
func TestLockAfterMaxFailures(t *testing.T) {
	l, c := limiter()
	k := lockRule(3)
	fail(t, l, k)
	c.advance(10 * time.Minute)
	fail(t, l, k)
	fail(t, l, k)
	_, err := l.Begin(context.Background(), k)
	if wait := refused(t, err); wait != 50*time.Minute {
		t.Fatalf("refused for %s, want 50m (until the first failure is an hour old)", wait)
	}
	c.advance(50 * time.Minute)
	fail(t, l, k) // the first failure left the window: one more try
	_, err = l.Begin(context.Background(), k)
	if wait := refused(t, err); wait != 10*time.Minute {
		t.Fatalf("refused for %s, want 10m", wait)
	}
	if n := count(t, k); n != 3 {
		t.Fatalf("%d rows kept, want the 3 failures within the window", n)
	}
}

func TestSuccessesDoNotCount(t *testing.T) {
	l, _ := limiter()
	k := lockRule(2)
	for i := 0; i < 10; i++ {
		succeed(t, l, k)
	}
	if n := count(t, k); n != 0 {
		t.Fatalf("%d rows left by successes", n)
	}
}

// Reset forgets failures, not attempts still being checked.
func TestReset(t *testing.T) {
	l, _ := limiter()
	k := lockRule(2)
	fail(t, l, k)
	if _, err := l.Begin(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if err := l.Reset(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if n := count(t, k); n != 1 {
		t.Fatalf("%d rows after Reset, want the pending one", n)
	}
	succeed(t, l, k)
}

// No more than Max attempts are checked at once; a refused one counts
// nothing and is told to retry soon.
func TestAttemptsInFlightAreBounded(t *testing.T) {
	l, _ := limiter()
	k := lockRule(2)
	first, err := l.Begin(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Begin(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, err := l.Begin(context.Background(), k)
		if wait := refused(t, err); wait != time.Second {
			t.Fatalf("refused for %s while two are being checked, want 1s", wait)
		}
	}
	if n := count(t, k); n != 2 {
		t.Fatalf("%d rows, want the 2 being checked", n)
	}
	if err := first.Forgive(context.Background()); err != nil { // one of them succeeded
		t.Fatal(err)
	}
	succeed(t, l, k)
}

// An attempt begun and never confirmed (the API died while checking it)
// stops counting once it is older than Pending: a crash leaks no count.
func TestCrashedAttemptsStopCounting(t *testing.T) {
	l, c := limiter()
	k := lockRule(3)
	for i := 0; i < 3; i++ {
		if _, err := l.Begin(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, func() error { _, err := l.Begin(context.Background(), k); return err }())
	c.advance(l.Pending + time.Second)
	for i := 0; i < 2; i++ {
		fail(t, l, k)
	}
	// Only the confirmed failures count now.
	succeed(t, l, k)
	fail(t, l, k)
	refused(t, func() error { _, err := l.Begin(context.Background(), k); return err }())
}

// A slowing rule never refuses for long: past Max, one attempt per Delay,
// doubling, up to MaxDelay.
func TestSlowDown(t *testing.T) {
	l, c := limiter()
	k := slowRule(3)
	for i := 0; i < 3; i++ {
		fail(t, l, k)
	}
	for _, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
		_, err := l.Begin(context.Background(), k)
		if wait := refused(t, err); wait != want*time.Second {
			t.Fatalf("refused for %s, want %ds", wait, want)
		}
		c.advance(want * time.Second)
		fail(t, l, k)
	}
	// Attempts being checked take the slot too: parallel ones cannot pass.
	c.advance(8 * time.Second)
	if _, err := l.Begin(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	refused(t, func() error { _, err := l.Begin(context.Background(), k); return err }())
}

// Successes never refuse a key, however many overlap.
func TestParallelSuccessesNeverLock(t *testing.T) {
	l := throttle.New(database)
	k := lockRule(5)
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a, err := l.Begin(context.Background(), k); err == nil {
				_ = a.Forgive(context.Background())
			}
		}()
	}
	wg.Wait()
	succeed(t, l, k)
}

// Parallel attempts on PostgreSQL's clock: exactly Max get through.
func TestParallelAttemptsCountEach(t *testing.T) {
	l := throttle.New(database)
	for _, k := range []throttle.Key{lockRule(5), slowRule(5)} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for i := 0; i < 30; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Begin(context.Background(), k); err == nil {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if allowed != 5 {
			t.Fatalf("%s: %d of 30 parallel attempts allowed, want 5", k.Rule.Scope, allowed)
		}
	}
}

// A key that refuses an attempt keeps the others from counting it.
func TestAnyRefusingKeyCountsNothing(t *testing.T) {
	l, _ := limiter()
	pair, address := lockRule(1), lockRule(100)
	fail(t, l, pair, address)
	for i := 0; i < 3; i++ {
		refused(t, func() error { _, err := l.Begin(context.Background(), pair, address); return err }())
	}
	if n := count(t, address); n != 1 {
		t.Fatalf("the address has %d rows, want only the one checked attempt", n)
	}
}

// Rows of keys never tried again are swept once older than Retention.
func TestOldRowsAreSwept(t *testing.T) {
	l, c := limiter()
	old := lockRule(5)
	fail(t, l, old)
	if _, err := l.Begin(context.Background(), old); err != nil { // and one that crashed
		t.Fatal(err)
	}
	c.advance(throttle.Retention + time.Minute)
	succeed(t, l, lockRule(5))
	if n := count(t, old); n != 0 {
		t.Fatalf("%d rows older than Retention left", n)
	}
}

// When several keys refuse, the wait is the longest of theirs, whatever
// their order: a shorter one would only earn another refusal.
func TestLongestWaitOfTheRefusingKeys(t *testing.T) {
	l, _ := limiter()
	long := lockRule(1) // an hour's window
	short := throttle.Key{Rule: throttle.Rule{Scope: "test:a-minute", Max: 1, Window: time.Minute}, Key: uuid.NewString()}
	fail(t, l, short, long)
	for _, keys := range [][]throttle.Key{{short, long}, {long, short}} {
		_, err := l.Begin(context.Background(), keys...)
		if wait := refused(t, err); wait < 59*time.Minute {
			t.Errorf("refused for %s, want the hour of %s", wait, long.Rule.Scope)
		}
	}
}
