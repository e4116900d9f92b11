-- Issue 13/16 finish. Numbered 24: the numbers between are other branches'.

-- Which districts have instructions at which site, so monitoring can apply the one supervisor rule
-- (an instruction is in scope when its district OR its site lies in the caller's subtree) without
-- scanning by site: a site's supervisor reads these few pairs, then the districts' instructions through
-- the indexes that lead with the district. Kept by triggers, like the day tallies; never shrinks (a
-- pair whose instructions are gone only adds a district that contributes nothing).
CREATE TABLE site_districts (
    site_id  INTEGER NOT NULL,
    unit_id  INTEGER NOT NULL,
    PRIMARY KEY (site_id, unit_id)
) STRICT, WITHOUT ROWID;

INSERT OR IGNORE INTO site_districts (site_id, unit_id) SELECT DISTINCT site_id, unit_id FROM instructions;

CREATE TRIGGER site_districts_insert AFTER INSERT ON instructions BEGIN
    INSERT OR IGNORE INTO site_districts (site_id, unit_id) VALUES (NEW.site_id, NEW.unit_id);
END;

CREATE TRIGGER site_districts_update AFTER UPDATE OF site_id, unit_id ON instructions BEGIN
    INSERT OR IGNORE INTO site_districts (site_id, unit_id) VALUES (NEW.site_id, NEW.unit_id);
END;

-- How far from its site a photo may be taken before the handheld warns (metres); null = the server's
-- default (`monitoring.far_from_site_km`). Written into each record with the site's position.
ALTER TABLE site_locations ADD COLUMN radius_m REAL CHECK (radius_m IS NULL OR radius_m > 0);

-- What each handheld last said it still holds unsent (issue 13): reported with each batch sync (or in
-- the WebSocket peer metadata), stored with the time it was said. Null = never reported (older client).
ALTER TABLE devices ADD COLUMN pending_changes INTEGER CHECK (pending_changes IS NULL OR pending_changes >= 0);
ALTER TABLE devices ADD COLUMN pending_photos INTEGER CHECK (pending_photos IS NULL OR pending_photos >= 0);
ALTER TABLE devices ADD COLUMN pending_reported_at INTEGER;
