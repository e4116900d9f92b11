-- Supporting documents (issue 18): files an enterprise attaches to an application or a certificate
-- application. The bytes live under the data dir, named by SHA-256 like photos; a row is written only after
-- its file is durable.
CREATE TABLE documents (
    sha256       TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    size         INTEGER NOT NULL,
    format       TEXT NOT NULL CHECK (format IN ('pdf', 'jpeg', 'png')),
    -- A PDF's page count; NULL for images.
    pages        INTEGER,
    stored_by    INTEGER NOT NULL REFERENCES users(id),
    stored_at    INTEGER NOT NULL
);

-- One file attached to one subject as one kind of paper. Never deleted: a file sent again after a reviewer
-- asked for it is a new row that names the one it replaces, so the history keeps both.
CREATE TABLE document_attachments (
    id             INTEGER PRIMARY KEY,
    subject        TEXT NOT NULL CHECK (subject IN ('application', 'certificate')),
    subject_id     INTEGER NOT NULL,
    enterprise_id  INTEGER NOT NULL REFERENCES enterprises(id),
    kind           TEXT NOT NULL CHECK (kind IN ('contract', 'invoice', 'packing_list', 'producer_qualification',
                                                 'treatment_record', 'other')),
    sha256         TEXT NOT NULL REFERENCES documents(sha256),
    file_name      TEXT,
    replaces       INTEGER REFERENCES document_attachments(id),
    attached_by    INTEGER NOT NULL REFERENCES users(id),
    attached_at    INTEGER NOT NULL
);
CREATE INDEX document_attachments_subject ON document_attachments(subject, subject_id, id);
-- A file is replaced at most once: the second answer to the same request is refused, not forked.
CREATE UNIQUE INDEX document_attachments_replaces ON document_attachments(replaces) WHERE replaces IS NOT NULL;

-- A reviewer's "send this again" (an opinion naming the attachment); answered when the replacement arrives.
CREATE TABLE document_requests (
    id              INTEGER PRIMARY KEY,
    attachment_id   INTEGER NOT NULL REFERENCES document_attachments(id),
    opinion         TEXT NOT NULL,
    requested_by    INTEGER NOT NULL REFERENCES users(id),
    requested_at    INTEGER NOT NULL,
    answered_by     INTEGER REFERENCES document_attachments(id),
    answered_at     INTEGER
);
CREATE INDEX document_requests_open ON document_requests(attachment_id) WHERE answered_by IS NULL;
