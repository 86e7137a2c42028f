-- +goose Up
-- Window moves (issue 18 part 4): moving an exam area's confirmation window
-- is an operation of its own, run by a workflow (workflows.WindowMove) that
-- sends the change-window decision to every open registration of the area.
-- Its progress lives here, written by the workflow's activities, so that it
-- can be read while the move runs and after its workflow has closed.
-- Nothing personal: registration ids are opaque, reasons are error texts.
CREATE TABLE window_moves (
    id             uuid        PRIMARY KEY,
    seq            bigserial   NOT NULL UNIQUE, -- the order of the moves (a later one supersedes a running one)
    exam_area_code text        NOT NULL REFERENCES exam_areas (code),
    year           integer     NOT NULL,
    sitting        integer     NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    state          text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    -- the open registrations of the area off the new window when the move
    -- began (raised if it finds more on a later look)
    total          integer     NOT NULL DEFAULT 0 CHECK (total >= 0),
    superseded_by  uuid,       -- a later move of the same area stopped this one
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    CHECK ((state = 'done') = (finished_at IS NOT NULL))
);
CREATE INDEX window_moves_area_idx ON window_moves (exam_area_code, year, sitting, seq);

-- What the move did to each registration it tried: moved, not moved (why),
-- or ended meanwhile (neither). Written once per batch, idempotently: a
-- batch retried after a crash writes the same rows, and never turns a
-- moved registration back into a not-moved one.
CREATE TABLE window_move_items (
    move_id         uuid NOT NULL REFERENCES window_moves (id) ON DELETE CASCADE,
    registration_id uuid NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    outcome         text NOT NULL CHECK (outcome IN ('moved', 'not_moved', 'ended')),
    reason          text NOT NULL DEFAULT '',
    PRIMARY KEY (move_id, registration_id)
);

-- The move pages through the open registrations of one area and sitting by id.
CREATE INDEX registrations_area_open_idx ON registrations (exam_area_code, year, sitting, id)
    WHERE status NOT IN ('completed', 'expired', 'withdrawn', 'annulled');

-- +goose Down
-- Forward-only: no down migration.
