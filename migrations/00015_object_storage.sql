-- +goose Up
-- Files' bytes move to an S3-compatible object store (internal/files): a
-- row keeps the metadata and, for a file stored there, its data key sealed
-- with the key-encryption key key_id (envelope encryption; the object holds
-- only ciphertext). data stays for files written before this release until
-- `zikao files migrate` moves them; the API reads either place meanwhile.
-- purged_at: retention deleted the bytes (the row stays, so that what
-- referred to the file answers 410 file_purged).
ALTER TABLE files ALTER COLUMN data DROP NOT NULL;
ALTER TABLE files
    ADD COLUMN key_id     text,
    ADD COLUMN sealed_key bytea,
    ADD COLUMN stored_at  timestamptz,
    ADD COLUMN purged_at  timestamptz,
    ADD CONSTRAINT files_bytes_somewhere CHECK (
        purged_at IS NOT NULL OR data IS NOT NULL OR (stored_at IS NOT NULL AND key_id IS NOT NULL AND sealed_key IS NOT NULL));
-- `zikao files migrate` walks the rows still holding their bytes.
CREATE INDEX files_in_database_idx ON files (id) WHERE data IS NOT NULL;

-- Every fetch of a sensitive file by staff (PIPL: access restricted and
-- recorded): who, which registration, which kind, when. No file id, no
-- personal data; kept for the audit period (retention).
CREATE TABLE file_accesses (
    id               bigserial   PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    account_id       bigint      NOT NULL REFERENCES accounts (id),
    registration_id  uuid        NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    kind             text        NOT NULL CHECK (kind IN ('id_card_photo', 'video', 'portrait', 'onsite_photo', 'report'))
);
CREATE INDEX file_accesses_registration_idx ON file_accesses (registration_id, at DESC);
CREATE INDEX file_accesses_at_idx ON file_accesses (at);

-- Retention deletes delivered or refused messages by age.
CREATE INDEX outbox_done_idx ON outbox (COALESCE(accepted_at, failed_at)) WHERE accepted_at IS NOT NULL OR failed_at IS NOT NULL;
CREATE INDEX sms_outbox_done_idx ON sms_outbox (COALESCE(accepted_at, failed_at)) WHERE accepted_at IS NOT NULL OR failed_at IS NOT NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- +goose Down
-- Forward-only: no down migration.
