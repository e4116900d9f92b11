-- Receipts about enterprises, accounts and delegations (issue 18: a registration's decision, an operator
-- waiting for its legal person, a delegation or an operator's validity ending soon), and the reminder
-- kinds that go with them.
--
-- `receipts.subject` and `reminders.kind` were CHECK lists, and each new value cost a table rebuild (0011
-- did one for `certificate`). They now reference small vocabulary tables instead: a later subject is one
-- INSERT here, and SQLite still refuses a misspelt subject (foreign keys are on for every connection,
-- `db::configure`). Both tables are rebuilt once more, by the documented procedure
-- (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"; the runner turns
-- foreign keys off around the migration and checks them before it commits). Ids are kept — the receipt id
-- is the feed's cursor and the live stream's event id — and so is the AUTOINCREMENT high-water mark, so an
-- id is never handed out twice. No trigger or view names either table; `reminders.receipt_id` is the only
-- reference to `receipts`, and it keeps pointing at the same ids.
CREATE TABLE receipt_subjects (name TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
INSERT INTO receipt_subjects (name) VALUES
    ('application'), ('instruction'), ('booking'), ('certificate'), ('enterprise'), ('user'), ('delegation');

CREATE TABLE reminder_kinds (name TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
INSERT INTO reminder_kinds (name) VALUES
    ('booking_soon'), ('deadline_near'), ('document_outstanding'),
    ('delegation_expiring'), ('operator_expiring'), ('producer_expiring');

CREATE TEMP TABLE receipts_high_water AS SELECT seq FROM sqlite_sequence WHERE name = 'receipts';

CREATE TABLE receipts_v23 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    subject        TEXT NOT NULL REFERENCES receipt_subjects(name),
    subject_id     INTEGER NOT NULL,
    inspection_no  TEXT,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    opinion        TEXT,
    at             INTEGER NOT NULL,
    details        TEXT NOT NULL
);
INSERT INTO receipts_v23 (id, enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details)
    SELECT id, enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details FROM receipts;
DROP TABLE receipts;
ALTER TABLE receipts_v23 RENAME TO receipts;
CREATE INDEX receipts_enterprise ON receipts(enterprise_id, id);
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM temp.receipts_high_water))
    WHERE name = 'receipts' AND EXISTS (SELECT 1 FROM temp.receipts_high_water);
DROP TABLE temp.receipts_high_water;

CREATE TABLE reminders_v23 (
    kind        TEXT NOT NULL REFERENCES reminder_kinds(name),
    -- The subject the reminder is about (for `document_outstanding` the request's id, one reminder each).
    subject_id  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    receipt_id  INTEGER NOT NULL REFERENCES receipts(id),
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (kind, subject_id, due_at)
);
INSERT INTO reminders_v23 (kind, subject_id, due_at, receipt_id, sent_at)
    SELECT kind, subject_id, due_at, receipt_id, sent_at FROM reminders;
DROP TABLE reminders;
ALTER TABLE reminders_v23 RENAME TO reminders;
