package registrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"zikao/internal/db"
	"zikao/internal/status"
)

// Window moves: an administrator's move of an exam area's confirmation
// window, run by a workflow that sends the change-window decision to the
// area's open registrations in batches. Its progress is kept here
// (window_moves, window_move_items), written by the workflow's activities.

// States of a window move.
const (
	MoveRunning = "running"
	MoveDone    = "done"
)

// What a window move did to one registration.
const (
	OutcomeMoved    = "moved"
	OutcomeNotMoved = "not_moved" // keeps its old window (Reason says why)
	OutcomeEnded    = "ended"     // ended meanwhile: nothing to move
)

// ErrMoveNotFound: no window move with that id.
var ErrMoveNotFound = errors.New("window move not found")

// WindowMove is one move of an exam area's confirmation window.
type WindowMove struct {
	ID           string     `db:"id"`
	Seq          int64      `db:"seq"`
	ExamAreaCode string     `db:"exam_area_code"`
	Year         int        `db:"year"`
	Sitting      int        `db:"sitting"`
	StartsAt     time.Time  `db:"starts_at"`
	EndsAt       time.Time  `db:"ends_at"`
	State        string     `db:"state"`
	Total        int        `db:"total"`
	SupersededBy *string    `db:"superseded_by"`
	StartedAt    time.Time  `db:"started_at"`
	FinishedAt   *time.Time `db:"finished_at"`
	Moved        int        `db:"moved"`           // registrations moved so far
	NotMovedN    int        `db:"not_moved_count"` // registrations not moved so far
	// NotMoved are the registrations that keep their old window so far (by
	// id), with why; filled by WindowMove only.
	NotMoved []MoveItem `db:"-"`
}

// MoveItem is what a window move did to one registration.
type MoveItem struct {
	RegistrationID string `db:"registration_id"`
	Outcome        string `db:"outcome"`
	Reason         string `db:"reason"`
}

// moveColumns are a window_moves row m's columns with its moved count.
const moveColumns = `m.id, m.seq, m.exam_area_code, m.year, m.sitting, m.starts_at, m.ends_at, m.state, m.total,
	m.superseded_by, m.started_at, m.finished_at,
	(SELECT count(*) FROM window_move_items i WHERE i.move_id = m.id AND i.outcome = 'moved') AS moved,
	(SELECT count(*) FROM window_move_items i WHERE i.move_id = m.id AND i.outcome = 'not_moved') AS not_moved_count`

// CreateWindowMove writes a new window move, running; the same move again
// changes nothing.
func (s *Store) CreateWindowMove(ctx context.Context, m WindowMove) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO window_moves (id, exam_area_code, year, sitting, starts_at, ends_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		m.ID, m.ExamAreaCode, m.Year, m.Sitting, m.StartsAt, m.EndsAt)
	if err != nil {
		return fmt.Errorf("create window move: %w", err)
	}
	return nil
}

// moveRow reads a window move's row: its progress, without the list of
// the registrations it has not moved.
func (s *Store) moveRow(ctx context.Context, id string) (WindowMove, error) {
	var m WindowMove
	err := s.db.GetContext(ctx, &m, `SELECT `+moveColumns+` FROM window_moves m WHERE m.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrMoveNotFound
	}
	if err != nil {
		return m, fmt.Errorf("read window move: %w", err)
	}
	return m, nil
}

// WindowMove returns a window move with its progress and the registrations
// it has not moved (so far), by registration id; ErrMoveNotFound when
// there is none.
func (s *Store) WindowMove(ctx context.Context, id string) (WindowMove, error) {
	m, err := s.moveRow(ctx, id)
	if err != nil {
		return m, err
	}
	err = s.db.SelectContext(ctx, &m.NotMoved, `
		SELECT registration_id, outcome, reason FROM window_move_items
		WHERE move_id = $1 AND outcome = 'not_moved' ORDER BY registration_id`, id)
	if err != nil {
		return m, fmt.Errorf("read window move: %w", err)
	}
	return m, nil
}

// LatestWindowMoves returns the latest window move of each exam area of a
// sitting that has one, by area code (without NotMoved).
func (s *Store) LatestWindowMoves(ctx context.Context, year, sitting int) (map[string]WindowMove, error) {
	var moves []WindowMove
	err := s.db.SelectContext(ctx, &moves, `
		SELECT `+moveColumns+` FROM (
			SELECT DISTINCT ON (exam_area_code) * FROM window_moves
			WHERE year = $1 AND sitting = $2 ORDER BY exam_area_code, seq DESC) m`, year, sitting)
	if err != nil {
		return nil, fmt.Errorf("read window moves: %w", err)
	}
	out := make(map[string]WindowMove, len(moves))
	for _, m := range moves {
		out[m.ExamAreaCode] = m
	}
	return out, nil
}

// EarlierRunningMoves lists the moves of the same exam area and sitting as
// move id that began before it and have not finished.
func (s *Store) EarlierRunningMoves(ctx context.Context, id string) ([]string, error) {
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `
		SELECT e.id FROM window_moves m JOIN window_moves e
		  ON e.exam_area_code = m.exam_area_code AND e.year = m.year AND e.sitting = m.sitting AND e.seq < m.seq
		WHERE m.id = $1 AND e.state = 'running' ORDER BY e.seq`, id)
	if err != nil {
		return nil, fmt.Errorf("list earlier window moves: %w", err)
	}
	return ids, nil
}

// LaterMove returns the id of a move of the same exam area and sitting
// that began after move id ("" when none has): it supersedes move id.
func (s *Store) LaterMove(ctx context.Context, id string) (string, error) {
	var later string
	err := s.db.GetContext(ctx, &later, `
		SELECT l.id FROM window_moves m JOIN window_moves l
		  ON l.exam_area_code = m.exam_area_code AND l.year = m.year AND l.sitting = m.sitting AND l.seq > m.seq
		WHERE m.id = $1 ORDER BY l.seq DESC LIMIT 1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look for a later window move: %w", err)
	}
	return later, nil
}

// CountOffWindow counts the open registrations of an exam area and
// sitting whose window is not [startsAt, endsAt) and sets it as the total
// of move id.
func (s *Store) CountOffWindow(ctx context.Context, id string) (int, error) {
	var total int
	err := s.db.GetContext(ctx, &total, `
		UPDATE window_moves m SET total = (
			SELECT count(*) FROM registrations r
			WHERE r.exam_area_code = m.exam_area_code AND r.year = m.year AND r.sitting = m.sitting
			  AND r.`+status.OpenSQL+`
			  AND (r.window_starts_at, r.window_ends_at) IS DISTINCT FROM (m.starts_at, m.ends_at))
		WHERE m.id = $1 RETURNING total`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrMoveNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("count registrations to move: %w", err)
	}
	return total, nil
}

// OffWindowAfter lists, by id, up to limit open registrations of an exam
// area and sitting whose window is not [startsAt, endsAt), with ids after
// after ("" from the first): a page of a keyset walk.
func (s *Store) OffWindowAfter(ctx context.Context, area string, year, sitting int, startsAt, endsAt time.Time, after string, limit int) ([]string, error) {
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	var ids []string
	err := s.db.SelectContext(ctx, &ids, `
		SELECT id FROM registrations WHERE exam_area_code = $1 AND year = $2 AND sitting = $3
		  AND `+status.OpenSQL+`
		  AND (window_starts_at, window_ends_at) IS DISTINCT FROM ($4::timestamptz, $5::timestamptz)
		  AND id > $6::uuid
		ORDER BY id LIMIT $7`, area, year, sitting, startsAt, endsAt, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list open registrations of %s: %w", area, err)
	}
	return ids, nil
}

// RecordMoveItems writes what move id did to some registrations. Written
// again (a retried batch, a later look), an item takes the new outcome,
// except that a moved registration stays moved.
func (s *Store) RecordMoveItems(ctx context.Context, id string, items []MoveItem) error {
	if len(items) == 0 {
		return nil
	}
	ids, outcomes, reasons := make([]string, len(items)), make([]string, len(items)), make([]string, len(items))
	for i, it := range items {
		ids[i], outcomes[i], reasons[i] = it.RegistrationID, it.Outcome, it.Reason
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO window_move_items (move_id, registration_id, outcome, reason)
		SELECT $1, unnest($2::uuid[]), unnest($3::text[]), unnest($4::text[])
		ON CONFLICT (move_id, registration_id) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason
		WHERE window_move_items.outcome <> 'moved'`, id, pq.Array(ids), pq.Array(outcomes), pq.Array(reasons))
	if db.IsForeignKeyViolation(err) {
		return ErrMoveNotFound
	}
	if err != nil {
		return fmt.Errorf("record window move progress: %w", err)
	}
	return nil
}

// FinishWindowMove ends move id (idempotently) and returns it. A
// registration it could not move that has ended since, or that is on the
// new window by now (its update was applied after all), is no longer
// counted as not moved. supersededBy names the later move of the area that
// stopped this one ("" when none did): what this one did not move is the
// later one's to move.
func (s *Store) FinishWindowMove(ctx context.Context, id, supersededBy string) (WindowMove, error) {
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if supersededBy != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM window_move_items WHERE move_id = $1 AND outcome = 'not_moved'`, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE window_move_items i
			SET outcome = CASE WHEN (r.window_starts_at, r.window_ends_at) = (m.starts_at, m.ends_at) THEN 'moved' ELSE 'ended' END,
			    reason = ''
			FROM registrations r, window_moves m
			WHERE i.move_id = $1 AND i.outcome = 'not_moved' AND m.id = i.move_id AND r.id = i.registration_id
			  AND (NOT (r.`+status.OpenSQL+`) OR (r.window_starts_at, r.window_ends_at) = (m.starts_at, m.ends_at))`, id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE window_moves SET state = 'done', finished_at = COALESCE(finished_at, now()),
			  superseded_by = COALESCE(superseded_by, NULLIF($2, '')::uuid),
			  total = GREATEST(total, (SELECT count(*) FROM window_move_items WHERE move_id = $1))
			WHERE id = $1`, id, supersededBy)
		return err
	})
	if err != nil {
		return WindowMove{}, fmt.Errorf("finish window move: %w", err)
	}
	return s.moveRow(ctx, id) // its counts: the callers need not the not-moved list
}
