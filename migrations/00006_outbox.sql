-- +goose Up
-- The e-mail outbox: every message to an applicant is written here in the
-- same transaction as the read-model change that causes it, and delivered
-- by the worker's sender (internal/mail). recipient (the account's login
-- name), subject and body are personal data: they stay in PostgreSQL.
-- seq is the history entry that caused the message: a retried write adds
-- nothing (unique key), and unsent messages of a superseded step are removed.
CREATE TABLE outbox (
    id               uuid PRIMARY KEY,
    registration_id  uuid        NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    kind             text        NOT NULL CHECK (kind IN ('rejected', 'pre_registered', 'completed', 'expired', 'withdrawn', 'annulled')),
    seq              integer     NOT NULL,
    recipient        text        NOT NULL,
    subject          text        NOT NULL,
    body             text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,        -- the SMTP error, addresses removed
    accepted_at      timestamptz, -- the SMTP server accepted it
    UNIQUE (registration_id, kind, seq)
);
-- The sender's queue: messages not yet accepted, by due time.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE accepted_at IS NULL;

-- +goose Down
-- Forward-only: no down migration.
