package registrations

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/catalog"
)

// to is the new area of an area change, "" for none.
func (a *AreaChange) to() string {
	if a == nil {
		return ""
	}
	return a.To
}

// bounds are a new window's start and end, NULL for none.
func bounds(w *catalog.Window) (starts, ends *time.Time) {
	if w == nil {
		return nil, nil
	}
	return &w.StartsAt, &w.EndsAt
}

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// dates writes a window in Beijing time, as the pages and messages do.
func dates(w *catalog.Window) string {
	const layout = "2006年1月2日 15:04"
	return w.StartsAt.In(shanghai).Format(layout) + " 至 " + w.EndsAt.In(shanghai).Format(layout)
}

// moveNote writes the history note of a step that moves the registration
// (Transition.Window, Transition.Area) into e: the areas by name, the
// window's dates; an area change's entry carries its reason.
func moveNote(ctx context.Context, tx *sqlx.Tx, t Transition, e *historyEntry) error {
	switch {
	case t.Area != nil && t.Window != nil:
		name := func(code string) (string, error) {
			var a catalog.ExamArea
			err := tx.GetContext(ctx, &a, `SELECT code, name, city, office_address FROM exam_areas WHERE code = $1`, code)
			if err != nil {
				return "", fmt.Errorf("read exam area %s of the change of %s: %w", code, t.RegistrationID, err)
			}
			return a.FullName() + "（" + code + "）", nil
		}
		from, err := name(t.Area.From)
		if err != nil {
			return err
		}
		to, err := name(t.Area.To)
		if err != nil {
			return err
		}
		e.Note = fmt.Sprintf("考区由%s变更为%s，现场确认时间%s。变更原因：", from, to, dates(t.Window))
		e.ReasonID = t.Area.ReasonID
	case t.Window != nil:
		e.Note = "考区现场确认时间调整为" + dates(t.Window)
	}
	return nil
}
