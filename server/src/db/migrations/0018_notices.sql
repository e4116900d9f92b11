-- Printed notices and reminders (issue 18). Notices: the inspection notice, the booking confirmation, the
-- disposal notice and the e-record release slip. A notice gets its number when first printed; its facts are kept so that the
-- public verification can answer for it, and a reprint of unchanged facts is the same notice. Facts that
-- changed (a rescheduled booking) make a new notice that replaces the old one.
CREATE TABLE notices (
    id             INTEGER PRIMARY KEY,
    number         TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('inspection_notice', 'booking_confirmation', 'disposal_notice',
                                                 'release_slip')),
    -- The instruction, booking or application the notice is about (by kind).
    subject_id     INTEGER NOT NULL,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    issuer         TEXT NOT NULL,
    -- The printed facts as JSON, and the SHA-256 of number + facts that the QR code carries.
    facts          TEXT NOT NULL,
    digest         TEXT NOT NULL,
    replaced_by    INTEGER REFERENCES notices(id),
    issued_by      INTEGER NOT NULL REFERENCES users(id),
    issued_at      INTEGER NOT NULL
);
CREATE INDEX notices_subject ON notices(kind, subject_id, id);

-- Reminders sent (issue 18): one row per reminder, written in the transaction of its receipt, so each is
-- sent once, whatever restarts happen. `due_at` is the instant the reminder is about (the slot start, the
-- deadline, the request time): a rescheduled booking or a new deadline is reminded of again.
CREATE TABLE reminders (
    kind        TEXT NOT NULL CHECK (kind IN ('booking_soon', 'deadline_near', 'document_outstanding')),
    subject_id  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    receipt_id  INTEGER NOT NULL REFERENCES receipts(id),
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (kind, subject_id, due_at)
);
