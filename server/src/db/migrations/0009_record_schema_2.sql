-- Record schema 2 (issue 10): signatures over the content, notes as entries, withdrawn photos.

-- The record schema a record document was last written in; the server upgrades older ones at start
-- (records::upgrade_documents). Index documents keep NULL.
ALTER TABLE sync_docs ADD COLUMN schema INTEGER;
UPDATE sync_docs SET schema = 1 WHERE kind = 'record';

-- Every assigned officer has signed the record's current content (what "ready" needs beside results,
-- verdict, conflicts and photos).
ALTER TABLE record_projection ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
-- What is still missing before submission, in the officers' words (JSON array of strings).
ALTER TABLE record_projection ADD COLUMN missing TEXT NOT NULL DEFAULT '[]';

-- A withdrawn photo stays listed (it is in the record's history) but is no longer awaited.
ALTER TABLE record_photos ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;
