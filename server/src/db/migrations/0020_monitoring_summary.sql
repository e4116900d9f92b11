-- Monitoring figures without reading every instruction (issue 13). Numbered 20: the numbers between are
-- other branches'.
--
-- `instruction_day_counts` holds, per district unit, site, UTC day of creation and current state, how many
-- instructions there are, and of the approved ones how many were approved by their deadline and how many
-- were sealed non-conforming. Triggers keep it: they run inside the statement that changes an instruction
-- (so in the same transaction as the state change, its receipt and its audit entry), and they see every
-- writer — the workflow, the demo loader, test fixtures — so the table cannot drift from the rows. The
-- figure query reads whole days here and only the partial days at a period's edges from `instructions`.

CREATE TABLE instruction_day_counts (
    unit_id         INTEGER NOT NULL,
    site_id         INTEGER NOT NULL,
    day             INTEGER NOT NULL,   -- created_at / 86 400 000, rounded down (UTC days since 1970)
    state           TEXT NOT NULL,
    instructions    INTEGER NOT NULL,
    on_time         INTEGER NOT NULL,   -- approved with state_since <= deadline
    non_conforming  INTEGER NOT NULL,   -- approved, sealed with a non-conforming verdict
    PRIMARY KEY (unit_id, day, site_id, state)
) STRICT, WITHOUT ROWID;

-- One instruction's contribution, as the triggers add and take it away. `floor` division: created_at is
-- never negative in practice, but a day index must not round towards zero for times before 1970.
CREATE TRIGGER instruction_day_counts_insert AFTER INSERT ON instructions BEGIN
    INSERT INTO instruction_day_counts (unit_id, site_id, day, state, instructions, on_time, non_conforming)
    VALUES (NEW.unit_id, NEW.site_id, (NEW.created_at - ((NEW.created_at % 86400000) + 86400000) % 86400000) / 86400000,
            NEW.state, 1,
            NEW.state = 'approved' AND coalesce(NEW.state_since, NEW.created_at) <= NEW.deadline,
            NEW.state = 'approved' AND EXISTS (SELECT 1 FROM record_seals s
                                               WHERE s.instruction_id = NEW.id AND s.verdict = 'non_conforming'))
    ON CONFLICT (unit_id, day, site_id, state) DO UPDATE SET
        instructions = instructions + excluded.instructions,
        on_time = on_time + excluded.on_time,
        non_conforming = non_conforming + excluded.non_conforming;
END;

CREATE TRIGGER instruction_day_counts_update
AFTER UPDATE OF unit_id, site_id, created_at, state, deadline, state_since ON instructions BEGIN
    UPDATE instruction_day_counts SET
        instructions = instructions - 1,
        on_time = on_time - (OLD.state = 'approved' AND coalesce(OLD.state_since, OLD.created_at) <= OLD.deadline),
        non_conforming = non_conforming - (OLD.state = 'approved' AND EXISTS (
            SELECT 1 FROM record_seals s WHERE s.instruction_id = OLD.id AND s.verdict = 'non_conforming'))
    WHERE unit_id = OLD.unit_id AND site_id = OLD.site_id AND state = OLD.state
      AND day = (OLD.created_at - ((OLD.created_at % 86400000) + 86400000) % 86400000) / 86400000;
    INSERT INTO instruction_day_counts (unit_id, site_id, day, state, instructions, on_time, non_conforming)
    VALUES (NEW.unit_id, NEW.site_id, (NEW.created_at - ((NEW.created_at % 86400000) + 86400000) % 86400000) / 86400000,
            NEW.state, 1,
            NEW.state = 'approved' AND coalesce(NEW.state_since, NEW.created_at) <= NEW.deadline,
            NEW.state = 'approved' AND EXISTS (SELECT 1 FROM record_seals s
                                               WHERE s.instruction_id = NEW.id AND s.verdict = 'non_conforming'))
    ON CONFLICT (unit_id, day, site_id, state) DO UPDATE SET
        instructions = instructions + excluded.instructions,
        on_time = on_time + excluded.on_time,
        non_conforming = non_conforming + excluded.non_conforming;
END;

CREATE TRIGGER instruction_day_counts_delete AFTER DELETE ON instructions BEGIN
    UPDATE instruction_day_counts SET
        instructions = instructions - 1,
        on_time = on_time - (OLD.state = 'approved' AND coalesce(OLD.state_since, OLD.created_at) <= OLD.deadline),
        non_conforming = non_conforming - (OLD.state = 'approved' AND EXISTS (
            SELECT 1 FROM record_seals s WHERE s.instruction_id = OLD.id AND s.verdict = 'non_conforming'))
    WHERE unit_id = OLD.unit_id AND site_id = OLD.site_id AND state = OLD.state
      AND day = (OLD.created_at - ((OLD.created_at % 86400000) + 86400000) % 86400000) / 86400000;
END;

-- The workflow seals a record before it moves the instruction to `approved` (the update above then sees
-- the verdict); a seal written after the state (fixtures, imports) is counted here instead. Never both:
-- this one only counts instructions already approved.
CREATE TRIGGER instruction_day_counts_seal AFTER INSERT ON record_seals
WHEN NEW.verdict = 'non_conforming' BEGIN
    UPDATE instruction_day_counts SET non_conforming = non_conforming + 1
    WHERE (unit_id, site_id, day, state) =
          (SELECT i.unit_id, i.site_id,
                  (i.created_at - ((i.created_at % 86400000) + 86400000) % 86400000) / 86400000, i.state
           FROM instructions i WHERE i.id = NEW.instruction_id AND i.state = 'approved');
END;

INSERT INTO instruction_day_counts (unit_id, site_id, day, state, instructions, on_time, non_conforming)
SELECT i.unit_id, i.site_id, (i.created_at - ((i.created_at % 86400000) + 86400000) % 86400000) / 86400000,
       i.state, count(*),
       sum(i.state = 'approved' AND coalesce(i.state_since, i.created_at) <= i.deadline),
       sum(i.state = 'approved' AND EXISTS (SELECT 1 FROM record_seals s
                                           WHERE s.instruction_id = i.id AND s.verdict = 'non_conforming'))
FROM instructions i GROUP BY 1, 2, 3, 4;

-- The same per officer: each assigned officer's instructions per district unit, UTC day of creation and
-- current state, for the officers' workload. Kept by the assignment triggers and by the instruction
-- triggers below (an instruction changing state moves every one of its officers' counts).
CREATE TABLE officer_day_counts (
    officer_id    INTEGER NOT NULL,
    unit_id       INTEGER NOT NULL,
    day           INTEGER NOT NULL,
    state         TEXT NOT NULL,
    instructions  INTEGER NOT NULL,
    PRIMARY KEY (unit_id, day, officer_id, state)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER officer_day_counts_assign AFTER INSERT ON instruction_officers BEGIN
    INSERT INTO officer_day_counts (officer_id, unit_id, day, state, instructions)
    SELECT NEW.officer_id, i.unit_id, (i.created_at - ((i.created_at % 86400000) + 86400000) % 86400000) / 86400000,
           i.state, 1
    FROM instructions i WHERE i.id = NEW.instruction_id
    ON CONFLICT (unit_id, day, officer_id, state) DO UPDATE SET instructions = instructions + 1;
END;

CREATE TRIGGER officer_day_counts_unassign AFTER DELETE ON instruction_officers BEGIN
    UPDATE officer_day_counts SET instructions = instructions - 1
    WHERE (officer_id, unit_id, day, state) =
          (SELECT OLD.officer_id, i.unit_id,
                  (i.created_at - ((i.created_at % 86400000) + 86400000) % 86400000) / 86400000, i.state
           FROM instructions i WHERE i.id = OLD.instruction_id);
END;

CREATE TRIGGER officer_day_counts_instruction AFTER UPDATE OF unit_id, created_at, state ON instructions BEGIN
    UPDATE officer_day_counts SET instructions = instructions - 1
    WHERE unit_id = OLD.unit_id AND state = OLD.state
      AND day = (OLD.created_at - ((OLD.created_at % 86400000) + 86400000) % 86400000) / 86400000
      AND officer_id IN (SELECT o.officer_id FROM instruction_officers o WHERE o.instruction_id = OLD.id);
    INSERT INTO officer_day_counts (officer_id, unit_id, day, state, instructions)
    SELECT o.officer_id, NEW.unit_id,
           (NEW.created_at - ((NEW.created_at % 86400000) + 86400000) % 86400000) / 86400000, NEW.state, 1
    FROM instruction_officers o WHERE o.instruction_id = NEW.id
    ON CONFLICT (unit_id, day, officer_id, state) DO UPDATE SET instructions = instructions + 1;
END;

INSERT INTO officer_day_counts (officer_id, unit_id, day, state, instructions)
SELECT o.officer_id, i.unit_id, (i.created_at - ((i.created_at % 86400000) + 86400000) % 86400000) / 86400000,
       i.state, count(*)
FROM instruction_officers o JOIN instructions i ON i.id = o.instruction_id GROUP BY 1, 2, 3, 4;

-- Issue → approved durations (median, p90) need the approved rows themselves; this covers that read.
CREATE INDEX instructions_approved ON instructions(unit_id, created_at, site_id, state_since)
    WHERE state = 'approved';

-- Overdue rules look only at open work (and at approved work awaiting disposal, found from the
-- application side): this covers the open part, a small share of all instructions.
CREATE INDEX instructions_open ON instructions(unit_id, created_at, site_id, state, deadline, due_at, state_since)
    WHERE state IN ('issued', 'booked', 'assigned', 'in_progress', 'submitted');
