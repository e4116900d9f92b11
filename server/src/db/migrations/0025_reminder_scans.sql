-- The reminder sweep runs once a minute in the writer. Its deadline query read the whole instructions
-- table (a heaptrack run at 4,000 records found the sweep holding 17 MiB of the writer's page cache, and
-- the writer waits for it): these partial indexes hold only the rows a sweep can remind of, by the time
-- it compares. The WHERE clauses repeat the sweep's own, which is what lets SQLite use them.
CREATE INDEX instructions_deadline_open ON instructions(deadline)
    WHERE state IN ('issued', 'booked', 'assigned', 'in_progress');
CREATE INDEX bookings_confirmed_start ON bookings(starts_at) WHERE state = 'confirmed';
