-- +goose Up
-- Accounts of applicants and staff, sessions, and failed-attempt counters.

CREATE TABLE accounts (
    id                    bigserial PRIMARY KEY,
    login_name            text        NOT NULL,
    password_hash         text        NOT NULL,
    security_question_id  integer     REFERENCES security_questions (id),
    security_answer_hash  text,
    role                  text        NOT NULL CHECK (role IN ('applicant', 'county_reviewer', 'provincial_reviewer', 'onsite_operator', 'admin')),
    exam_area_code        text        REFERENCES exam_areas (code),
    created_at            timestamptz NOT NULL DEFAULT now(),
    password_changed_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((role IN ('county_reviewer', 'onsite_operator')) = (exam_area_code IS NOT NULL)),
    CHECK (role <> 'applicant' OR (security_question_id IS NOT NULL AND security_answer_hash IS NOT NULL))
);
-- Login names are unique case-insensitively.
CREATE UNIQUE INDEX accounts_login_name_key ON accounts (lower(login_name));

-- Bearer tokens are stored only as their SHA-256.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_account_id_idx ON sessions (account_id);

-- Failed attempts per scope (login name, client address, …) for throttling.
CREATE TABLE auth_failures (
    scope         text        NOT NULL,
    key           text        NOT NULL,
    failures      integer     NOT NULL DEFAULT 0,
    window_start  timestamptz NOT NULL DEFAULT now(),
    locked_until  timestamptz,
    PRIMARY KEY (scope, key)
);

-- +goose Down
-- Forward-only: no down migration.
