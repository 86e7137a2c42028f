-- +goose Up
-- Files, enrolled records, the read model of registrations, and ticket numbers.

-- Uploaded files (diploma reports, on-site photos), stored once per content.
CREATE TABLE files (
    id            uuid PRIMARY KEY,
    sha256        bytea       NOT NULL UNIQUE,
    content_type  text        NOT NULL,
    size          integer     NOT NULL,
    data          bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Legacy Hubei enrolment records (在籍信息), loaded from CSV by `zikao enrolled import`.
CREATE TABLE enrolled_records (
    ticket_number   text PRIMARY KEY CHECK (ticket_number ~ '^[0-9]{12}$'),
    name            text NOT NULL,
    id_number       text NOT NULL,
    major_code      text NOT NULL,
    major_name      text NOT NULL,
    level           text NOT NULL CHECK (level IN ('zhuanke', 'zhuanshengben')),
    exam_area_code  text NOT NULL REFERENCES exam_areas (code),
    source          text NOT NULL CHECK (source IN ('social', 'system')),
    imported_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrolled_records_id_number_idx ON enrolled_records (id_number);

-- The read model of every registration, written by the worker's activities.
CREATE TABLE registrations (
    id                    uuid PRIMARY KEY,
    account_id            bigint      NOT NULL REFERENCES accounts (id),
    kind                  text        NOT NULL CHECK (kind IN ('new', 'enrolled')),
    status                text        NOT NULL CHECK (status IN ('diploma_check', 'awaiting_report', 'county_review',
                                          'provincial_review', 'pre_registered', 'completed', 'expired', 'withdrawn')),
    name                  text        NOT NULL,
    id_number             text        NOT NULL,
    gender                text        NOT NULL CHECK (gender IN ('male', 'female')),
    birth_date            date        NOT NULL,
    ethnicity             text        NOT NULL DEFAULT '',
    phone                 text        NOT NULL,
    address               text        NOT NULL DEFAULT '',
    education             text        NOT NULL DEFAULT '',
    major_type            text        NOT NULL,
    level                 text        NOT NULL,
    major_code            text        NOT NULL REFERENCES majors (code),
    exam_area_code        text        NOT NULL REFERENCES exam_areas (code),
    prior_school          text        NOT NULL DEFAULT '',
    prior_diploma_number  text        NOT NULL DEFAULT '',
    year                  integer     NOT NULL,
    sitting               integer     NOT NULL,
    terms_agreed_at       timestamptz NOT NULL,
    selected_ticket_number text,
    ticket_number         text,
    window_starts_at      timestamptz NOT NULL,
    window_ends_at        timestamptz NOT NULL,
    rejection_reason      text,
    report_id             uuid,
    photo_file_id         uuid REFERENCES files (id),
    idempotency_key       text,
    last_seq              integer     NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
-- At most one open registration per account, and per ID number at most one
-- registration that is open or completed: racing submissions end here, not
-- in a check-then-act.
CREATE UNIQUE INDEX registrations_open_account_key ON registrations (account_id)
    WHERE status NOT IN ('completed', 'expired', 'withdrawn');
CREATE UNIQUE INDEX registrations_active_id_number_key ON registrations (id_number)
    WHERE status NOT IN ('expired', 'withdrawn');
-- A submission retried with the same Idempotency-Key finds the first one.
CREATE UNIQUE INDEX registrations_idempotency_key ON registrations (account_id, idempotency_key);
CREATE INDEX registrations_inbox_idx ON registrations (status, exam_area_code, updated_at);

-- Diploma certification reports (学历认证报告) uploaded for a registration;
-- the workflow only ever sees their id.
CREATE TABLE diploma_reports (
    id                  uuid PRIMARY KEY,
    registration_id     uuid        NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    file_id             uuid        NOT NULL REFERENCES files (id),
    verification_code   text,
    report_number       text,
    certificate_number  text,
    uploaded_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (verification_code IS NOT NULL OR (report_number IS NOT NULL AND certificate_number IS NOT NULL))
);
ALTER TABLE registrations ADD FOREIGN KEY (report_id) REFERENCES diploma_reports (id);

-- update_id: the Workflow Update (the request's Idempotency-Key) that made
-- the step, so that a retried request is answered with what it did.
CREATE TABLE registration_history (
    registration_id  uuid        NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    seq              integer     NOT NULL,
    status           text        NOT NULL,
    at               timestamptz NOT NULL,
    by_role          text        NOT NULL,
    note             text        NOT NULL DEFAULT '',
    update_id        text,
    PRIMARY KEY (registration_id, seq)
);
CREATE UNIQUE INDEX registration_history_update_key ON registration_history (registration_id, update_id)
    WHERE update_id IS NOT NULL;

-- Every admission ticket number ever issued; a number is never issued twice.
CREATE TABLE tickets (
    ticket_number    text PRIMARY KEY CHECK (ticket_number ~ '^[0-9]{12}$'),
    registration_id  uuid NOT NULL UNIQUE REFERENCES registrations (id),
    issued_at        timestamptz NOT NULL DEFAULT now()
);

-- Last sequence used per exam area + year + sitting (the ticket's first 7 digits).
CREATE TABLE ticket_sequences (
    prefix  text PRIMARY KEY CHECK (prefix ~ '^[0-9]{7}$'),
    last    integer NOT NULL DEFAULT 0
);

-- +goose Down
-- Forward-only: no down migration.
