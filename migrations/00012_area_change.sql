-- +goose Up
-- Exam-area change (考区变更) by the office, and window moves told to the
-- applicant: two more notices by e-mail and SMS. Both are history entries
-- of their own (seq), so each move or change sends its notice once.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('rejected', 'pre_registered', 'completed', 'expired',
    'withdrawn', 'annulled', 'identity_refused', 'area_changed', 'window_moved'));

ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_purpose_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_purpose_check CHECK (purpose IN ('sign_up', 'bind_phone', 'reset_password',
    'ticket_lookup', 'rejected', 'pre_registered', 'completed', 'expired', 'withdrawn', 'annulled', 'identity_refused',
    'area_changed', 'window_moved'));

-- +goose Down
-- Forward-only: no down migration.
