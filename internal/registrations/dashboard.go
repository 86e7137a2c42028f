package registrations

import (
	"context"
	"fmt"
)

// Count is how many registrations of a sitting an exam area has in one
// status.
type Count struct {
	ExamAreaCode string `db:"exam_area_code"`
	Status       string `db:"status"`
	Count        int    `db:"count"`
}

// Counts counts the registrations of a sitting by exam area and status
// (only the pairs that have any), ordered by area and status.
func (s *Store) Counts(ctx context.Context, year, sitting int) ([]Count, error) {
	counts := []Count{}
	err := s.db.SelectContext(ctx, &counts, `
		SELECT exam_area_code, status, count(*) AS count FROM registrations
		WHERE year = $1 AND sitting = $2
		GROUP BY exam_area_code, status ORDER BY exam_area_code, status`, year, sitting)
	if err != nil {
		return nil, fmt.Errorf("count registrations: %w", err)
	}
	return counts, nil
}
