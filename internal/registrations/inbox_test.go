package registrations_test

import (
	"context"
	"testing"
	"time"

	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

// stage_since is the time of the step that moved a registration into its
// status: set at creation, by each recorded change of status, by a
// replacement of a step, by a restore (the kept step's time) and by a close;
// a retried step leaves it.
func TestStageSinceFollowsTheStatus(t *testing.T) {
	ctx := context.Background()
	store := registrations.NewStore(database)
	r, _ := testenv.Registration(t, database, "测试", status.AwaitingReport)
	since := func(want time.Time) {
		t.Helper()
		got, err := store.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.StageSince.Equal(want) {
			t.Fatalf("stage_since %s (status %s), want %s", got.StageSince, got.Status, want)
		}
	}
	since(r.CreatedAt)
	step := func(seq int, st string, at time.Time, historyLength int) {
		t.Helper()
		err := store.Record(ctx, registrations.Transition{RegistrationID: r.ID, Seq: seq, Status: st, At: at,
			ByRole: "system", HistoryLength: historyLength})
		if err != nil {
			t.Fatal(err)
		}
	}
	t2 := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	step(2, status.CountyReview, t2, 10)
	since(t2)
	step(2, status.CountyReview, t2.Add(time.Minute), 10) // a retry
	since(t2)
	t3 := t2.Add(2 * time.Minute)
	step(3, status.ProvincialReview, t3, 20) // from a task never committed
	since(t3)
	t3b := t3.Add(time.Minute)
	step(3, status.AwaitingReport, t3b, 30) // replaced by the committed one
	since(t3b)
	step(4, status.CountyReview, t3b.Add(time.Minute), 40)
	if err := store.Restore(ctx, r.ID, registrations.Snapshot{Status: status.AwaitingReport, Seq: 3}); err != nil {
		t.Fatal(err)
	}
	since(t3b)
	before := time.Now()
	if err := store.Close(ctx, r.ID, 4, status.Withdrawn, "system", "closed"); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Get(ctx, r.ID)
	if got.Status != status.Withdrawn || got.StageSince.Before(before.Add(-time.Second)) {
		t.Fatalf("after Close: %s since %s", got.Status, got.StageSince)
	}
}
