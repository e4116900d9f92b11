-- Signed message exchange (issue 17): platform signers, and every accepted message kept as evidence.

-- A third-party platform's signing key, registered by an administrator. The key lives on a signer account
-- (users.signing_key) of the platform enterprise so the one key registry serves strong login and messages;
-- this row marks the account as a platform signer, which acts with its enterprise's delegations.
CREATE TABLE platform_signers (
    user_id        INTEGER PRIMARY KEY REFERENCES users(id),
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    registered_by  INTEGER REFERENCES users(id),
    registered_at  INTEGER NOT NULL
);

-- An accepted signed message: the envelope exactly as received (the evidence), what it created or changed,
-- and the answer given, which a resend of the same message gets again.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    signer_id      INTEGER NOT NULL REFERENCES users(id),
    -- The sender's own id for the message: unique per signer, the idempotency key.
    message_id     TEXT NOT NULL,
    -- SHA-256 of the signed payload bytes: "same content" for a resend.
    payload_sha256 BLOB NOT NULL CHECK (length(payload_sha256) = 32),
    kind           TEXT NOT NULL,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    subject        TEXT NOT NULL CHECK (subject IN ('application', 'booking')),
    subject_id     INTEGER NOT NULL,
    envelope       TEXT NOT NULL,
    status         INTEGER NOT NULL,
    answer         TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    UNIQUE (signer_id, message_id)
);
CREATE INDEX messages_subject ON messages(subject, subject_id);
