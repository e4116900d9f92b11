-- Foundation: organisations, users, devices, sessions, delegation, audit.
-- Every time column holds Unix milliseconds, UTC.

CREATE TABLE customs_units (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE CHECK (length(code) = 4 AND code NOT GLOB '*[^0-9]*'),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('headquarters', 'customs', 'site')),
    parent_id   INTEGER REFERENCES customs_units(id),
    timezone    TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  INTEGER NOT NULL
);
CREATE INDEX customs_units_parent ON customs_units(parent_id);

CREATE TABLE enterprises (
    id            INTEGER PRIMARY KEY,
    customs_code  TEXT NOT NULL UNIQUE,
    uscc          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credit_rating TEXT NOT NULL,
    unit_id       INTEGER REFERENCES customs_units(id),
    created_at    INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    unit_id       INTEGER REFERENCES customs_units(id),
    enterprise_id INTEGER REFERENCES enterprises(id),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'lost')),
    -- Operators of an enterprise have a validity the legal person extends; NULL = no end.
    valid_until   INTEGER,
    -- Raw 32-byte Ed25519 public key for strong login; NULL = strong login not possible.
    signing_key   BLOB CHECK (signing_key IS NULL OR length(signing_key) = 32),
    created_at    INTEGER NOT NULL,
    CHECK ((enterprise_id IS NULL) <> (unit_id IS NULL))
);
CREATE INDEX users_enterprise ON users(enterprise_id);
CREATE INDEX users_unit ON users(unit_id);

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    officer_id    INTEGER NOT NULL REFERENCES users(id),
    name          TEXT NOT NULL,
    -- The automerge actor id (hex) the server assigns; changes by any other actor are refused.
    actor_id      TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'lost')),
    registered_at INTEGER NOT NULL,
    last_seen_at  INTEGER
);
CREATE INDEX devices_officer ON devices(officer_id);

-- A login: access tokens name their session, so revoking it ends them at once.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    device_id     TEXT REFERENCES devices(id),
    aal           INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoked_why   TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_device ON sessions(device_id);

-- Refresh tokens are stored hashed; each is used once and replaced (rotation).
CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    issued_at   INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE login_challenges (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    nonce       BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE TABLE delegations (
    id            INTEGER PRIMARY KEY,
    principal_id  INTEGER NOT NULL REFERENCES enterprises(id),
    agent_id      INTEGER NOT NULL REFERENCES enterprises(id),
    -- Comma-separated scopes, e.g. 'applications,bookings'.
    scopes        TEXT NOT NULL,
    valid_from    INTEGER NOT NULL,
    valid_until   INTEGER NOT NULL,
    created_by    INTEGER NOT NULL REFERENCES users(id),
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    CHECK (principal_id <> agent_id),
    CHECK (valid_until > valid_from)
);
CREATE INDEX delegations_agent ON delegations(agent_id);
CREATE INDEX delegations_principal ON delegations(principal_id);

-- What an agent's legal person passes on to one of its operators, under a delegation.
CREATE TABLE delegation_grants (
    id             INTEGER PRIMARY KEY,
    delegation_id  INTEGER NOT NULL REFERENCES delegations(id),
    user_id        INTEGER NOT NULL REFERENCES users(id),
    scopes         TEXT NOT NULL,
    created_by     INTEGER NOT NULL REFERENCES users(id),
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);
CREATE INDEX delegation_grants_user ON delegation_grants(user_id);
CREATE INDEX delegation_grants_delegation ON delegation_grants(delegation_id);

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical row). The triggers refuse edits through
-- SQL; the chain catches edits made around them.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
