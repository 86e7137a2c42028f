package registering

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"zikao/internal/catalog"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// Moved tells what moving a window did.
type Moved struct {
	Moved    int              // open registrations moved to the new window
	NotMoved map[string]error // registration id → why it keeps its old window
}

// MoveWindow sets an exam area's confirmation window for a sitting and
// moves every open registration of that area and sitting to it (the
// change-window update: its deadline timer starts again). A submission
// being written while the window changes holds the window's row, so it
// either takes the new window or is committed before the move looks for
// the registrations to move; one whose workflow is still starting is tried
// again. Moving again moves what was left (the same registrations are
// skipped once on the window). An unknown area is a *Refusal (CodeAreaNotFound,
// DetailExamArea); an end that has passed or does not follow the start is
// *Invalid. When some registrations could not be moved, the window is set,
// Moved.NotMoved lists them and the error is ErrUnavailable.
func (s *Service) MoveWindow(ctx context.Context, area string, year, sitting int, w catalog.Window) (Moved, error) {
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
	return s.moveOpen(ctx, area, year, sitting, workflows.Window{StartsAt: w.StartsAt, EndsAt: w.EndsAt})
}

// moveOpen moves the open registrations of an area and sitting that are
// not on window w, looking three times (a workflow still starting is found
// on a later look).
func (s *Service) moveOpen(ctx context.Context, area string, year, sitting int, w workflows.Window) (Moved, error) {
	request := uuid.NewString()
	var m Moved
	for pass := 0; pass < 3; pass++ {
		ids, err := s.Registrations.OffWindow(ctx, area, year, sitting, w.StartsAt, w.EndsAt)
		if err != nil {
			return m, unavailable(err)
		}
		m.NotMoved = map[string]error{}
		if len(ids) == 0 {
			break
		}
		if pass > 0 {
			time.Sleep(2 * time.Second) // let workflows being started start
		}
		for _, id := range ids {
			one, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := workflows.ChangeWindow(one, s.Temporal, id, w, request)
			cancel()
			if err != nil {
				err = s.updateFailed(registrations.Registration{ID: id}, workflows.UpdateChangeWindow, err)
			}
			var refusal *Refusal
			switch {
			case errors.As(err, &refusal) && refusal.Code == workflows.ErrClosed && s.closed(ctx, id):
				// ended meanwhile: nothing to move
			case err != nil:
				m.NotMoved[id] = err
			default:
				m.Moved++
			}
		}
	}
	if len(m.NotMoved) > 0 {
		return m, fmt.Errorf("%w: %d registration(s) keep their old window", ErrUnavailable, len(m.NotMoved))
	}
	return m, nil
}

// closed reports whether the read model shows a registration ended (and
// not merely waiting for its workflow to start).
func (s *Service) closed(ctx context.Context, id string) bool {
	r, err := s.Registrations.Get(ctx, id)
	return err == nil && status.Terminal(r.Status)
}
