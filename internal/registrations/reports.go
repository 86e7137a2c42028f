package registrations

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// AddReport stores the particulars of a diploma report uploaded by the
// request updateID and returns its id, for the workflow; the same request
// again gets the same id and report (what it sent the first time stands).
// Until the workflow accepts it (Record), the report is provisional:
// DiscardReport or the reconciler removes it.
func (s *Store) AddReport(ctx context.Context, registrationID, updateID, fileID, verificationCode, reportNumber, certificateNumber string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `
		INSERT INTO diploma_reports (id, registration_id, update_id, file_id, verification_code, report_number, certificate_number)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''))
		ON CONFLICT (registration_id, update_id) DO UPDATE SET update_id = EXCLUDED.update_id -- the first one stands
		RETURNING id`,
		uuid.NewString(), registrationID, updateID, fileID, verificationCode, reportNumber, certificateNumber)
	if err != nil {
		return "", fmt.Errorf("store diploma report of %s: %w", registrationID, err)
	}
	return id, nil
}

// DiscardReport removes a report the workflow refused (never one it accepted).
func (s *Store) DiscardReport(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM diploma_reports WHERE id = $1 AND accepted_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM registrations WHERE report_id = $1)`, id)
	if err != nil {
		return fmt.Errorf("discard diploma report %s: %w", id, err)
	}
	return nil
}

// AddReason stores the reason a reviewer typed for the decision updateID and
// returns its id: the free text stays in PostgreSQL, only the id travels
// through Temporal. The same decision again gets the same id.
func (s *Store) AddReason(ctx context.Context, registrationID, updateID, text string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `
		INSERT INTO decision_reasons (id, registration_id, update_id, text) VALUES ($1, $2, $3, $4)
		ON CONFLICT (registration_id, update_id) DO UPDATE SET update_id = EXCLUDED.update_id -- the first one stands
		RETURNING id`, uuid.NewString(), registrationID, updateID, text)
	if err != nil {
		return "", fmt.Errorf("store decision reason of %s: %w", registrationID, err)
	}
	return id, nil
}

// DiscardReason removes the reason of a rejection the workflow refused
// (never one a history entry shows).
func (s *Store) DiscardReason(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM decision_reasons d WHERE d.id = $1
		AND NOT EXISTS (SELECT 1 FROM registration_history h WHERE h.registration_id = d.registration_id AND h.update_id = d.update_id)`, id)
	if err != nil {
		return fmt.Errorf("discard decision reason %s: %w", id, err)
	}
	return nil
}

// DiscardAbandonedReports removes the reports that no workflow accepted
// within age (their request died before the workflow answered).
func (s *Store) DiscardAbandonedReports(ctx context.Context, age time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM diploma_reports d WHERE d.accepted_at IS NULL AND d.uploaded_at < now() - make_interval(secs => $1)
		  AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.report_id = d.id)`, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("discard abandoned reports: %w", err)
	}
	return res.RowsAffected()
}
