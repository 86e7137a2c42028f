package registering

import (
	"context"

	"zikao/internal/registrations"
)

// Dashboard counts the registrations of the current sitting by exam area
// and status.
func (s *Service) Dashboard(ctx context.Context) ([]registrations.Count, error) {
	counts, err := s.Registrations.Counts(ctx, s.Year, s.Sitting)
	return counts, unavailable(err)
}
