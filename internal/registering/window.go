package registering

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"zikao/internal/catalog"
	"zikao/internal/registrations"
	"zikao/workflows"
)

// MoveOptions tune window moves (MoveWindow). Wait is how long MoveWindow
// waits for the move to end before it answers with the move still running
// (api.md 1.2: at most 10 s). Batch and ContinueAfter are the workflow's
// batch size and continue-as-new threshold (0: the workflow's defaults).
type MoveOptions struct {
	Wait                 time.Duration
	Batch, ContinueAfter int
}

// Moved tells what a window move did (so far).
type Moved struct {
	Operation    string // the move's id: GET /admin/window-moves/{id}, Service.WindowMove
	ExamAreaCode string
	Window       catalog.Window
	// Done: the move has ended. Otherwise it goes on in its workflow after
	// MoveWindow returned: follow it with WindowMove.
	Done         bool
	Total        int              // open registrations of the area off the window when the move began
	Moved        int              // open registrations moved to the new window
	NotMoved     map[string]error // registration id → why it keeps its old window (WindowMove, MoveWindow)
	NotMovedN    int              // how many keep it (also LatestWindowMoves)
	StartedAt    time.Time
	FinishedAt   *time.Time
	SupersededBy string // a later move of the area that stopped this one
}

// CodeMoveNotFound: no window move with that id.
const CodeMoveNotFound = "not_found"

// MoveWindow sets an exam area's confirmation window for a sitting and
// moves every open registration of that area and sitting to it (the
// change-window update: its deadline timer starts again) by a window move,
// an operation of its own (workflows.WindowMove) that goes on if this call
// returns first. It waits up to s.Moves.Wait (counted from the call) for the
// move to end: then Moved.Done and the outcome; otherwise Moved.Operation
// names the running move, and the error is nil.
//
// A submission being written while the window changes holds the window's
// row, so it either takes the new window or is committed before the move
// looks for the registrations to move; one whose workflow is still
// starting is looked for again. Moving again moves what was left (the same
// registrations are skipped once on the window); a later move of the same
// area stops a running one, which then moves nobody more. An unknown area
// is a *Refusal (CodeAreaNotFound, DetailExamArea); an end that has passed
// or does not follow the start is *Invalid. When the move ended with
// registrations not moved, the window is set, Moved.NotMoved lists them
// and the error is ErrUnavailable.
func (s *Service) MoveWindow(ctx context.Context, area string, year, sitting int, w catalog.Window) (Moved, error) {
	deadline := time.Now().Add(s.Moves.Wait)
	f := Fields{}
	switch {
	case !w.EndsAt.After(w.StartsAt):
		f.Add("ends_at", "结束时间须晚于开始时间", "the end must be after the start")
	case !w.EndsAt.After(time.Now()):
		f.Add("ends_at", "结束时间已过：该考区进行中的注册会立即过期", "the end has passed: the area's open registrations would expire at once")
	}
	if _, err := s.Catalog.ExamArea(ctx, area, year, sitting); errors.Is(err, catalog.ErrNotFound) {
		return Moved{}, &Refusal{Code: CodeAreaNotFound, Detail: DetailExamArea}
	} else if err != nil {
		return Moved{}, unavailable(err)
	}
	if err := f.Err(); err != nil {
		return Moved{}, err
	}
	if err := s.Catalog.SetWindow(ctx, area, year, sitting, w); err != nil {
		return Moved{}, unavailable(err)
	}
	in := workflows.WindowMoveInput{MoveID: uuid.NewString(), ExamAreaCode: area, Year: year, Sitting: sitting,
		Window: workflows.Window{StartsAt: w.StartsAt, EndsAt: w.EndsAt}, BatchSize: s.Moves.Batch, ContinueAfter: s.Moves.ContinueAfter}
	// The row first, so that the move can be followed from the start; a
	// row whose workflow never started is finished by the next move of the
	// area.
	err := s.Registrations.CreateWindowMove(ctx, registrations.WindowMove{ID: in.MoveID, ExamAreaCode: area,
		Year: year, Sitting: sitting, StartsAt: w.StartsAt, EndsAt: w.EndsAt})
	if err != nil {
		return Moved{}, unavailable(err)
	}
	run, err := s.Temporal.ExecuteWorkflow(ctx, workflows.WindowMoveStartOptions(in, s.TaskQueue), workflows.WindowMoveWorkflowName, in)
	if err != nil {
		return Moved{}, unavailable(fmt.Errorf("start window move: %w", err))
	}
	wait, cancel := context.WithDeadline(ctx, deadline)
	err = run.Get(wait, nil)
	cancel()
	var failed *temporal.WorkflowExecutionError
	if errors.As(err, &failed) {
		return Moved{Operation: in.MoveID}, fmt.Errorf("window move %s: %w", in.MoveID, err)
	}
	// Done, or the wait ended (its deadline; Temporal not answering): the
	// move's progress either way.
	return s.WindowMove(ctx, in.MoveID)
}

// WindowMove returns a window move's progress, or its outcome once Done.
// An unknown id is a *Refusal (CodeMoveNotFound). A move that ended with
// registrations not moved answers with them and ErrUnavailable.
func (s *Service) WindowMove(ctx context.Context, id string) (Moved, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Moved{}, refuse(CodeMoveNotFound)
	}
	m, err := s.Registrations.WindowMove(ctx, id)
	if errors.Is(err, registrations.ErrMoveNotFound) {
		return Moved{}, refuse(CodeMoveNotFound)
	}
	if err != nil {
		return Moved{}, unavailable(err)
	}
	out := movedOf(m)
	if out.Done && len(out.NotMoved) > 0 {
		return out, fmt.Errorf("%w: %d registration(s) keep their old window", ErrUnavailable, len(out.NotMoved))
	}
	return out, nil
}

// LatestWindowMoves returns the latest window move of each exam area of a
// sitting that has one, by area code (NotMoved holds none: read it with
// WindowMove).
func (s *Service) LatestWindowMoves(ctx context.Context, year, sitting int) (map[string]Moved, error) {
	moves, err := s.Registrations.LatestWindowMoves(ctx, year, sitting)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make(map[string]Moved, len(moves))
	for area, m := range moves {
		out[area] = movedOf(m)
	}
	return out, nil
}

func movedOf(m registrations.WindowMove) Moved {
	out := Moved{Operation: m.ID, ExamAreaCode: m.ExamAreaCode, Window: catalog.Window{StartsAt: m.StartsAt, EndsAt: m.EndsAt},
		Done: m.State == registrations.MoveDone, Total: m.Total, Moved: m.Moved, NotMoved: map[string]error{}, NotMovedN: m.NotMovedN,
		StartedAt: m.StartedAt, FinishedAt: m.FinishedAt}
	if m.SupersededBy != nil {
		out.SupersededBy = *m.SupersededBy
	}
	for _, it := range m.NotMoved {
		out.NotMoved[it.RegistrationID] = errors.New(it.Reason)
	}
	return out
}
