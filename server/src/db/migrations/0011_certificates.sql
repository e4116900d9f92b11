-- Cloud-issued certificates (flow step 10, issue 12). Numbered 11: 9 and 10 belong to other branches.

-- Certificate types and their destination rules, loaded from fixtures/certificates (data, not code).
CREATE TABLE certificate_types (
    code  TEXT PRIMARY KEY,
    body  TEXT NOT NULL   -- JSON: titles, SPS type code, HS chapters covered, destination rules
);

-- An enterprise's application for a certificate over a released inspection application.
CREATE TABLE certificate_applications (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications(id),
    enterprise_id   INTEGER NOT NULL REFERENCES enterprises(id),
    created_by      INTEGER NOT NULL REFERENCES users(id),
    type_code       TEXT NOT NULL REFERENCES certificate_types(code),
    state           TEXT NOT NULL CHECK (state IN ('draft', 'queued', 'issued', 'rejected', 'withdrawn')),
    content         TEXT NOT NULL,   -- JSON: consignee, destination, transport, goods, declarations
    version         INTEGER NOT NULL DEFAULT 1,
    failed_rules    TEXT NOT NULL DEFAULT '[]',   -- JSON: the intelligent review's failed rules
    opinion         TEXT,
    certificate_id  INTEGER REFERENCES certificates(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX certificate_applications_enterprise ON certificate_applications(enterprise_id, id);
CREATE INDEX certificate_applications_state ON certificate_applications(state, id);

-- Gapless certificate serials per (district, year, type).
CREATE TABLE certificate_serials (
    district   TEXT NOT NULL,
    year       INTEGER NOT NULL,
    type_code  TEXT NOT NULL,
    last       INTEGER NOT NULL,
    PRIMARY KEY (district, year, type_code)
);

-- An issued certificate: the canonical content exactly as signed, its digest and signature.
CREATE TABLE certificates (
    id                  INTEGER PRIMARY KEY,
    number              TEXT NOT NULL UNIQUE,
    cert_application_id INTEGER NOT NULL REFERENCES certificate_applications(id),
    application_id      INTEGER NOT NULL REFERENCES applications(id),
    enterprise_id       INTEGER NOT NULL REFERENCES enterprises(id),
    district_unit       INTEGER NOT NULL REFERENCES customs_units(id),
    type_code           TEXT NOT NULL,
    content             TEXT NOT NULL,   -- canonical JSON, the bytes the digest and signature cover
    digest              TEXT NOT NULL,   -- SHA-256 hex of content
    signature           TEXT NOT NULL,   -- Ed25519 over the content bytes, base64
    key_id              TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('valid', 'revoked', 'replaced')),
    replaces            INTEGER REFERENCES certificates(id),
    replaced_by         INTEGER REFERENCES certificates(id),
    status_reason       TEXT,
    status_changed_at   INTEGER,
    issued_by           TEXT NOT NULL,   -- `system` or `user:<id>`
    issued_at           INTEGER NOT NULL,
    prints              INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX certificates_enterprise ON certificates(enterprise_id, id);

-- Every self-print: copy N, who, when.
CREATE TABLE certificate_prints (
    certificate_id  INTEGER NOT NULL REFERENCES certificates(id),
    copy            INTEGER NOT NULL,
    printed_by      INTEGER NOT NULL REFERENCES users(id),
    printed_at      INTEGER NOT NULL,
    PRIMARY KEY (certificate_id, copy)
);

-- SPS messages waiting for (or done with) delivery; the sender moves them along.
CREATE TABLE sps_outbox (
    id              INTEGER PRIMARY KEY,
    certificate_id  INTEGER NOT NULL REFERENCES certificates(id),
    status          TEXT NOT NULL,   -- the SPS certificate status the message carries: issued, revoked, replaced
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX sps_outbox_state ON sps_outbox(state, id);

-- Receipts gain the subject `certificate`. SQLite cannot change a CHECK in place: the table is rebuilt with
-- its rows and ids (the cursor) kept.
CREATE TABLE receipts_v11 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    subject        TEXT NOT NULL CHECK (subject IN ('application', 'instruction', 'booking', 'certificate')),
    subject_id     INTEGER NOT NULL,
    inspection_no  TEXT,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    opinion        TEXT,
    at             INTEGER NOT NULL,
    details        TEXT NOT NULL
);
INSERT INTO receipts_v11 (id, enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details)
    SELECT id, enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details FROM receipts;
DROP TABLE receipts;
ALTER TABLE receipts_v11 RENAME TO receipts;
CREATE INDEX receipts_enterprise ON receipts(enterprise_id, id);
