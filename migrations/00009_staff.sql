-- +goose Up
-- Staff accounts can be disabled (administration over HTTP): a disabled
-- account cannot log in and its sessions end when it is disabled.
ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;
ALTER TABLE accounts ADD CONSTRAINT accounts_applicants_never_disabled CHECK (role <> 'applicant' OR disabled_at IS NULL);

-- +goose Down
-- Forward-only: no down migration.
