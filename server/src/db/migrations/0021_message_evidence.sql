-- Message exchange, continued (issue 17). Numbered 21: the numbers between are other branches'.
--
-- `certificate.apply` messages create certificate applications, which the subject check of 0014 did not
-- allow; and evidence is listed per application (`GET /api/v1/applications/{id}/messages`), whether the
-- message was about the application itself, a booking of its instruction or one of its certificates, so
-- each message now names the application it concerns. SQLite cannot change a CHECK in place: the table
-- is rebuilt with its rows.

CREATE TABLE messages_new (
    id             INTEGER PRIMARY KEY,
    signer_id      INTEGER NOT NULL REFERENCES users(id),
    -- The sender's own id for the message: unique per signer, the idempotency key.
    message_id     TEXT NOT NULL,
    -- SHA-256 of the signed payload bytes: "same content" for a resend.
    payload_sha256 BLOB NOT NULL CHECK (length(payload_sha256) = 32),
    kind           TEXT NOT NULL,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    subject        TEXT NOT NULL CHECK (subject IN ('application', 'booking', 'certificate_application')),
    subject_id     INTEGER NOT NULL,
    -- The application the subject belongs to (itself, its instruction's booking, or its certificate).
    application_id INTEGER NOT NULL REFERENCES applications(id),
    envelope       TEXT NOT NULL,
    status         INTEGER NOT NULL,
    answer         TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    UNIQUE (signer_id, message_id)
);

INSERT INTO messages_new (id, signer_id, message_id, payload_sha256, kind, enterprise_id, subject, subject_id,
                          application_id, envelope, status, answer, received_at)
SELECT m.id, m.signer_id, m.message_id, m.payload_sha256, m.kind, m.enterprise_id, m.subject, m.subject_id,
       CASE m.subject
           WHEN 'application' THEN m.subject_id
           ELSE (SELECT i.application_id FROM bookings b JOIN instructions i ON i.id = b.instruction_id
                 WHERE b.id = m.subject_id)
       END,
       m.envelope, m.status, m.answer, m.received_at
FROM messages m;

DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_subject ON messages(subject, subject_id);
CREATE INDEX messages_application ON messages(application_id, id);
