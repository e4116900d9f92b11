-- Onboarding (issue 18): enterprises register themselves, operators wait for their legal person, and an
-- initial password must be changed at the first login.
--
-- `users.status` gains `pending` and `users` gains `must_change_password`. SQLite cannot change a CHECK in
-- place, so the table is rebuilt by the documented procedure (https://sqlite.org/lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"): the runner turns foreign keys off around this migration
-- and runs `PRAGMA foreign_key_check` before it commits (`db::migrations`). Every row keeps its id, so the
-- tables that reference `users(id)` (sessions, devices, audit subjects, …) still point at the same people.
-- No trigger or view names `users` (the triggers of 0020 are on instructions, record_seals and
-- instruction_officers; those of 0001 on audit_log), so only the two indexes are made again.
CREATE TABLE users_v22 (
    id                    INTEGER PRIMARY KEY,
    username              TEXT NOT NULL UNIQUE,
    display_name          TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    role                  TEXT NOT NULL,
    unit_id               INTEGER REFERENCES customs_units(id),
    enterprise_id         INTEGER REFERENCES enterprises(id),
    -- `pending`: an operator its legal person has not confirmed yet, or the legal person of an enterprise
    -- whose registration an administrator has not approved yet.
    status                TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('pending', 'active', 'frozen', 'lost')),
    valid_until           INTEGER,
    signing_key           BLOB CHECK (signing_key IS NULL OR length(signing_key) = 32),
    created_at            INTEGER NOT NULL,
    -- Set when someone else chose the password (an operator's initial password): the first login may
    -- only change it.
    must_change_password  INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    CHECK ((enterprise_id IS NULL) <> (unit_id IS NULL))
);
INSERT INTO users_v22 (id, username, display_name, password_hash, role, unit_id, enterprise_id, status,
                       valid_until, signing_key, created_at)
    SELECT id, username, display_name, password_hash, role, unit_id, enterprise_id, status,
           valid_until, signing_key, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_v22 RENAME TO users;
CREATE INDEX users_enterprise ON users(enterprise_id);
CREATE INDEX users_unit ON users(unit_id);

-- An enterprise's own registration. The enterprise row exists from the start (receipts and the legal
-- person's account hang on it) but does nothing until approved: its only account is the pending legal
-- person, who can read and amend the registration and nothing else.
CREATE TABLE enterprise_registrations (
    id             INTEGER PRIMARY KEY,
    enterprise_id  INTEGER NOT NULL UNIQUE REFERENCES enterprises(id),
    legal_user_id  INTEGER NOT NULL REFERENCES users(id),
    legal_person   TEXT NOT NULL,
    contact_name   TEXT NOT NULL,
    contact_phone  TEXT NOT NULL,
    contact_email  TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'returned')),
    opinion        TEXT,
    -- The client address it came from (`ClientAddr`): registrations per address are limited.
    client_addr    TEXT NOT NULL,
    submitted_at   INTEGER NOT NULL,
    decided_by     INTEGER REFERENCES users(id),
    decided_at     INTEGER
);
CREATE INDEX enterprise_registrations_state ON enterprise_registrations(state, id);
CREATE INDEX enterprise_registrations_client ON enterprise_registrations(client_addr, submitted_at);
