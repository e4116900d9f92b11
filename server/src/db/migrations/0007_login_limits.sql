-- Password-login limits (issue 9): failures per client address and per (client address, account).
-- An attempt is counted here before its password is checked, in the transaction that reads the count, so
-- parallel guesses cannot overrun the limit. The audit-log index of 0003 stays for reading the log.
CREATE TABLE login_limits (
    -- 'addr:<address>' or 'addr:<address> user:<id>' / 'addr:<address> username:<digest>'
    key       TEXT PRIMARY KEY,
    -- Attempts counted and not taken back by a success.
    failures  INTEGER NOT NULL CHECK (failures >= 0),
    -- No attempt starts before this (Unix ms); the row is forgotten auth.login_forget_after_secs after it.
    next_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_limits_next_at ON login_limits(next_at);
