-- +goose Up
-- Inboxes that scale: each registration remembers when it entered its
-- current status (stage_since, the time of the history entry that moved it
-- there), so that the reviewers' inbox is paged by (stage_since, id) from
-- an index, first page and last alike, and the overdue reviews are counted
-- from the same column. Staff find registrations by ID number (any status).

ALTER TABLE registrations ADD COLUMN stage_since timestamptz NOT NULL DEFAULT now();
UPDATE registrations r SET stage_since = COALESCE(
    (SELECT max(h.at) FROM registration_history h WHERE h.registration_id = r.id AND h.status = r.status),
    r.updated_at);

-- Serves the inbox of one exam area (and counts by status and exam area);
-- replaces the index on (status, exam_area_code, updated_at).
CREATE INDEX registrations_stage_idx ON registrations (status, exam_area_code, stage_since, id);
DROP INDEX registrations_inbox_idx;
-- Serves the provincial inbox over every exam area.
CREATE INDEX registrations_review_order_idx ON registrations (status, stage_since, id)
    WHERE status IN ('county_review', 'provincial_review');
-- Staff look a person up by ID number, in any status.
CREATE INDEX registrations_id_number_idx ON registrations (id_number);

-- +goose Down
-- Forward-only: no down migration.
