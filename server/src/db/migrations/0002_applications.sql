-- Applications, review, risk selection, instructions and receipts (flow steps 1–4 and 6).

-- Reference data, loaded from fixtures/hs and fixtures/checklists: rules are data, not code.
CREATE TABLE hs_codes (
    code            TEXT PRIMARY KEY,
    chapter         TEXT NOT NULL,
    description_en  TEXT NOT NULL,
    description_zh  TEXT NOT NULL,
    unit            TEXT NOT NULL,
    category        TEXT
);
CREATE TABLE producer_rules (
    id         TEXT PRIMARY KEY,
    hs_prefix  TEXT NOT NULL,
    requires   TEXT NOT NULL,
    direction  TEXT CHECK (direction IS NULL OR direction IN ('import', 'export')),  -- NULL = both
    reason_en  TEXT NOT NULL,
    reason_zh  TEXT NOT NULL
);
CREATE TABLE registered_producers (
    registration_no  TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    hs_prefixes      TEXT NOT NULL,  -- comma-separated
    valid_until      INTEGER NOT NULL
);
CREATE TABLE risk_rules (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('hs_prefix', 'origin')),
    value      TEXT NOT NULL,
    reason_en  TEXT NOT NULL
);
CREATE TABLE sampling_ratios (
    chapter        TEXT NOT NULL,
    credit_rating  TEXT NOT NULL,
    ratio          REAL NOT NULL CHECK (ratio >= 0 AND ratio <= 1),
    PRIMARY KEY (chapter, credit_rating)
);
CREATE TABLE checklist_templates (
    category    TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    title_en    TEXT NOT NULL,
    title_zh    TEXT NOT NULL,
    items       TEXT NOT NULL  -- JSON array of check items
);
CREATE TABLE settings_kv (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE applications (
    id              INTEGER PRIMARY KEY,
    enterprise_id   INTEGER NOT NULL REFERENCES enterprises(id),
    created_by      INTEGER NOT NULL REFERENCES users(id),
    direction       TEXT NOT NULL CHECK (direction IN ('import', 'export')),
    state           TEXT NOT NULL,
    district_unit   INTEGER NOT NULL REFERENCES customs_units(id),
    site_unit       INTEGER NOT NULL REFERENCES customs_units(id),
    inspection_no   TEXT UNIQUE,
    content         TEXT NOT NULL,   -- JSON: the declaration as the enterprise filed it
    version         INTEGER NOT NULL DEFAULT 1,
    copied_from     INTEGER REFERENCES applications(id),
    disposition     TEXT,            -- after approval: released | document_check | inspection
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    submitted_at    INTEGER
);
CREATE INDEX applications_enterprise ON applications(enterprise_id, created_at);
CREATE INDEX applications_district_state ON applications(district_unit, state);
CREATE INDEX applications_state_time ON applications(state, created_at);

-- Every state change and amendment, with the content as it stood: a returned application keeps its past.
CREATE TABLE application_history (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications(id),
    version         INTEGER NOT NULL,
    state           TEXT NOT NULL,
    action          TEXT NOT NULL,
    opinion         TEXT,
    actor           TEXT NOT NULL,
    at              INTEGER NOT NULL,
    content         TEXT NOT NULL
);
CREATE INDEX application_history_app ON application_history(application_id, id);

-- Gapless serials: one row per (direction, year, district), bumped inside the submitting transaction.
CREATE TABLE inspection_serials (
    direction  TEXT NOT NULL,
    year       INTEGER NOT NULL,
    district   TEXT NOT NULL,
    last       INTEGER NOT NULL,
    PRIMARY KEY (direction, year, district)
);

CREATE TABLE auto_review (
    unit_id     INTEGER PRIMARY KEY REFERENCES customs_units(id),
    enabled     INTEGER NOT NULL,
    changed_by  INTEGER NOT NULL REFERENCES users(id),
    changed_at  INTEGER NOT NULL
);

-- The risk engine's decision and everything needed to reproduce it.
CREATE TABLE selections (
    application_id  INTEGER PRIMARY KEY REFERENCES applications(id),
    outcome         TEXT NOT NULL CHECK (outcome IN ('release', 'document_check', 'on_site')),
    seed            TEXT NOT NULL,
    inputs          TEXT NOT NULL,   -- JSON
    explanation     TEXT NOT NULL,   -- JSON
    decided_at      INTEGER NOT NULL
);

CREATE TABLE instructions (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL UNIQUE REFERENCES applications(id),
    inspection_no   TEXT NOT NULL,
    enterprise_id   INTEGER NOT NULL REFERENCES enterprises(id),
    unit_id         INTEGER NOT NULL REFERENCES customs_units(id),
    site_id         INTEGER NOT NULL REFERENCES customs_units(id),
    state           TEXT NOT NULL,
    checklist       TEXT NOT NULL,   -- JSON: [{item_id, title_en, title_zh, kind, unit?}]
    deadline        INTEGER NOT NULL,
    due_at          INTEGER,         -- set by a confirmed booking
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX instructions_site_state ON instructions(site_id, state);
CREATE INDEX instructions_unit_state ON instructions(unit_id, state, created_at);
CREATE INDEX instructions_enterprise ON instructions(enterprise_id);

CREATE TABLE instruction_officers (
    instruction_id  INTEGER NOT NULL REFERENCES instructions(id),
    officer_id      INTEGER NOT NULL REFERENCES users(id),
    assigned_at     INTEGER NOT NULL,
    PRIMARY KEY (instruction_id, officer_id)
);
CREATE INDEX instruction_officers_officer ON instruction_officers(officer_id);

-- Receipts (回执): the id is the cursor. Writers are serialised, so ids become visible in order and
-- `id > cursor` paging never skips a row that commits later with a smaller id.
CREATE TABLE receipts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    subject        TEXT NOT NULL CHECK (subject IN ('application', 'instruction', 'booking')),
    subject_id     INTEGER NOT NULL,
    inspection_no  TEXT,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    opinion        TEXT,
    at             INTEGER NOT NULL,
    details        TEXT NOT NULL
);
CREATE INDEX receipts_enterprise ON receipts(enterprise_id, id);
