//! Backups of a data dir while the server runs, and restoring one into a new data dir.
//!
//! A backup is one tar file:
//! - `manifest.json` first: the format, when, and every other member's path, size and SHA-256;
//! - the data dir's files (photos, thumbnails, keys, demo keys), as they are;
//! - the database last, as a consistent snapshot taken with `VACUUM INTO` (one read transaction, so writers
//!   carry on; WAL readers never block them).
//!
//! The database is snapshotted *before* the files are copied: a photo row is written only after its file is
//! on disk, so every photo the snapshot names is already there when the files are read. Restore checks each
//! member against the manifest, writes the database last and checks it (`integrity_check`), so a data dir
//! without a database is a restore that did not finish, never a half-restored one that a server would open.

use std::{
    fs::{self, File},
    io::{self, Read, Write},
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::DB_FILE;

const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;
/// What never goes into a backup: the live database files (the snapshot stands for them), the server's log,
/// and half-written temporary files.
const SKIPPED: &[&str] = &["server.log", "photos/tmp"];

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at_ms: i64,
    files: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    path: String,
    bytes: u64,
    sha256: String,
}

/// What a backup or a restore did.
#[derive(Debug)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
}

/// Writes a backup of `data_dir` to `to` (which must not exist yet), while a server may be running on it.
pub fn backup(data_dir: &Path, to: &Path, now_ms: i64) -> anyhow::Result<Summary> {
    ensure!(!to.exists(), "{} already exists; name a new file", to.display());
    let db_path = data_dir.join(DB_FILE);
    ensure!(db_path.exists(), "{} holds no database ({DB_FILE}); is --data-dir right?", data_dir.display());
    let staging = tempfile::Builder::new()
        .prefix(".fieldcheck-backup-")
        .tempdir_in(to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
        .context("a staging folder beside the backup file")?;

    let snapshot = staging.path().join(DB_FILE);
    crate::db::snapshot(&db_path, &snapshot)?;

    let mut files = Vec::new();
    collect(data_dir, data_dir, &mut files)?;
    let mut members = Vec::new();
    for rel in &files {
        members.push(describe(&data_dir.join(rel), rel)?);
    }
    members.push(describe(&snapshot, DB_FILE)?);
    let manifest = Manifest { format: FORMAT, created_at_ms: now_ms, files: members.clone() };

    let partial = staging.path().join("backup.tar");
    let mut tar = tar::Builder::new(File::create(&partial)?);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_bytes.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest_bytes.as_slice())?;
    for member in &members {
        let source = if member.path == DB_FILE { snapshot.clone() } else { data_dir.join(&member.path) };
        tar.append_path_with_name(&source, &member.path)
            .with_context(|| format!("adding {}", member.path))?;
    }
    let file = tar.into_inner()?;
    file.sync_all()?;
    fs::rename(&partial, to).with_context(|| format!("moving the backup to {}", to.display()))?;
    if let Some(dir) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(Summary { files: members.len(), bytes: members.iter().map(|m| m.bytes).sum() })
}

/// Every file under `dir` (relative to `root`), except the live database and what [`SKIPPED`] names.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root)?.to_str().context("a UTF-8 file name in the data dir")?.to_owned();
        if SKIPPED.contains(&rel.as_str())
            || rel.starts_with(DB_FILE)
            || rel.starts_with(".fieldcheck-backup-")
        {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    out.sort();
    Ok(())
}

fn describe(path: &Path, rel: &str) -> anyhow::Result<Member> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    Ok(Member { path: rel.to_owned(), bytes, sha256: hex::encode(hasher.finalize()) })
}

/// Restores the backup `from` into `data_dir`, which must hold no database yet. Every member is checked
/// against the manifest before it is kept; the database comes last and is checked by SQLite.
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<Summary> {
    ensure!(
        !data_dir.join(DB_FILE).exists(),
        "{} already holds a database; restore into a new data dir",
        data_dir.display()
    );
    fs::create_dir_all(data_dir)?;
    let mut archive =
        tar::Archive::new(File::open(from).with_context(|| format!("opening {}", from.display()))?);
    let mut entries = archive.entries()?;
    let manifest: Manifest = {
        let mut first = entries.next().context("the backup is empty")??;
        ensure!(
            first.path()?.as_ref() == Path::new(MANIFEST),
            "not a fieldcheck backup: {MANIFEST} is not first"
        );
        let mut text = Vec::new();
        (&mut first).take(16 * 1024 * 1024).read_to_end(&mut text)?;
        serde_json::from_slice(&text).context("the backup's manifest is unreadable")?
    };
    ensure!(
        manifest.format == FORMAT,
        "backup format {} is not one this release reads ({FORMAT})",
        manifest.format
    );
    let expected: std::collections::BTreeMap<&str, &Member> =
        manifest.files.iter().map(|m| (m.path.as_str(), m)).collect();
    let mut seen = 0;
    let mut db_staged = None;
    for entry in entries {
        let mut entry = entry?;
        let rel = entry.path()?.to_str().context("a UTF-8 member name")?.to_owned();
        let member = expected
            .get(rel.as_str())
            .with_context(|| format!("{rel} is in the backup but not in its manifest"))?;
        let target = safe_join(data_dir, &rel)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        // Written beside its place, checked, then renamed: a member that fails its check leaves nothing.
        let staged = target.with_file_name(format!(
            ".restoring-{}",
            target.file_name().and_then(|n| n.to_str()).unwrap_or("member")
        ));
        let mut out = File::create(&staged)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > member.bytes {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        out.sync_all()?;
        let digest = hex::encode(hasher.finalize());
        if written != member.bytes || digest != member.sha256 {
            let _ = fs::remove_file(&staged);
            bail!("{rel} does not match the backup's manifest (damaged backup); nothing of it was kept");
        }
        seen += 1;
        if rel == DB_FILE {
            db_staged = Some((staged, target));
        } else {
            fs::rename(&staged, &target)?;
        }
    }
    ensure!(
        seen == manifest.files.len(),
        "the backup ends early: {seen} of {} members",
        manifest.files.len()
    );
    let (staged, target) = db_staged.context("the backup holds no database")?;
    let check = crate::db::integrity_check(&staged)?;
    ensure!(check == "ok", "the backup's database fails SQLite's integrity check: {check}");
    fs::rename(&staged, &target)?;
    File::open(data_dir)?.sync_all()?;
    Ok(Summary { files: seen, bytes: manifest.files.iter().map(|m| m.bytes).sum() })
}

/// `root/rel` for a relative path without `..` or a root: a backup names files inside the data dir only.
fn safe_join(root: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(rel);
    ensure!(
        path.components().all(|c| matches!(c, Component::Normal(_))),
        "{rel:?} is not a plain relative path; refusing to restore outside the data dir"
    );
    Ok(root.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_naming_a_path_outside_the_data_dir_is_refused() {
        let root = Path::new("/data");
        assert!(safe_join(root, "photos/ab/cd/x").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "photos/../../x"] {
            assert!(safe_join(root, bad).is_err(), "{bad}");
        }
    }
}
