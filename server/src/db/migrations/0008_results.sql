-- Result approval, release and disposal (issue 10). Numbered 8: 7 is taken by another branch.

-- What approval sealed: the record's heads and the digest of its content, which later evidence (the
-- certificates of flow step 10) names.
CREATE TABLE record_seals (
    instruction_id  INTEGER PRIMARY KEY REFERENCES instructions(id),
    heads           TEXT NOT NULL,   -- JSON array of hex change hashes
    digest          TEXT NOT NULL,   -- SHA-256 hex of the canonical content (RecordDoc::content_digest)
    verdict         TEXT CHECK (verdict IN ('conforming', 'non_conforming')),
    disposal        TEXT CHECK (disposal IN ('technical_treatment', 'return', 'destruction')),
    sealed_by       INTEGER NOT NULL REFERENCES users(id),
    sealed_at       INTEGER NOT NULL
);

-- The electronic record (电子底账) of released goods: one per application, numbered from its inspection number.
CREATE TABLE e_records (
    application_id  INTEGER PRIMARY KEY REFERENCES applications(id),
    number          TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('normal')),
    forced          INTEGER NOT NULL DEFAULT 0,
    released_at     INTEGER NOT NULL
);
