package registrations_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
)

func complete(t *testing.T, store *registrations.Store, r registrations.Registration, historyLength int) (string, error) {
	photo := testenv.FileRow(t, database, []byte("photo of "+r.ID), "image/jpeg")
	return store.Complete(context.Background(), registrations.Completion{RegistrationID: r.ID, Seq: 2, At: time.Now(),
		ByRole: "onsite_operator", Note: "现场确认通过", PhotoFileID: photo, HistoryLength: historyLength})
}

func issued(t *testing.T, r registrations.Registration) string {
	t.Helper()
	var n *string
	if err := database.Get(&n, `SELECT (SELECT ticket_number FROM tickets WHERE registration_id = $1)`, r.ID); err != nil {
		t.Fatal(err)
	}
	if n == nil {
		return ""
	}
	return *n
}

// A new applicant's completion issues the next number of its area, year
// and sitting, skipping enrolment records' numbers; retried, it issues
// nothing more and answers the same number.
func TestTicketNumbers(t *testing.T) {
	store := registrations.NewStore(database)
	first := newRegistration(t)
	a, err := complete(t, store, first, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seq int
	fmt.Sscanf(a[7:], "%d", &seq)
	legacy := fmt.Sprintf("0106271%05d", seq+1)
	if _, err := database.Exec(`INSERT INTO enrolled_records (ticket_number, name, id_number, major_code, major_name, level, exam_area_code, source)
		VALUES ($1, '旧生', '420106199001010011', '590201', '测试', 'zhuanke', '0106', 'social')`, legacy); err != nil {
		t.Fatal(err)
	}
	second := newRegistration(t)
	b, err := complete(t, store, second, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("0106271%05d", seq+2); b != want {
		t.Errorf("second number %s, want %s (the enrolment record's %s skipped)", b, want, legacy)
	}
	again, err := complete(t, store, second, 10)
	if err != nil || again != b || issued(t, second) != b {
		t.Errorf("retried completion: %q, %v; issued %q; want %s once", again, err, issued(t, second), b)
	}
}

// The completions of one area at once get distinct numbers, each issued
// to its registration and held by it.
func TestTicketNumbersAtOnce(t *testing.T) {
	store := registrations.NewStore(database)
	regs := make([]registrations.Registration, 20)
	for i := range regs {
		regs[i] = newRegistration(t)
	}
	numbers := make([]string, len(regs))
	var wg sync.WaitGroup
	for i, r := range regs {
		wg.Go(func() {
			n, err := complete(t, store, r, 10)
			if err != nil {
				t.Error(err)
			}
			numbers[i] = n
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, n := range numbers {
		got, err := store.Get(context.Background(), regs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if seen[n] || got.TicketNumber == nil || *got.TicketNumber != n || issued(t, regs[i]) != n || got.Status != status.Completed {
			t.Errorf("registration %d: answered %s, holds %v, issued %q, status %s (or a number given twice)", i, n, got.TicketNumber, issued(t, regs[i]), got.Status)
		}
		seen[n] = true
	}
}

// A completion written by a workflow task that Temporal did not commit,
// after the step the workflow did commit instead, issues nothing: the
// number it reserved is taken back.
func TestSupersededCompletionIssuesNothing(t *testing.T) {
	store := registrations.NewStore(database)
	r := newRegistration(t)
	if err := store.Record(context.Background(), registrations.Transition{RegistrationID: r.ID, Seq: 2, Status: status.Withdrawn,
		At: time.Now(), ByRole: "applicant", Note: "撤销", HistoryLength: 15}); err != nil {
		t.Fatal(err)
	}
	if _, err := complete(t, store, r, 10); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Get(context.Background(), r.ID)
	if got.Status != status.Withdrawn || got.TicketNumber != nil || issued(t, r) != "" {
		t.Errorf("after a superseded completion: %s, ticket %v, issued %q; want withdrawn without a number", got.Status, got.TicketNumber, issued(t, r))
	}
}

// The last number of an area, year and sitting is 99999.
func TestTicketNumbersExhausted(t *testing.T) {
	store := registrations.NewStore(database)
	r := newRegistration(t)
	if _, err := database.Exec(`UPDATE registrations SET exam_area_code = '0104' WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`INSERT INTO ticket_sequences (prefix, last) VALUES ('0104271', 99999)
		ON CONFLICT (prefix) DO UPDATE SET last = 99999`); err != nil {
		t.Fatal(err)
	}
	if _, err := complete(t, store, r, 10); !errors.Is(err, registrations.ErrTicketsExhausted) {
		t.Errorf("completion past 99999: %v, want ErrTicketsExhausted", err)
	}
}
