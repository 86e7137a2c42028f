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

var (
	database *sqlx.DB
	limiter  *throttle.Limiter
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database, limiter = db, throttle.New(db)
		return m.Run()
	}, false))
}

func key(max int) throttle.Key {
	return throttle.Key{Rule: throttle.Rule{Scope: "test", Max: max, Window: time.Minute, Lockout: time.Hour}, Key: uuid.NewString()}
}

func locked(err error) bool {
	var l *throttle.LockedError
	return errors.As(err, &l)
}

func TestLockoutAfterMaxFailures(t *testing.T) {
	ctx := context.Background()
	k := key(3)
	for i := 0; i < 3; i++ {
		if err := limiter.Attempt(ctx, k); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		if err := limiter.Failed(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	err := limiter.Attempt(ctx, k)
	var l *throttle.LockedError
	if !errors.As(err, &l) || l.RetryAfter < 59*time.Minute {
		t.Fatalf("4th attempt: %v, want locked for an hour", err)
	}
	// Locked: success does not unlock it, and it stays locked.
	if err := limiter.Reset(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := limiter.Attempt(ctx, k); !locked(err) {
		t.Fatalf("after Reset while locked: %v, want still locked", err)
	}
	// The lockout ends: a new count starts.
	if _, err := database.Exec(`UPDATE auth_failures SET locked_until = now() - interval '1 second' WHERE key = $1`, k.Key); err != nil {
		t.Fatal(err)
	}
	if err := limiter.Attempt(ctx, k); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

func TestSuccessesDoNotCount(t *testing.T) {
	ctx := context.Background()
	k := key(2)
	for i := 0; i < 10; i++ {
		if err := limiter.Attempt(ctx, k); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		if err := limiter.Forgive(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}

// No more than Max attempts are checked at once; a refused one is not counted.
func TestAttemptsInFlightAreBounded(t *testing.T) {
	ctx := context.Background()
	k := key(2)
	_ = limiter.Attempt(ctx, k)
	_ = limiter.Attempt(ctx, k)
	for i := 0; i < 3; i++ {
		err := limiter.Attempt(ctx, k)
		var l *throttle.LockedError
		if !errors.As(err, &l) || l.RetryAfter > time.Minute {
			t.Fatalf("third attempt in flight: %v, want refused until the window passes", err)
		}
	}
	_ = limiter.Forgive(ctx, k) // one of them succeeded
	if err := limiter.Attempt(ctx, k); err != nil {
		t.Fatalf("after a success: %v", err)
	}
}

// Successes never lock a key out, however many overlap.
func TestParallelSuccessesNeverLock(t *testing.T) {
	ctx := context.Background()
	k := key(5)
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if limiter.Attempt(ctx, k) == nil {
				_ = limiter.Forgive(ctx, k)
			}
		}()
	}
	wg.Wait()
	if err := limiter.Attempt(ctx, k); err != nil {
		t.Fatalf("after parallel successes: %v", err)
	}
}

func TestWindowPasses(t *testing.T) {
	ctx := context.Background()
	k := key(2)
	_ = limiter.Attempt(ctx, k)
	_ = limiter.Attempt(ctx, k)
	if _, err := database.Exec(`UPDATE auth_failures SET window_start = now() - interval '2 minutes' WHERE key = $1`, k.Key); err != nil {
		t.Fatal(err)
	}
	if err := limiter.Attempt(ctx, k); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestParallelAttemptsCountEach(t *testing.T) {
	ctx := context.Background()
	k := key(5)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if limiter.Attempt(ctx, k) == nil {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 5 {
		t.Fatalf("%d of 30 parallel attempts allowed, want 5", allowed)
	}
}

func TestAnyLockedKeyRefuses(t *testing.T) {
	ctx := context.Background()
	perName, perAddress := key(1), key(100)
	_ = limiter.Attempt(ctx, perName, perAddress)
	_ = limiter.Failed(ctx, perName, perAddress)
	for i := 0; i < 3; i++ {
		if err := limiter.Attempt(ctx, perName, perAddress); !locked(err) {
			t.Fatalf("attempt with the name locked: %v", err)
		}
	}
	var count int
	if err := database.Get(&count, `SELECT failures FROM auth_failures WHERE key = $1`, perAddress.Key); err != nil || count != 1 {
		t.Fatalf("the address counted %d (%v), want only the one checked attempt", count, err)
	}
}
