//! The tables of supporting documents: files (`documents`), attachments and "send again" requests.

use crate::db::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Attachment, DocFormat, DocRequest, DocumentKind, Inspected, Subject, Upload};

/// Records a checked file; nothing when it is stored already (the same bytes, by definition).
pub fn insert_document(
    c: &Connection,
    sha: &str,
    size: u64,
    inspected: Inspected,
    user_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO documents (sha256, size, format, pages, stored_by, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (sha256) DO NOTHING",
        params![sha, size as i64, inspected.format.as_str(), inspected.pages, user_id, now],
    )?;
    Ok(())
}

pub fn is_present(c: &Connection, sha: &str) -> Result<bool, StoreError> {
    Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM documents WHERE sha256 = ?1)", [sha], |r| r.get(0))?)
}

pub fn insert_attachment(
    c: &Connection,
    u: &Upload<'_>,
    enterprise_id: i64,
    user_id: i64,
    now: i64,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO document_attachments (subject, subject_id, enterprise_id, kind, sha256, file_name, replaces,
                                           attached_by, attached_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            u.subject.as_str(),
            u.subject_id,
            enterprise_id,
            u.kind.as_str(),
            u.sha.as_str(),
            u.file_name,
            u.replaces,
            user_id,
            now
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// The current (not replaced) attachment of these bytes as this kind, if any: attaching it again is a no-op.
pub fn same_file(
    c: &Connection,
    subject: Subject,
    subject_id: i64,
    kind: DocumentKind,
    sha: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(c.query_row(
        "SELECT a.id FROM document_attachments a
         WHERE a.subject = ?1 AND a.subject_id = ?2 AND a.kind = ?3 AND a.sha256 = ?4
           AND NOT EXISTS (SELECT 1 FROM document_attachments r WHERE r.replaces = a.id)
         ORDER BY a.id LIMIT 1",
        params![subject.as_str(), subject_id, kind.as_str(), sha],
        |r| r.get(0),
    )
    .optional()?)
}

const ATTACHMENT_COLS: &str = "a.id, a.subject, a.subject_id, a.kind, a.sha256, d.format, d.size, d.pages,
    a.file_name, a.replaces, (SELECT r.id FROM document_attachments r WHERE r.replaces = a.id), a.attached_by,
    a.attached_at";

fn attachment_row(r: &Row<'_>) -> rusqlite::Result<Attachment> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_owned().into())
    };
    let subject: String = r.get(1)?;
    let kind: String = r.get(3)?;
    let format: String = r.get(5)?;
    let format = DocFormat::parse(&format).ok_or_else(|| bad(5, "document format"))?;
    Ok(Attachment {
        id: r.get(0)?,
        subject: Subject::parse(&subject).ok_or_else(|| bad(1, "document subject"))?,
        subject_id: r.get(2)?,
        kind: DocumentKind::parse(&kind).ok_or_else(|| bad(3, "document kind"))?,
        sha256: r.get(4)?,
        format,
        content_type: format.content_type(),
        size: r.get(6)?,
        pages: r.get(7)?,
        file_name: r.get(8)?,
        replaces: r.get(9)?,
        replaced_by: r.get(10)?,
        attached_by: r.get(11)?,
        attached_at: r.get(12)?,
        requests: Vec::new(),
    })
}

/// One attachment with its requests.
pub fn attachment(c: &Connection, id: i64) -> Result<Option<Attachment>, StoreError> {
    let found = c
        .query_row(
            &format!(
                "SELECT {ATTACHMENT_COLS} FROM document_attachments a JOIN documents d ON d.sha256 = a.sha256
                 WHERE a.id = ?1"
            ),
            [id],
            attachment_row,
        )
        .optional()?;
    found
        .map(|mut a| {
            a.requests = requests_of(c, a.id)?;
            Ok(a)
        })
        .transpose()
}

/// Every attachment of a subject, replaced ones included, oldest first.
pub fn list(c: &Connection, subject: Subject, subject_id: i64) -> Result<Vec<Attachment>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {ATTACHMENT_COLS} FROM document_attachments a JOIN documents d ON d.sha256 = a.sha256
         WHERE a.subject = ?1 AND a.subject_id = ?2 ORDER BY a.id"
    ))?;
    let mut all = stmt
        .query_map(params![subject.as_str(), subject_id], attachment_row)?
        .collect::<Result<Vec<_>, _>>()?;
    for a in &mut all {
        a.requests = requests_of(c, a.id)?;
    }
    Ok(all)
}

const REQUEST_COLS: &str = "id, attachment_id, opinion, requested_by, requested_at, answered_by, answered_at";

fn request_row(r: &Row<'_>) -> rusqlite::Result<DocRequest> {
    Ok(DocRequest {
        id: r.get(0)?,
        attachment_id: r.get(1)?,
        opinion: r.get(2)?,
        requested_by: r.get(3)?,
        requested_at: r.get(4)?,
        answered_by: r.get(5)?,
        answered_at: r.get(6)?,
    })
}

fn requests_of(c: &Connection, attachment_id: i64) -> rusqlite::Result<Vec<DocRequest>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM document_requests WHERE attachment_id = ?1 ORDER BY id"
    ))?;
    stmt.query_map([attachment_id], request_row)?.collect()
}

pub fn request(c: &Connection, id: i64) -> Result<Option<DocRequest>, StoreError> {
    Ok(c.query_row(&format!("SELECT {REQUEST_COLS} FROM document_requests WHERE id = ?1"), [id], request_row)
        .optional()?)
}

pub fn insert_request(
    c: &Connection,
    attachment_id: i64,
    opinion: &str,
    user_id: i64,
    now: i64,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO document_requests (attachment_id, opinion, requested_by, requested_at) VALUES (?1, ?2, ?3, ?4)",
        params![attachment_id, opinion, user_id, now],
    )?;
    Ok(c.last_insert_rowid())
}

/// Marks the open requests for `old` answered by the attachment `new`; answers how many.
pub fn answer_requests(c: &Connection, old: i64, new: i64, now: i64) -> Result<usize, StoreError> {
    Ok(c.execute(
        "UPDATE document_requests SET answered_by = ?2, answered_at = ?3
         WHERE attachment_id = ?1 AND answered_by IS NULL",
        params![old, new, now],
    )?)
}
