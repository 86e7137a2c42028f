package registrations

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"zikao/internal/status"
)

// Position is a place in the order of a waiting list: after the
// registration ID that entered its status at Since.
type Position struct {
	Since time.Time
	ID    string
}

// PageQuery asks for a page of the registrations waiting in a status.
type PageQuery struct {
	Status string
	Area   string    // one exam area, or "" for every one
	Limit  int       // at most this many
	After  *Position // nil for the first page
}

// WaitingPage lists the registrations in a status, oldest first by the time
// they entered it (stage_since, then id), after a position, and counts all
// of them. It is keyset paging over the index on (status, exam_area_code,
// stage_since, id) (over every exam area, the partial one on (status,
// stage_since, id)): the first and the last page cost the same, and a
// registration that leaves or enters the status between two pages moves no
// other one across the page boundary.
func (s *Store) WaitingPage(ctx context.Context, q PageQuery) ([]Registration, int, error) {
	where, args := []string{"status = $1"}, []any{q.Status}
	if q.Area != "" {
		args = append(args, q.Area)
		where = append(where, "exam_area_code = $"+strconv.Itoa(len(args)))
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT count(*) FROM registrations WHERE `+strings.Join(where, " AND "), args...); err != nil {
		return nil, 0, fmt.Errorf("count waiting registrations: %w", err)
	}
	if q.After != nil {
		args = append(args, q.After.Since, q.After.ID)
		where = append(where, fmt.Sprintf("(stage_since, id) > ($%d::timestamptz, $%d::uuid)", len(args)-1, len(args)))
	}
	args = append(args, q.Limit)
	regs, err := s.selectWithHistory(ctx, strings.Join(where, " AND ")+" ORDER BY stage_since, id LIMIT $"+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, 0, err
	}
	return regs, total, nil
}

// Overdue is the count of the reviews of one stage and exam area that have
// waited since before a cutoff.
type Overdue struct {
	ExamAreaCode       string    `db:"exam_area_code" json:"exam_area_code"`
	Stage              string    `db:"stage" json:"stage"` // county or provincial
	Count              int       `db:"count" json:"count"`
	OldestWaitingSince time.Time `db:"oldest_waiting_since" json:"oldest_waiting_since"`
}

// OverdueReviews counts, per exam area and stage, the registrations in
// county or provincial review since before cutoff, within one exam area or
// every one when area is "". Areas without any are left out.
func (s *Store) OverdueReviews(ctx context.Context, area string, cutoff time.Time) ([]Overdue, error) {
	out := []Overdue{}
	err := s.db.SelectContext(ctx, &out, `
		SELECT exam_area_code, replace(status, '_review', '') AS stage, count(*) AS count, min(stage_since) AS oldest_waiting_since
		FROM registrations
		WHERE status IN ($1, $2) AND stage_since < $3 AND ($4 = '' OR exam_area_code = $4)
		GROUP BY exam_area_code, status ORDER BY exam_area_code, status`,
		status.CountyReview, status.ProvincialReview, cutoff, area)
	if err != nil {
		return nil, fmt.Errorf("count overdue reviews: %w", err)
	}
	return out, nil
}

// ByIDNumber lists the registrations of an ID number in any status, newest
// first, within one exam area or every one when area is "".
func (s *Store) ByIDNumber(ctx context.Context, idNumber, area string) ([]Registration, error) {
	return s.selectWithHistory(ctx, `id_number = $1 AND ($2 = '' OR exam_area_code = $2) ORDER BY created_at DESC, id`,
		idNumber, area)
}
