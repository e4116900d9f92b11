-- Inspection slot booking (flow step 5): calendars per site, bookings, per-slot capacity, no-shows.
-- Every time column holds Unix milliseconds, UTC; local wall times are derived from the site's zone.

-- One calendar per inspection site. `hours` is JSON: weekday (mon..sun) -> ["09:00-12:00", ...] in the
-- site's zone; a missing weekday is closed.
CREATE TABLE slot_calendars (
    site_id       INTEGER PRIMARY KEY REFERENCES customs_units(id),
    slot_minutes  INTEGER NOT NULL CHECK (slot_minutes BETWEEN 5 AND 720),
    capacity      INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    hours         TEXT NOT NULL,
    -- 1: a request with free capacity is confirmed at once; 0: it holds its place until customs decides.
    auto_confirm  INTEGER NOT NULL CHECK (auto_confirm IN (0, 1)),
    updated_by    TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Holidays and other closures, as local dates (YYYY-MM-DD) of the site.
CREATE TABLE closed_days (
    site_id  INTEGER NOT NULL REFERENCES customs_units(id),
    day      TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    reason   TEXT NOT NULL,
    PRIMARY KEY (site_id, day)
);

-- Capacity accounting: one row per slot that has ever been asked for. Requested and confirmed bookings
-- both hold a place; the row is bumped inside the booking's write transaction, and the CHECK is the last
-- line of defence should any code path forget the `used < capacity` guard.
CREATE TABLE slot_usage (
    site_id    INTEGER NOT NULL REFERENCES customs_units(id),
    starts_at  INTEGER NOT NULL,
    used       INTEGER NOT NULL,
    capacity   INTEGER NOT NULL,
    PRIMARY KEY (site_id, starts_at),
    CHECK (used >= 0 AND used <= capacity)
) WITHOUT ROWID;

CREATE TABLE bookings (
    id              INTEGER PRIMARY KEY,
    instruction_id  INTEGER NOT NULL REFERENCES instructions(id),
    enterprise_id   INTEGER NOT NULL REFERENCES enterprises(id),
    site_id         INTEGER NOT NULL REFERENCES customs_units(id),
    starts_at       INTEGER NOT NULL,
    ends_at         INTEGER NOT NULL,
    state           TEXT NOT NULL
                    CHECK (state IN ('requested', 'confirmed', 'declined', 'cancelled', 'no_show')),
    requested_by    INTEGER NOT NULL REFERENCES users(id),
    -- Customs' feedback on a decline, or the recorded reason of a cancel or reschedule.
    feedback        TEXT,
    -- JSON array of slot starts (ms) customs proposed when declining.
    alternatives    TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CHECK (ends_at > starts_at)
);
-- At most one live booking per instruction.
CREATE UNIQUE INDEX bookings_live_instruction ON bookings(instruction_id) WHERE state IN ('requested', 'confirmed');
CREATE INDEX bookings_enterprise ON bookings(enterprise_id, id);
CREATE INDEX bookings_site_time ON bookings(site_id, starts_at);

-- Late cancels and missed slots; counted over a window to limit new bookings.
CREATE TABLE no_shows (
    id             INTEGER PRIMARY KEY,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    booking_id     INTEGER NOT NULL REFERENCES bookings(id),
    kind           TEXT NOT NULL CHECK (kind IN ('late_cancel', 'missed')),
    at             INTEGER NOT NULL
);
CREATE INDEX no_shows_enterprise ON no_shows(enterprise_id, at);
