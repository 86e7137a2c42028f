package registering_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"zikao/internal/accounts"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
	"zikao/workflows"
)

// cutFor is how long the worker stays cut from PostgreSQL in
// TestLongOutageAddsAFewEvents: 40 s, or ZIKAO_FAULT_CUT (30m for the
// figures of the README).
func cutFor(t *testing.T) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ZIKAO_FAULT_CUT")); err == nil {
		return d
	}
	return 40 * time.Second
}

// A read-model write that waits out a long outage costs its registration's
// history a fixed handful of events, however long the outage: the write
// waits as a regular activity, not as a local activity whose every retry
// adds a timer and a workflow task. Two registrations take the same county
// review, one with the worker cut from PostgreSQL; their histories differ
// by what the outage added.
func TestLongOutageAddsAFewEvents(t *testing.T) {
	const area = "0106"
	setWindow(t, area, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	county := staffAccount(t, "county0106@example.com")
	quick := *svc
	quick.UpdateTimeout = 5 * time.Second

	calm := awaitingReview(t, area)
	review(t, &quick, county, calm.ID, time.Minute)
	base := settledHistory(t, calm.ID)

	cut := awaitingReview(t, area)
	link.Cut()
	t.Cleanup(link.Restore)
	approve := true
	_, err := quick.Review(context.Background(), county, cut.ID, "review-1", registering.StageCounty, registering.Decision{Approved: &approve})
	if !errors.Is(err, registering.ErrUnavailable) {
		t.Fatalf("review while the worker is cut off: %v, want ErrUnavailable", err)
	}
	time.Sleep(cutFor(t))
	link.Restore()
	review(t, &quick, county, cut.ID, 3*time.Minute)
	after := settledHistory(t, cut.ID)
	testenv.RecordHistory(t, tc, "new-zhuanshengben-outage-waited", cut.ID)

	added := len(after) - len(base)
	t.Logf("a %s outage under a decision added %d events to its registration's history (%d against %d); by type: %s",
		cutFor(t), added, len(after), len(base), diff(base, after))
	if added > 12 {
		t.Errorf("the outage added %d events, want a handful (at most 12)", added)
	}
}

// awaitingReview is a 专升本 registration with its report uploaded.
func awaitingReview(t *testing.T, area string) registrations.Registration {
	t.Helper()
	who := applicant(t)
	r := submit(t, who, "zhuanshengben", area)
	waitForStatus(t, r.ID, status.AwaitingReport, 30*time.Second)
	if _, err := svc.UploadReport(context.Background(), who, r.ID, "upload", registering.Report{File: pdf(), VerificationCode: "ABCD1234EFGH"}); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, r.ID, status.CountyReview, 30*time.Second)
	return r
}

// review approves the county review, sending it again (same key) while it
// is unavailable, for up to within.
func review(t *testing.T, s *registering.Service, county accounts.Account, id string, within time.Duration) {
	t.Helper()
	approve := true
	deadline := time.Now().Add(within)
	for {
		got, err := s.Review(context.Background(), county, id, "review-1", registering.StageCounty, registering.Decision{Approved: &approve})
		if err == nil {
			if got.Status != status.ProvincialReview {
				t.Fatalf("after the review: %s, want provincial_review", got.Status)
			}
			return
		}
		if !errors.Is(err, registering.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("review: %v", err)
		}
	}
}

// settledHistory returns the event types of a workflow's history once it
// stops growing (two reads half a second apart agree) with no workflow task
// pending.
func settledHistory(t *testing.T, id string) []string {
	t.Helper()
	var last []string
	for range 60 {
		var types []string
		it := tc.GetWorkflowHistory(context.Background(), workflows.WorkflowID(id), "", false, 0)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_"))
		}
		n := len(types)
		if n > 0 && n == len(last) && !strings.HasPrefix(types[n-1], "WORKFLOW_TASK_S") {
			return types
		}
		last = types
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the history of %s did not settle", id)
	return nil
}

// diff names the event types whose count differs, with the difference.
func diff(base, after []string) string {
	n := map[string]int{}
	for _, e := range after {
		n[e]++
	}
	for _, e := range base {
		n[e]--
	}
	var out []string
	for e, d := range n {
		if d != 0 {
			out = append(out, fmt.Sprintf("%s %+d", e, d))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
