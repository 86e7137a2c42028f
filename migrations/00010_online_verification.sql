-- +goose Up
-- Online identity verification (网上验证): a pre-registered applicant reads
-- aloud the digits of a challenge in a short video and uploads it with a
-- photo of the ID card and the electronic ID photo; the citizen identity
-- verification service compares them with the records. Three failed tries
-- close it; the applicant may then ask the office for a manual check
-- (人工核验, status identity_review) once, or go on site.

ALTER TABLE registrations DROP CONSTRAINT registrations_status_check;
ALTER TABLE registrations ADD CONSTRAINT registrations_status_check CHECK (status IN ('diploma_check', 'awaiting_report',
    'county_review', 'provincial_review', 'pre_registered', 'identity_review', 'completed', 'expired', 'withdrawn', 'annulled'));

-- The online verification as the workflow holds it: tries left, closed (three
-- failures, not in the records, or a refused manual check), the last try's
-- result, whether the manual check was asked for, and the office's reason
-- when it refused.
ALTER TABLE registrations
    ADD COLUMN online_tries_left      integer NOT NULL DEFAULT 3 CHECK (online_tries_left BETWEEN 0 AND 3),
    ADD COLUMN online_closed          boolean NOT NULL DEFAULT false,
    ADD COLUMN online_last_result     text CHECK (online_last_result IN ('face_mismatch', 'liveness_failed', 'not_in_records', 'match')),
    ADD COLUMN identity_review_asked  boolean NOT NULL DEFAULT false,
    ADD COLUMN identity_review_reason text;

-- The provincial office's inbox of manual checks over every exam area.
CREATE INDEX registrations_identity_review_idx ON registrations (status, stage_since, id)
    WHERE status = 'identity_review';

-- A challenge: the 4 digits to read aloud, valid 10 minutes, voided by a
-- newer one, used by one try. claimed_by is the Workflow Update (request)
-- that uses it: the same request may use it again (a retry), no other.
CREATE TABLE online_challenges (
    id               uuid PRIMARY KEY,
    registration_id  uuid        NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    digits           text        NOT NULL CHECK (digits ~ '^[0-9]{4}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    voided_at        timestamptz,
    claimed_by       text,
    claimed_at       timestamptz
);
CREATE INDEX online_challenges_registration_idx ON online_challenges (registration_id, created_at);

-- Each try as the workflow recorded it, with its history entry (removed with
-- it when that entry is replaced), and its three files.
CREATE TABLE online_tries (
    registration_id        uuid        NOT NULL,
    seq                    integer     NOT NULL,
    challenge_id           uuid        NOT NULL,
    result                 text        NOT NULL CHECK (result IN ('match', 'face_mismatch', 'liveness_failed', 'not_in_records')),
    id_card_photo_file_id  uuid        NOT NULL REFERENCES files (id),
    video_file_id          uuid        NOT NULL REFERENCES files (id),
    portrait_file_id       uuid        NOT NULL REFERENCES files (id),
    at                     timestamptz NOT NULL,
    PRIMARY KEY (registration_id, seq),
    FOREIGN KEY (registration_id, seq) REFERENCES registration_history (registration_id, seq) ON DELETE CASCADE
);

-- Discard and the foreign keys of files look a file up among the tries.
CREATE INDEX online_tries_id_card_photo_idx ON online_tries (id_card_photo_file_id);
CREATE INDEX online_tries_video_idx ON online_tries (video_file_id);
CREATE INDEX online_tries_portrait_idx ON online_tries (portrait_file_id);

-- The e-mail of a refused manual check: why, and where to go on site.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('rejected', 'pre_registered', 'completed', 'expired',
    'withdrawn', 'annulled', 'identity_refused'));

-- Files are stored once per content: two uploads of the same bytes share a
-- row and an id. pending counts the uploads of a row whose request may
-- still refer to it (stored, not yet discarded); Discard removes the row
-- only once no upload is pending and nothing refers to it, so that a
-- request discarding its refused upload never deletes the file another
-- request (a retry with the same key, or the same photo sent twice) is about
-- to record: its workflow would retry that write for ever.
ALTER TABLE files ADD COLUMN pending integer NOT NULL DEFAULT 0 CHECK (pending >= 0);

-- +goose Down
-- Forward-only: no down migration.
