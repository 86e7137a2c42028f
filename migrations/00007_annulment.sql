-- +goose Up
-- Annulment (作废): the exam office ends an open registration with a reason,
-- e.g. one made with another person's ID number. annulled is a final state
-- that frees the ID number at once, like expired and withdrawn. And "who did
-- what": every history entry records the acting account (NULL for system
-- steps).

ALTER TABLE registrations DROP CONSTRAINT registrations_status_check;
ALTER TABLE registrations ADD CONSTRAINT registrations_status_check CHECK (status IN ('diploma_check', 'awaiting_report',
    'county_review', 'provincial_review', 'pre_registered', 'completed', 'expired', 'withdrawn', 'annulled'));

-- The reason the office gave (decision_reasons' text), shown to the applicant.
ALTER TABLE registrations ADD COLUMN annulment_reason text;

-- The partial indexes over open registrations: annulled is closed.
DROP INDEX registrations_open_account_key;
CREATE UNIQUE INDEX registrations_open_account_key ON registrations (account_id)
    WHERE status NOT IN ('completed', 'expired', 'withdrawn', 'annulled');
DROP INDEX registrations_active_id_number_key;
CREATE UNIQUE INDEX registrations_active_id_number_key ON registrations (id_number)
    WHERE status NOT IN ('expired', 'withdrawn', 'annulled');
DROP INDEX registrations_to_check_idx;
CREATE INDEX registrations_to_check_idx ON registrations (checked_at)
    WHERE status NOT IN ('completed', 'expired', 'withdrawn', 'annulled') OR checked_at < updated_at;

-- The account that made the step: the applicant's or a staff member's.
ALTER TABLE registration_history ADD COLUMN by_account_id bigint REFERENCES accounts (id);
-- Steps recorded before: the applicant's are the registration's account's;
-- the staff member of an earlier step is not known.
UPDATE registration_history h SET by_account_id = r.account_id
FROM registrations r WHERE r.id = h.registration_id AND h.by_role = 'applicant';

-- +goose Down
-- Forward-only: no down migration.
