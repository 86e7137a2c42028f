-- +goose Up
-- Exactly-once bookkeeping: reasons typed by reviewers stay here (only their
-- id travels through Temporal), reports remember the request that stored them
-- and whether the workflow accepted them, and every history entry records the
-- workflow task that wrote it, so that a write from a task Temporal never
-- committed is replaced by the one it did.

CREATE TABLE decision_reasons (
    id               uuid PRIMARY KEY,
    registration_id  uuid        NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    update_id        text        NOT NULL,
    text             text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (registration_id, update_id)
);

ALTER TABLE diploma_reports ADD COLUMN update_id text, ADD COLUMN accepted_at timestamptz;
-- Reports stored before this migration were all handed to their workflow.
UPDATE diploma_reports SET accepted_at = uploaded_at;
CREATE UNIQUE INDEX diploma_reports_update_key ON diploma_reports (registration_id, update_id);

-- history_length: the length of the workflow's history when the workflow
-- task that wrote the entry started (Temporal's GetCurrentHistoryLength).
ALTER TABLE registration_history ADD COLUMN history_length bigint NOT NULL DEFAULT 0;

-- The reconciler looks at open registrations and at those changed since it
-- last looked, least recently checked first.
ALTER TABLE registrations ADD COLUMN checked_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX registrations_to_check_idx ON registrations (checked_at)
    WHERE status NOT IN ('completed', 'expired', 'withdrawn') OR checked_at < updated_at;

-- +goose Down
-- Forward-only: no down migration.
