-- +goose Up
-- Phones and SMS: an account may bind a verified phone (a login name besides
-- the e-mail, and the channel of SMS codes and notices); SMS codes; the SMS
-- outbox beside the e-mail one. Phone numbers, codes and texts are personal
-- data: they stay in these tables, never in a log or a metric.

-- A phone belongs to at most one account. Writers take an advisory lock on
-- the phone and check first (accounts.lockPhone): this index is the
-- backstop, whose violation would write the number into the server's log.
ALTER TABLE accounts ADD COLUMN phone text CHECK (phone ~ '^1[3-9][0-9]{9}$');
CREATE UNIQUE INDEX accounts_phone_key ON accounts (phone) WHERE phone IS NOT NULL;

-- One live code per phone and purpose: a newer code replaces (voids) the
-- row; a used code, or one entered wrongly five times, is deleted.
-- code_hash is argon2id, as passwords are.
CREATE TABLE sms_codes (
    phone          text        NOT NULL,
    purpose        text        NOT NULL CHECK (purpose IN ('sign_up', 'bind_phone', 'reset_password')),
    code_hash      text        NOT NULL,
    expires_at     timestamptz NOT NULL,
    wrong_entries  integer     NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (phone, purpose)
);
CREATE INDEX sms_codes_expires_idx ON sms_codes (expires_at);

-- The SMS outbox: written in the transaction of the step it reports (a
-- registration's notices: registration_id and seq, one per step and purpose)
-- or of the request that asks for it (codes, ticket look-ups), delivered by
-- the senders (internal/sms). id is the provider's OutId: a message sent
-- again after a crash carries the same one. A code's parameters are emptied
-- once it is sent or given up. failed_at: the provider refused it for good
-- (a number it cannot reach, a code that expired before it could go).
CREATE TABLE sms_outbox (
    id                   uuid PRIMARY KEY,
    purpose              text        NOT NULL CHECK (purpose IN ('sign_up', 'bind_phone', 'reset_password', 'ticket_lookup',
                             'rejected', 'pre_registered', 'completed', 'expired', 'withdrawn', 'annulled', 'identity_refused')),
    registration_id      uuid REFERENCES registrations (id) ON DELETE CASCADE,
    seq                  integer,
    phone                text        NOT NULL,
    template_code        text        NOT NULL,
    params               jsonb       NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    attempts             integer     NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    last_error           text,
    accepted_at          timestamptz,
    provider_message_id  text,
    failed_at            timestamptz,
    UNIQUE (registration_id, purpose, seq)
);
CREATE INDEX sms_outbox_due_idx ON sms_outbox (next_attempt_at) WHERE accepted_at IS NULL AND failed_at IS NULL;

-- +goose Down
-- Forward-only: no down migration.
