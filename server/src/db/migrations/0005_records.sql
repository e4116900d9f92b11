-- Offline sync (flow steps 6–8): record and assignment-index documents, sync sessions, the projection.

-- One automerge document: a compacted snapshot plus the incremental chunks appended since, so an
-- accepted sync message costs one small insert. Loading concatenates base and chunks in order.
CREATE TABLE sync_docs (
    id              TEXT PRIMARY KEY,           -- 32 hex digits (16 random bytes)
    kind            TEXT NOT NULL CHECK (kind IN ('record', 'index')),
    instruction_id  INTEGER UNIQUE REFERENCES instructions(id),  -- records
    officer_id      INTEGER UNIQUE REFERENCES users(id),         -- assignment indexes
    base            BLOB NOT NULL,
    chunks          INTEGER NOT NULL DEFAULT 0,  -- rows in sync_doc_chunks
    bytes           INTEGER NOT NULL,            -- base + chunks, for monitoring and budgets
    -- Heads (JSON array of hex hashes) stored when the record was sealed by approval.
    sealed_heads    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CHECK ((kind = 'record') = (instruction_id IS NOT NULL)),
    CHECK ((kind = 'index') = (officer_id IS NOT NULL))
);

CREATE TABLE sync_doc_chunks (
    doc_id  TEXT NOT NULL REFERENCES sync_docs(id),
    seq     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
);

-- Per (device, document): only the heads both sides are known to share (`State::encode()`). Every
-- HTTP round starts from it, so a lost response can never wedge a session.
CREATE TABLE sync_states (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    doc_id      TEXT NOT NULL REFERENCES sync_docs(id),
    state       BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, doc_id)
);

-- The record as last merged, for queries. Rewritten after every accepted change.
CREATE TABLE record_projection (
    instruction_id   INTEGER PRIMARY KEY REFERENCES instructions(id),
    verdict          TEXT,     -- conforming | non_conforming (the current winner)
    disposal         TEXT,
    complete         INTEGER NOT NULL DEFAULT 0,
    checks_done      INTEGER NOT NULL DEFAULT 0,
    checks_total     INTEGER NOT NULL,
    open_conflicts   INTEGER NOT NULL DEFAULT 0,
    conflicts        TEXT NOT NULL DEFAULT '[]',   -- JSON: open_conflicts() with officers
    first_change_at  INTEGER,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX record_projection_conflicts ON record_projection(open_conflicts) WHERE open_conflicts > 0;

CREATE TABLE record_checks (
    instruction_id  INTEGER NOT NULL REFERENCES instructions(id),
    item_id         TEXT NOT NULL,
    result          TEXT,
    measurement     REAL,
    unit            TEXT,
    note            TEXT,
    by_officer      TEXT,
    at              INTEGER,
    PRIMARY KEY (instruction_id, item_id)
);

CREATE TABLE record_photos (
    instruction_id  INTEGER NOT NULL REFERENCES instructions(id),
    sha256          TEXT NOT NULL,
    check_item      TEXT,
    caption         TEXT NOT NULL,
    taken_at        INTEGER NOT NULL,
    by_officer      TEXT NOT NULL,
    PRIMARY KEY (instruction_id, sha256)
);
CREATE INDEX record_photos_sha ON record_photos(sha256);
