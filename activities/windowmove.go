package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/registrations"
	"zikao/internal/status"
)

// The activities of a window move (workflows.WindowMove): begin it, page
// through the exam area's open registrations off the new window, move a
// batch of them with a bounded number of change-window updates in flight,
// and finish it. Progress goes to PostgreSQL (registrations.WindowMove).
// Every one may run again after a crash: the update of a registration is
// named by the move (the same update id every time), so Temporal applies
// it once, and the progress rows are written idempotently.

// WindowChanger sends a window move's decisions to the registrations'
// workflows (workflows.WindowChanger over a Temporal client; a fake in
// tests).
type WindowChanger interface {
	// ChangeWindow moves a registration to the window [startsAt, endsAt)
	// as the decision of window move moveID: sent again for the same
	// registration and move, it is applied once. It fails with
	// ErrRegistrationEnded (wrapped) when the registration's workflow has
	// ended and refused it.
	ChangeWindow(ctx context.Context, registrationID string, startsAt, endsAt time.Time, moveID string) error
	// MoveRunning reports whether the workflow of window move moveID is
	// running.
	MoveRunning(ctx context.Context, moveID string) (bool, error)
}

// ErrRegistrationEnded: the registration's workflow refused a window move
// because the registration has ended.
var ErrRegistrationEnded = errors.New("the registration has ended")

// Defaults of WindowMoves.
const (
	DefaultMoveParallel      = 32
	DefaultMoveUpdateTimeout = 30 * time.Second
	DefaultMovePoll          = time.Second
)

// WindowMoves are the activities of window moves.
type WindowMoves struct {
	Registrations *registrations.Store
	Changer       WindowChanger
	// Parallel is how many change-window updates a batch has in flight at
	// once (0: DefaultMoveParallel; DefaultMoveUpdateTimeout bounds each);
	// Poll is how often a move that waits for an earlier one of its area
	// looks again (0: DefaultMovePoll).
	Parallel int
	Poll     time.Duration
}

// WindowMoveSpec names a window move and what it does: the exam area and
// sitting, and the new window.
type WindowMoveSpec struct {
	MoveID           string
	ExamAreaCode     string
	Year, Sitting    int
	StartsAt, EndsAt time.Time
}

// WindowMovePage asks for the next page of registrations to move: up to
// Limit ids after After, in id order.
type WindowMovePage struct {
	WindowMoveSpec
	After string
	Limit int
}

// WindowMoveBatch is a batch of registrations to move.
type WindowMoveBatch struct {
	WindowMoveSpec
	RegistrationIDs []string
}

// WindowMoveBatchResult tells what a batch did. SupersededBy, when set,
// names a later move of the same area: the batch moved nobody, and the
// move stops.
type WindowMoveBatchResult struct {
	Moved, NotMoved, Ended int
	SupersededBy           string
}

// WindowMoveEnd finishes a move (SupersededBy: the later move that stopped it).
type WindowMoveEnd struct {
	MoveID       string
	SupersededBy string
}

// WindowMoveSummary is a finished move's outcome.
type WindowMoveSummary struct {
	Total, Moved, NotMoved int
	SupersededBy           string // a later move of the area stopped this one
}

// WindowMoveBegin writes the move (if the API has not), waits until the
// earlier moves of its exam area and sitting have stopped (a later move
// makes a running one stop at its next batch; a move whose workflow no
// longer runs is finished here), then counts the registrations to move and
// returns that total.
func (a *WindowMoves) WindowMoveBegin(ctx context.Context, m WindowMoveSpec) (int, error) {
	err := a.Registrations.CreateWindowMove(ctx, registrations.WindowMove{ID: m.MoveID, ExamAreaCode: m.ExamAreaCode,
		Year: m.Year, Sitting: m.Sitting, StartsAt: m.StartsAt, EndsAt: m.EndsAt})
	if err != nil {
		return 0, err
	}
	poll := a.Poll
	if poll <= 0 {
		poll = DefaultMovePoll
	}
	for {
		earlier, err := a.Registrations.EarlierRunningMoves(ctx, m.MoveID)
		if err != nil {
			return 0, err
		}
		waiting := 0
		for _, id := range earlier {
			running, err := a.Changer.MoveRunning(ctx, id)
			if err != nil {
				return 0, fmt.Errorf("look at window move %s: %w", id, err)
			}
			if running {
				waiting++
				continue
			}
			// Its workflow ended without finishing it (terminated by an
			// operator) or never started: this move takes over.
			if _, err := a.Registrations.FinishWindowMove(ctx, id, m.MoveID); err != nil {
				return 0, err
			}
		}
		if waiting == 0 {
			break
		}
		activity.RecordHeartbeat(ctx, waiting)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(poll):
		}
	}
	total, err := a.Registrations.CountOffWindow(ctx, m.MoveID)
	return total, moveError(err)
}

// WindowMoveList returns the next page of the open registrations of the
// move's exam area and sitting that are not on its window.
func (a *WindowMoves) WindowMoveList(ctx context.Context, p WindowMovePage) ([]string, error) {
	return a.Registrations.OffWindowAfter(ctx, p.ExamAreaCode, p.Year, p.Sitting, p.StartsAt, p.EndsAt, p.After, p.Limit)
}

// WindowMoveBatch sends the change-window update to each registration of
// the batch, Parallel at a time, heartbeating, and records what each did:
// moved; ended meanwhile (refused as ended, and the read model shows it
// ended: neither moved nor not moved); or not moved, with why (a workflow
// still starting, Temporal away, a refusal). A batch that is cancelled or
// times out records nothing and fails: its retry sends the same updates,
// which Temporal applies once. A batch of a move that a later move of the
// area has superseded sends nothing.
func (a *WindowMoves) WindowMoveBatch(ctx context.Context, b WindowMoveBatch) (WindowMoveBatchResult, error) {
	later, err := a.Registrations.LaterMove(ctx, b.MoveID)
	if err != nil || later != "" {
		return WindowMoveBatchResult{SupersededBy: later}, err
	}
	parallel := a.Parallel
	if parallel <= 0 {
		parallel = DefaultMoveParallel
	}
	parallel = min(parallel, len(b.RegistrationIDs))
	items := make([]registrations.MoveItem, len(b.RegistrationIDs))
	var done atomic.Int64
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				items[i] = a.moveOne(ctx, b, b.RegistrationIDs[i])
				done.Add(1)
			}
		}()
	}
	stopBeat := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopBeat:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				activity.RecordHeartbeat(ctx, done.Load())
			}
		}
	}()
feed:
	for i := range b.RegistrationIDs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(stopBeat)
	if err := ctx.Err(); err != nil {
		return WindowMoveBatchResult{}, err
	}
	var res WindowMoveBatchResult
	for _, it := range items {
		switch it.Outcome {
		case registrations.OutcomeMoved:
			res.Moved++
		case registrations.OutcomeEnded:
			res.Ended++
		default:
			res.NotMoved++
		}
	}
	return res, moveError(a.Registrations.RecordMoveItems(ctx, b.MoveID, items))
}

// moveOne moves one registration and tells what happened.
func (a *WindowMoves) moveOne(ctx context.Context, b WindowMoveBatch, id string) registrations.MoveItem {
	one, cancel := context.WithTimeout(ctx, DefaultMoveUpdateTimeout)
	err := a.Changer.ChangeWindow(one, id, b.StartsAt, b.EndsAt, b.MoveID)
	cancel()
	switch {
	case err == nil:
		return registrations.MoveItem{RegistrationID: id, Outcome: registrations.OutcomeMoved}
	case errors.Is(err, ErrRegistrationEnded) && a.ended(ctx, id):
		return registrations.MoveItem{RegistrationID: id, Outcome: registrations.OutcomeEnded}
	}
	return registrations.MoveItem{RegistrationID: id, Outcome: registrations.OutcomeNotMoved, Reason: shorten(err.Error(), 300)}
}

// ended reports whether the read model shows a registration ended (and
// not merely waiting for its workflow's step to be recorded).
func (a *WindowMoves) ended(ctx context.Context, id string) bool {
	r, err := a.Registrations.Get(ctx, id)
	return err == nil && status.Terminal(r.Status)
}

// WindowMoveFinish ends the move and returns its outcome.
func (a *WindowMoves) WindowMoveFinish(ctx context.Context, e WindowMoveEnd) (WindowMoveSummary, error) {
	m, err := a.Registrations.FinishWindowMove(ctx, e.MoveID, e.SupersededBy)
	if err != nil {
		return WindowMoveSummary{}, moveError(err)
	}
	s := WindowMoveSummary{Total: m.Total, Moved: m.Moved, NotMoved: m.NotMovedN}
	if m.SupersededBy != nil {
		s.SupersededBy = *m.SupersededBy
	}
	return s, nil
}

// moveError marks a move gone from PostgreSQL as permanent: retrying
// cannot mend it.
func moveError(err error) error {
	if errors.Is(err, registrations.ErrMoveNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "permanent", err)
	}
	return err
}

// shorten cuts s to at most n bytes, at a character boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
