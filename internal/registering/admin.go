package registering

import (
	"context"
	"time"

	"zikao/internal/registrations"
)

// AreaWindow is an exam area's confirmation window for the current
// sitting; StartsAt and EndsAt are nil when none is set.
type AreaWindow struct {
	ExamAreaCode string
	StartsAt     *time.Time
	EndsAt       *time.Time
}

// Windows lists every exam area with its confirmation window for the
// current sitting, by area code.
func (s *Service) Windows(ctx context.Context) ([]AreaWindow, error) {
	areas, err := s.Catalog.ExamAreas(ctx, s.Year, s.Sitting)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]AreaWindow, 0, len(areas))
	for _, a := range areas {
		out = append(out, AreaWindow{ExamAreaCode: a.Code, StartsAt: a.StartsAt, EndsAt: a.EndsAt})
	}
	return out, nil
}

// Dashboard counts the registrations of the current sitting by exam area
// and status.
func (s *Service) Dashboard(ctx context.Context) ([]registrations.Count, error) {
	counts, err := s.Registrations.Counts(ctx, s.Year, s.Sitting)
	return counts, unavailable(err)
}
