-- Supervisor monitoring (issue 13). Numbered 12: the numbers between are other branches'.

-- When an instruction entered its current state: approval time (issue → approved), how long a result
-- has waited for approval. Rows older than this migration take their last update, the best we know.
ALTER TABLE instructions ADD COLUMN state_since INTEGER;
UPDATE instructions SET state_since = updated_at;

-- Figures read the instructions of some units created in a period: this index covers that read, so a
-- figure query never touches the table rows (checklists are large).
CREATE INDEX instructions_monitoring
    ON instructions(unit_id, created_at, site_id, state, deadline, due_at, state_since);

-- Where a site is, to flag evidence photographed elsewhere. Optional: sites without a row are not checked.
CREATE TABLE site_locations (
    unit_id    INTEGER PRIMARY KEY REFERENCES customs_units(id),
    latitude   REAL NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude  REAL NOT NULL CHECK (longitude BETWEEN -180 AND 180)
) STRICT;
