-- +goose Up
-- Throttling by attempt (see internal/throttle): one row per attempt still
-- being checked (failed_at NULL: pending) or failed. A pending row counts for
-- a few seconds only, so an attempt cut short by a crash does not stay
-- counted; a failed one counts for its rule's window. The per-key counters
-- of auth_failures could not tell a crashed attempt from a running one.

CREATE TABLE throttle_attempts (
    id          bigserial   PRIMARY KEY,
    scope       text        NOT NULL,
    key         text        NOT NULL,
    started_at  timestamptz NOT NULL,
    failed_at   timestamptz
);
CREATE INDEX throttle_attempts_key_idx ON throttle_attempts (scope, key);
-- Rows older than every window are swept by age.
CREATE INDEX throttle_attempts_started_at_idx ON throttle_attempts (started_at);

DROP TABLE auth_failures;

-- +goose Down
-- Forward-only: no down migration.
