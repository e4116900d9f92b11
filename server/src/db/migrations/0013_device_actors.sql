-- One automerge actor per registration of a device (issue 14). Registering a handheld store again under
-- a device id already in use (`POST /api/v1/devices/{id}/claim`) issues the device a new actor and
-- retires the old one: two stores writing as one actor would each number their changes from the same
-- sequence, and automerge cannot merge two different changes with one (actor, seq). A retired actor's
-- changes already stored stay attributed to the device's officer; new ones are refused.
CREATE TABLE device_actors (
    actor_id    TEXT PRIMARY KEY,           -- 32 hex digits
    device_id   TEXT NOT NULL REFERENCES devices(id),
    issued_at   INTEGER NOT NULL,
    retired_at  INTEGER                     -- NULL for the device's current actor (devices.actor_id)
);
CREATE INDEX device_actors_device ON device_actors(device_id);
CREATE UNIQUE INDEX device_actors_current ON device_actors(device_id) WHERE retired_at IS NULL;

INSERT INTO device_actors (actor_id, device_id, issued_at) SELECT actor_id, id, registered_at FROM devices;
