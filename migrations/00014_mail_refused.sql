-- +goose Up
-- An e-mail the SMTP server refused for good (a 5xx reply to RCPT TO, or at
-- the end of DATA: internal/mail, permanent): failed_at is set, the sender
-- never claims it again, the metrics count it and the administrators'
-- dashboard lists it. Its last_error holds the reply code and enhanced
-- status only (e.g. 550 5.1.1), never the server's text, which usually
-- repeats the address.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE outbox ADD CONSTRAINT outbox_accepted_or_failed CHECK (accepted_at IS NULL OR failed_at IS NULL);

-- The sender's queue: messages neither accepted nor refused, by due time.
DROP INDEX outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE accepted_at IS NULL AND failed_at IS NULL;
-- The refused messages, newest first (the dashboard's list and count).
CREATE INDEX outbox_refused_idx ON outbox (failed_at) WHERE failed_at IS NOT NULL;

-- +goose Down
-- Forward-only: no down migration.
