//! Where photos are kept: files under the data dir, rows in SQLite.
//!
//! Files: `photos/ab/cd/<sha256>` (the original, sharded by the first two bytes of its hash so no folder
//! grows past a few thousand entries), `thumbnails/ab/cd/<sha256>.jpg` (a cache that may be deleted at any
//! time), `photos/uploads/<id>` (bytes of resumable uploads so far), `photos/tmp/` (whole uploads being
//! received; emptied at start), and `documents/ab/cd/<sha256>` (supporting documents, the same way: one
//! content-addressed store for every file an inspection rests on).
//!
//! A photo becomes visible only through its `photos` row, and that row is written after the file is
//! durable (temporary file, fsync, rename, fsync of the folder). A killed server therefore leaves at worst
//! an unlisted file, which the next upload of the same bytes replaces, never a listed half-photo.

use std::{
    collections::HashMap,
    fs::{self, File},
    io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use crate::db::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Photo, Sha256Hex, inspect::PhotoFormat};

/// The photo folders of one data dir, and the locks of the resumable uploads in progress.
pub struct PhotoFiles {
    originals: PathBuf,
    /// Supporting documents (`crate::documents`): named and published like originals.
    documents: PathBuf,
    thumbnails: PathBuf,
    uploads: PathBuf,
    tmp: PathBuf,
    /// One async lock per resumable upload: chunks of one upload are written one request at a time, and a
    /// status request waits for a running chunk so the offset it answers is final.
    upload_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PhotoFiles {
    /// Creates the folders under `data_dir` and empties `photos/tmp/` of whatever a killed process left.
    pub fn open(data_dir: &Path) -> io::Result<PhotoFiles> {
        let originals = data_dir.join("photos");
        let files = PhotoFiles {
            thumbnails: data_dir.join("thumbnails"),
            documents: data_dir.join("documents"),
            uploads: originals.join("uploads"),
            tmp: originals.join("tmp"),
            originals,
            upload_locks: Mutex::new(HashMap::new()),
        };
        for dir in [&files.originals, &files.thumbnails, &files.uploads, &files.tmp, &files.documents] {
            fs::create_dir_all(dir)?;
        }
        for entry in fs::read_dir(&files.tmp)? {
            fs::remove_file(entry?.path())?;
        }
        Ok(files)
    }

    pub fn original(&self, sha: &Sha256Hex) -> PathBuf {
        sharded(&self.originals, sha)
    }

    /// Where the supporting document `sha` is kept.
    pub fn document(&self, sha: &Sha256Hex) -> PathBuf {
        sharded(&self.documents, sha)
    }

    pub fn thumbnail(&self, sha: &Sha256Hex) -> PathBuf {
        let (a, b) = sha.shards();
        self.thumbnails.join(a).join(b).join(format!("{}.jpg", sha.as_str()))
    }

    pub fn upload(&self, upload_id: &str) -> PathBuf {
        self.uploads.join(upload_id)
    }

    /// A fresh file name for a whole upload being received.
    pub fn temp(&self) -> PathBuf {
        self.tmp.join(uuid::Uuid::new_v4().to_string())
    }

    /// Moves the fully received, checked file `from` into its place as the original of `sha`, durably:
    /// fsync the file, rename (atomic within one file system), fsync the folders that changed.
    pub fn publish(&self, from: &Path, sha: &Sha256Hex) -> io::Result<()> {
        publish_into(&self.originals, from, sha)
    }

    /// [`publish`](Self::publish) for a checked supporting document.
    pub fn publish_document(&self, from: &Path, sha: &Sha256Hex) -> io::Result<()> {
        publish_into(&self.documents, from, sha)
    }

    /// Writes a thumbnail through a temporary file and a rename, so a reader never sees half of one. No
    /// fsync: a lost thumbnail is made again from the original.
    pub fn write_thumbnail(&self, sha: &Sha256Hex, jpeg: &[u8]) -> io::Result<()> {
        let to = self.thumbnail(sha);
        fs::create_dir_all(to.parent().expect("thumbnails are inside a shard folder"))?;
        let tmp = self.temp();
        fs::write(&tmp, jpeg)?;
        fs::rename(&tmp, &to)
    }

    /// The lock of one resumable upload (see `upload_locks`).
    pub fn upload_lock(&self, upload_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.upload_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(upload_id.to_string()).or_default().clone()
    }

    /// Forgets a finished, cancelled or expired upload: its lock and its bytes.
    pub fn discard_upload(&self, upload_id: &str) {
        self.upload_locks.lock().unwrap_or_else(|p| p.into_inner()).remove(upload_id);
        let _ = fs::remove_file(self.upload(upload_id));
    }
}

/// `root/ab/cd/<sha256>`: sharded by the first two bytes of the hash.
fn sharded(root: &Path, sha: &Sha256Hex) -> PathBuf {
    let (a, b) = sha.shards();
    root.join(a).join(b).join(sha.as_str())
}

/// Moves `from` to its sharded place under `root` durably: fsync the file, rename (atomic within one file
/// system), fsync the folders that changed.
fn publish_into(root: &Path, from: &Path, sha: &Sha256Hex) -> io::Result<()> {
    File::open(from)?.sync_all()?;
    let to = sharded(root, sha);
    let shard = to.parent().expect("files are inside a shard folder");
    if !shard.exists() {
        fs::create_dir_all(shard)?;
        sync_dir(root)?;
        sync_dir(shard.parent().expect("two shard levels"))?;
    }
    fs::rename(from, &to)?;
    sync_dir(shard)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Is the photo with this SHA-256 (64 lowercase hex digits) stored? The record projection asks this to
/// decide whether every photo a record references has arrived.
pub fn is_present(c: &Connection, sha256_hex: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM photos WHERE sha256 = ?1)")?
        .query_row([sha256_hex], |r| r.get(0))
}

/// A checked photo about to be recorded.
pub struct NewPhoto {
    pub sha256: Sha256Hex,
    pub size: u64,
    pub format: PhotoFormat,
    pub width: u32,
    pub height: u32,
    pub exif: super::inspect::ExifFacts,
}

/// Records a photo; `false` when it was there already (the same bytes, by definition).
pub fn insert(c: &Connection, p: &NewPhoto, user_id: i64, now: i64) -> Result<bool, StoreError> {
    let (lat, lon) = p.exif.position.unzip();
    let n = c.execute(
        "INSERT INTO photos (sha256, size, format, width, height, orientation, captured_at, latitude, longitude,
                             make, model, uploaded_by, uploaded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (sha256) DO NOTHING",
        params![
            p.sha256.as_str(),
            p.size as i64,
            p.format.as_str(),
            p.width,
            p.height,
            p.exif.orientation,
            p.exif.captured_at,
            lat,
            lon,
            p.exif.make,
            p.exif.model,
            user_id,
            now
        ],
    )?;
    Ok(n == 1)
}

/// Links a photo to an instruction; `false` when it was linked already.
pub fn link(
    c: &Connection,
    sha: &str,
    instruction_id: i64,
    user_id: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO photo_links (sha256, instruction_id, linked_by, linked_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        params![sha, instruction_id, user_id, now],
    )?;
    Ok(n == 1)
}

/// The instructions a photo is linked to.
pub fn links(c: &Connection, sha: &str) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT instruction_id FROM photo_links WHERE sha256 = ?1 ORDER BY instruction_id")?;
    Ok(stmt.query_map([sha], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
}

/// Is the photo linked to an instruction assigned to `officer`?
pub fn linked_for_officer(c: &Connection, sha: &str, officer: i64) -> Result<bool, StoreError> {
    Ok(c.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM photo_links l WHERE l.sha256 = ?1 AND {})",
            crate::db::scope::instruction_assigned_to("l.instruction_id")
        ),
        params![sha, officer],
        |r| r.get(0),
    )?)
}

pub fn get(c: &Connection, sha: &str) -> Result<Option<Photo>, StoreError> {
    Ok(c.query_row(
        "SELECT sha256, size, format, width, height, orientation, captured_at, latitude, longitude, make, model,
                uploaded_at
         FROM photos WHERE sha256 = ?1",
        [sha],
        photo_row,
    )
    .optional()?)
}

fn photo_row(r: &Row<'_>) -> rusqlite::Result<Photo> {
    let format: String = r.get(2)?;
    let format = PhotoFormat::parse(&format).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, "photo format".into())
    })?;
    let lat: Option<f64> = r.get(7)?;
    let lon: Option<f64> = r.get(8)?;
    Ok(Photo {
        sha256: r.get(0)?,
        size: r.get(1)?,
        format: format.as_str(),
        content_type: format.content_type(),
        width: r.get(3)?,
        height: r.get(4)?,
        orientation: r.get(5)?,
        captured_at: r.get(6)?,
        latitude: lat,
        longitude: lon,
        make: r.get(9)?,
        model: r.get(10)?,
        uploaded_at: r.get(11)?,
    })
}

/// A resumable upload in progress.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub sha256: String,
    pub instruction_id: i64,
    pub user_id: i64,
    pub size: u64,
    pub content_type: Option<String>,
    pub expires_at: i64,
}

const UPLOAD_COLS: &str = "id, sha256, instruction_id, user_id, size, content_type, expires_at";

fn upload_row(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        sha256: r.get(1)?,
        instruction_id: r.get(2)?,
        user_id: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        content_type: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

pub fn insert_upload(c: &Connection, u: &UploadRow, now: i64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO photo_uploads (id, sha256, instruction_id, user_id, size, content_type, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![u.id, u.sha256, u.instruction_id, u.user_id, u.size as i64, u.content_type, now, u.expires_at],
    )?;
    Ok(())
}

pub fn upload(c: &Connection, id: &str) -> Result<Option<UploadRow>, StoreError> {
    Ok(c.query_row(&format!("SELECT {UPLOAD_COLS} FROM photo_uploads WHERE id = ?1"), [id], upload_row)
        .optional()?)
}

/// The caller's unexpired upload of these bytes for this instruction, so that asking again resumes it.
pub fn open_upload(
    c: &Connection,
    user_id: i64,
    sha: &str,
    instruction_id: i64,
    now: i64,
) -> Result<Option<UploadRow>, StoreError> {
    Ok(c.query_row(
        &format!(
            "SELECT {UPLOAD_COLS} FROM photo_uploads
             WHERE user_id = ?1 AND sha256 = ?2 AND instruction_id = ?3 AND expires_at > ?4
             ORDER BY created_at DESC LIMIT 1"
        ),
        params![user_id, sha, instruction_id, now],
        upload_row,
    )
    .optional()?)
}

pub fn delete_upload(c: &Connection, id: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM photo_uploads WHERE id = ?1", [id])?;
    Ok(())
}

/// Deletes expired uploads' rows and answers their ids, whose files the caller removes after the commit.
pub fn expire_uploads(c: &Connection, now: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare_cached("DELETE FROM photo_uploads WHERE expires_at <= ?1 RETURNING id")?;
    Ok(stmt.query_map([now], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
}
