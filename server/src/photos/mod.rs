//! Photo evidence: content-addressed, checked photos with their EXIF facts and upright thumbnails.
//!
//! Record documents hold only a photo's SHA-256 (and caption, check item, time, place); the bytes arrive
//! here separately, often much later and over bad links, so an upload is idempotent by hash and can be
//! resumed. A photo is accepted only if its bytes hash to its name, it is a JPEG, PNG or WebP that decodes
//! within the limits, and its EXIF block (if any) can be read. Who may see it follows the instructions it
//! is linked to.
//!
//! The seam with record sync: [`store::is_present`] tells the record projection whether a referenced photo
//! has arrived; [`store::link`] links a photo to a further instruction that references it.
//!
//! - [`inspect`]: format sniffing, decoding under limits, EXIF.
//! - [`thumbnail`]: upright 320 px thumbnails.
//! - [`store`]: files under the data dir and the SQL.
//! - [`error`]: `PhotoError` (a step refused) and `IngestError` (a file that is no photo), mapped to HTTP in
//!   `crate::error`.
//! - [`upload`]: resumable upload sessions: open (or resume, or already complete) and whose they are.
//! - [`http`]: the upload, resumable-upload and read endpoints (the bytes, offsets and locks).

pub mod error;
pub mod http;
pub mod inspect;
pub mod store;
pub mod thumbnail;
pub mod upload;

use std::{fmt, path::Path};

use crate::db::{Conn, Tx};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    audit::{self, Actor},
    config::PhotoSettings,
    domain::{Principal, Role},
    instructions,
};
pub use error::IngestError;
use error::PhotoError;
use inspect::{PhotoFormat, Refusal};
use store::{NewPhoto, PhotoFiles};

/// A SHA-256 as 64 lowercase hex digits: a photo's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Accepts 64 hex digits in either case; the name is kept in lowercase.
    pub fn parse(s: &str) -> Result<Sha256Hex, PhotoError> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256Hex(s.to_ascii_lowercase()))
        } else {
            Err(PhotoError::InvalidSha256)
        }
    }

    pub fn of(bytes: &[u8]) -> Sha256Hex {
        Sha256Hex(hex::encode(Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two shard folder names: the first and second byte of the hash.
    fn shards(&self) -> (&str, &str) {
        (&self.0[0..2], &self.0[2..4])
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored photo's metadata, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Photo {
    pub sha256: String,
    /// Bytes of the original.
    pub size: i64,
    /// `jpeg`, `png` or `webp`.
    pub format: &'static str,
    pub content_type: &'static str,
    /// Of the stored pixels, before the EXIF orientation is applied.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1–8 (6: turn 90° clockwise to show upright; 3: turn 180°).
    pub orientation: Option<u8>,
    /// EXIF `DateTimeOriginal`: the camera's local time `YYYY-MM-DDTHH:MM:SS`, with `±HH:MM` only when the
    /// camera recorded its offset.
    pub captured_at: Option<String>,
    /// EXIF GPS position in decimal degrees (south and west negative).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub make: Option<String>,
    pub model: Option<String>,
    #[serde(with = "crate::domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: i64,
}

/// The instruction an officer uploads for: assigned to them and still open for evidence. Anything else
/// answers 404 so an officer learns nothing about instructions that are not theirs.
pub fn check_upload(c: &Conn, caller: &Principal, instruction_id: i64) -> Result<(), PhotoError> {
    let assigned = crate::db::scope::is_assigned(c, instruction_id, caller.user_id)?;
    if caller.role != Role::Officer || !assigned {
        return Err(PhotoError::NotAssigned);
    }
    let i = instructions::get(c, instruction_id)?.ok_or(PhotoError::NotFound("the instruction"))?;
    if instructions::machine::is_sealed(i.state) {
        return Err(PhotoError::InstructionClosed(i.state));
    }
    Ok(())
}

/// The photo, if the caller may see it: an admin always; a supervisor when a linked instruction belongs
/// to their unit's subtree; an officer when assigned to a linked instruction. Anyone else, enterprises
/// included, gets the same 404 as for a photo that does not exist.
pub fn readable(c: &Conn, caller: &Principal, sha: &Sha256Hex) -> Result<Photo, PhotoError> {
    let not_found = PhotoError::NotFound("the photo");
    let Some(photo) = store::get(c, sha.as_str())? else { return Err(not_found) };
    let allowed = match caller.role {
        Role::Admin => true,
        Role::Supervisor => {
            let unit = caller.unit()?;
            let mut any = false;
            for id in store::links(c, sha.as_str())? {
                if crate::db::scope::instruction_in_subtree_of(c, unit, id)? {
                    any = true;
                    break;
                }
            }
            any
        }
        Role::Officer => store::linked_for_officer(c, sha.as_str(), caller.user_id)?,
        _ => false,
    };
    if allowed { Ok(photo) } else { Err(not_found) }
}

/// What the blocking part of an upload decided.
pub enum Checked {
    /// New bytes, now durable in their place; the row is still to be written.
    Stored(NewPhoto),
    /// The photo was stored before; the received copy was dropped.
    AlreadyStored,
}

/// The blocking part of accepting a received file `from` as the photo `sha`: hash, inspect, thumbnail, and
/// move the file into its place. `known` says the photo is stored already, so only the hash is checked.
/// The received file is gone afterwards, whatever the outcome.
pub fn check_and_place(
    files: &PhotoFiles,
    settings: &PhotoSettings,
    from: &Path,
    sha: &Sha256Hex,
    declared: Option<PhotoFormat>,
    known: bool,
) -> Result<Checked, IngestError> {
    let outcome = check_and_place_inner(files, settings, from, sha, declared, known);
    if !matches!(outcome, Ok(Checked::Stored(_))) {
        let _ = std::fs::remove_file(from);
    }
    outcome
}

fn check_and_place_inner(
    files: &PhotoFiles,
    settings: &PhotoSettings,
    from: &Path,
    sha: &Sha256Hex,
    declared: Option<PhotoFormat>,
    known: bool,
) -> Result<Checked, IngestError> {
    let bytes = std::fs::read(from)?;
    let actual = Sha256Hex::of(&bytes);
    if &actual != sha {
        return Err(IngestError::HashMismatch { expected: sha.to_string(), actual: actual.to_string() });
    }
    if known {
        // Same hash, same bytes: they passed every check when first stored. What this client says they
        // are is new, and a wrong declaration is refused as it would be for a new photo.
        inspect::sniff_as_declared(&bytes, declared)?;
        return Ok(Checked::AlreadyStored);
    }
    // Decoders are third-party code fed hostile bytes: a panic in one must refuse the file, not take a
    // worker down with a 500.
    let inspected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        inspect::inspect(&bytes, declared, settings)
    }))
    .unwrap_or_else(|_| Err(Refusal::Corrupt("the decoder failed on this file".into())))?;
    let thumb = thumbnail::make(&inspected.image, inspected.exif.orientation, settings.thumbnail_edge)
        .map_err(|e| Refusal::Corrupt(e.to_string()))?;
    files.publish(from, sha)?;
    files.write_thumbnail(sha, &thumb)?;
    Ok(Checked::Stored(NewPhoto {
        sha256: sha.clone(),
        size: bytes.len() as u64,
        format: inspected.format,
        width: inspected.width,
        height: inspected.height,
        exif: inspected.exif,
    }))
}

/// Records the outcome in one transaction: the photo row (if new), the link to the instruction, and the
/// audit entry. Answers the photo and whether this call created it.
pub fn record(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    instruction_id: i64,
    sha: &Sha256Hex,
    checked: Option<&NewPhoto>,
) -> Result<(Photo, bool), PhotoError> {
    check_upload(tx, caller, instruction_id)?;
    let created = match checked {
        Some(p) => store::insert(tx, p, caller.user_id, now)?,
        None => false,
    };
    let linked = store::link(tx, sha.as_str(), instruction_id, caller.user_id, now)?;
    if created || linked {
        let action = if created { audit::Action::PhotoStore } else { audit::Action::PhotoLink };
        audit::append(
            tx,
            now,
            &Actor::User(caller.user_id),
            action,
            &audit::Subject::Photo(sha.as_str()),
            json!({"instruction": instruction_id}),
        )?;
    }
    let photo = store::get(tx, sha.as_str())?
        .ok_or_else(|| PhotoError::Internal(anyhow::anyhow!("photo {sha} vanished while being recorded")))?;
    Ok((photo, created))
}

/// Makes the thumbnail of a stored photo again (the cache was cleared, or a file predates it).
pub fn remake_thumbnail(
    files: &PhotoFiles,
    settings: &PhotoSettings,
    sha: &Sha256Hex,
) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(files.original(sha))?;
    let inspected =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inspect::inspect(&bytes, None, settings)))
            .map_err(|_| anyhow::anyhow!("decoder panicked on stored photo {sha}"))??;
    let thumb = thumbnail::make(&inspected.image, inspected.exif.orientation, settings.thumbnail_edge)?;
    files.write_thumbnail(sha, &thumb)?;
    Ok(thumb)
}
