-- Photo evidence (issue 6): content-addressed photos, their links to instructions, resumable uploads.
-- The bytes live in files under the data dir (photos/ab/cd/<sha256>); a row here is what makes a photo
-- visible, and it is written only after its file is durable.

CREATE TABLE photos (
    sha256        TEXT PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size          INTEGER NOT NULL CHECK (size > 0),
    format        TEXT NOT NULL CHECK (format IN ('jpeg', 'png', 'webp')),
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    -- EXIF, as far as the file told it; NULL where it did not.
    orientation   INTEGER CHECK (orientation BETWEEN 1 AND 8),
    -- DateTimeOriginal as written by the camera: local time, with the offset only if OffsetTimeOriginal says it.
    captured_at   TEXT,
    latitude      REAL CHECK (latitude BETWEEN -90 AND 90),
    longitude     REAL CHECK (longitude BETWEEN -180 AND 180),
    make          TEXT,
    model         TEXT,
    uploaded_by   INTEGER NOT NULL REFERENCES users(id),
    uploaded_at   INTEGER NOT NULL
) STRICT;

-- Which instructions a photo was uploaded for (and, later, referenced by); the basis of read access.
CREATE TABLE photo_links (
    sha256          TEXT NOT NULL REFERENCES photos(sha256),
    instruction_id  INTEGER NOT NULL REFERENCES instructions(id),
    linked_by       INTEGER NOT NULL REFERENCES users(id),
    linked_at       INTEGER NOT NULL,
    PRIMARY KEY (sha256, instruction_id)
) STRICT;
CREATE INDEX photo_links_instruction ON photo_links(instruction_id);

-- Resumable uploads in progress; the bytes received so far are the file photos/uploads/<id>.
CREATE TABLE photo_uploads (
    id              TEXT PRIMARY KEY,
    sha256          TEXT NOT NULL,
    instruction_id  INTEGER NOT NULL REFERENCES instructions(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    size            INTEGER NOT NULL CHECK (size > 0),
    -- The image type the client declared, checked against the bytes at the finish.
    content_type    TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX photo_uploads_owner ON photo_uploads(user_id, sha256, instruction_id);
CREATE INDEX photo_uploads_expiry ON photo_uploads(expires_at);
