//! The append-only, hash-chained audit log.
//!
//! Every decision (review, assignment, approval, forced release, issue, revoke, device status) and every
//! security event (logins, failed ones too) appends an entry in the same transaction as the change it
//! records, so the log never claims what did not happen nor misses what did. Each entry's hash covers the
//! previous hash, so editing or deleting any row breaks every link after it.
//!
//! # Layout
//! - this file: the actions and subjects, the hash an entry carries, [`append`] and the chain check [`verify`].
//! - [`store`]: the `audit_log` SQL. [`http`]: the admin's list and check.

pub mod http;
pub mod store;

use std::{fmt, ops::ControlFlow};

use crate::db::{Conn, Tx};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    domain::{
        CreditRating,
        events::{self, Event},
    },
    error::{ApiError, StoreError},
};
pub use store::{AuditEntry, entries};

/// Who acted: a user, the system (automatic review, expiry) or an anonymous caller (failed logins).
#[derive(Debug, Clone)]
pub enum Actor {
    User(i64),
    System,
    Anonymous,
}

impl Actor {
    /// The stored spelling: `user:<id>`, `system` or `anonymous`.
    pub fn label(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::System => "system".into(),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// What an audit entry is about (`audit_log.subject`), spelled `kind:id` as stored. [`append`] takes any
/// `Display`, so modules not yet moved to this enum still pass their own `kind:id` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    User(i64),
    Unit(i64),
    Enterprise(i64),
    Delegation(i64),
    Grant(i64),
    Instruction(i64),
    /// A sampling ratio, by HS chapter and credit rating.
    SamplingRatio {
        chapter: &'a str,
        rating: CreditRating,
    },
    /// What a receipt is about (an application, instruction, booking, certificate application, …),
    /// spelled as its receipts name it (`events::Subject::audit_prefix`).
    Receipted(events::Subject, i64),
    /// An issued certificate (its row id).
    Certificate(i64),
    /// A signed message's evidence row.
    Message(i64),
    /// A notice, by its number.
    Notice(&'a str),
    /// A handheld, by its device id.
    Device(&'a str),
    /// A photo, by its SHA-256.
    Photo(&'a str),
    /// A login attempt for a username no account has.
    Username(&'a str),
    /// A strong-login challenge nobody was issued (so no user to name).
    Challenge,
    /// A session whose refresh token was used twice (the entry does not name it).
    Session,
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(id) => write!(f, "user:{id}"),
            Subject::Unit(id) => write!(f, "unit:{id}"),
            Subject::Enterprise(id) => write!(f, "enterprise:{id}"),
            Subject::Delegation(id) => write!(f, "delegation:{id}"),
            Subject::Grant(id) => write!(f, "grant:{id}"),
            Subject::Instruction(id) => write!(f, "instruction:{id}"),
            Subject::SamplingRatio { chapter, rating } => write!(f, "chapter:{chapter}:{rating}"),
            Subject::Receipted(subject, id) => write!(f, "{}:{id}", subject.audit_prefix()),
            Subject::Certificate(id) => write!(f, "certificate:{id}"),
            Subject::Message(id) => write!(f, "message:{id}"),
            Subject::Notice(number) => write!(f, "notice:{number}"),
            Subject::Device(id) => write!(f, "device:{id}"),
            Subject::Photo(sha) => write!(f, "photo:{sha}"),
            Subject::Username(name) => write!(f, "username:{name}"),
            Subject::Challenge => f.write_str("challenge"),
            Subject::Session => f.write_str("session"),
        }
    }
}

/// What an audit entry records (`audit_log.action`). A state change an enterprise is told of is a
/// [`Action::Change`], written with its receipt by `receipts::record_change`; the others stand alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Change(Event),
    /// A signed message accepted: `message.<its kind>` (`messages::MessageKind::audit_action`; a string
    /// here because `messages` sits above this module).
    Message(&'static str),
    AuthLogin,
    AuthLoginFailed,
    AuthLoginRefused,
    AuthLogout,
    /// A user changed their password (and every other session of theirs ended).
    AuthPasswordChange,
    AuthRefreshReused,
    AuthStrongLoginFailed,
    BookingCalendar,
    CertificateSigned,
    CertificatePrinted,
    DelegationGrant,
    DelegationRevoke,
    DelegationSubgrant,
    DeviceRegister,
    DeviceClaim,
    DeviceStatus,
    EnterpriseCreate,
    InstructionConflictResolved,
    /// A printed notice numbered on its first print (`notices`).
    NoticeIssue,
    PhotoStore,
    PhotoLink,
    PlatformSignerRegister,
    ReceiptKeyRotate,
    ReferenceSamplingRatio,
    /// `fieldcheck admin import-reference`: the per-table counts of what changed.
    ReferenceImported,
    ReviewAutoReview,
    UnitCreate,
    UserCreate,
    UserStatus,
    UserValidity,
    UserSigningKey,
}

impl Action {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Change(e) => e.audit_action(),
            Action::Message(kind) => kind,
            Action::AuthLogin => "auth.login",
            Action::AuthLoginFailed => "auth.login_failed",
            Action::AuthLoginRefused => "auth.login_refused",
            Action::AuthLogout => "auth.logout",
            Action::AuthPasswordChange => "auth.password_change",
            Action::AuthRefreshReused => "auth.refresh_reused",
            Action::AuthStrongLoginFailed => "auth.strong_login_failed",
            Action::BookingCalendar => "booking.calendar",
            Action::CertificateSigned => "certificate.signed",
            Action::CertificatePrinted => "certificate.printed",
            Action::NoticeIssue => "notice.issue",
            Action::DelegationGrant => "delegation.grant",
            Action::DelegationRevoke => "delegation.revoke",
            Action::DelegationSubgrant => "delegation.subgrant",
            Action::DeviceRegister => "device.register",
            Action::DeviceClaim => "device.claim",
            Action::DeviceStatus => "device.status",
            Action::EnterpriseCreate => "enterprise.create",
            Action::InstructionConflictResolved => "instruction.conflict_resolved",
            Action::PhotoStore => "photo.store",
            Action::PhotoLink => "photo.link",
            Action::PlatformSignerRegister => "platform_signer.register",
            Action::ReceiptKeyRotate => "receipt_key.rotate",
            Action::ReferenceSamplingRatio => "reference.sampling_ratio",
            Action::ReferenceImported => "reference.imported",
            Action::ReviewAutoReview => "review.auto_review",
            Action::UnitCreate => "unit.create",
            Action::UserCreate => "user.create",
            Action::UserStatus => "user.status",
            Action::UserValidity => "user.validity",
            Action::UserSigningKey => "user.signing_key",
        }
    }
}

impl From<Event> for Action {
    fn from(e: Event) -> Action {
        Action::Change(e)
    }
}

const GENESIS: [u8; 32] = [0; 32];

fn entry_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> Vec<u8> {
    // A JSON array is an unambiguous encoding: no field can bleed into the next.
    let canonical = serde_json::to_vec(&(seq, at, actor, action, subject, details))
        .expect("a tuple of strings and integers serialises");
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&canonical);
    h.finalize().to_vec()
}

/// Appends one entry inside the caller's transaction.
pub fn append(
    tx: &Tx<'_>,
    at_ms: i64,
    actor: &Actor,
    action: Action,
    subject: &(impl fmt::Display + ?Sized),
    details: Value,
) -> Result<(), StoreError> {
    let subject = subject.to_string();
    let action = action.as_str();
    // Cached statements: a bulk of messages appends thousands of entries in one transaction.
    let last = store::last_link(tx)?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_vec()),
    };
    let actor = actor.label();
    let details = details.to_string();
    let hash = entry_hash(&prev, seq, at_ms, &actor, action, &subject, &details);
    let link = store::Link {
        seq,
        at: at_ms,
        actor,
        action: action.to_string(),
        subject,
        details,
        prev_hash: prev,
        hash,
    };
    store::insert(tx, &link)?;
    Ok(())
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: i64,
    /// The first entry whose link does not hold, and why; `None` when the whole chain verifies.
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: String,
}

/// Walks the whole chain in order, streaming rows so a long log does not sit in memory.
pub fn verify(conn: &Conn) -> Result<ChainReport, ApiError> {
    let mut expected_prev = GENESIS.to_vec();
    let mut expected_seq = 1;
    let mut entries = 0;
    let broken = store::walk(conn, |link| {
        entries += 1;
        let reason = if link.seq != expected_seq {
            format!("entry {expected_seq} is missing")
        } else if link.prev_hash != expected_prev {
            "prev_hash does not match the previous entry's hash".into()
        } else if entry_hash(
            &link.prev_hash,
            link.seq,
            link.at,
            &link.actor,
            &link.action,
            &link.subject,
            &link.details,
        ) != link.hash
        {
            "the entry's content does not match its hash".into()
        } else {
            expected_prev = link.hash;
            expected_seq += 1;
            return ControlFlow::Continue(());
        };
        ControlFlow::Break(BrokenLink { seq: link.seq, reason })
    })?;
    Ok(ChainReport { entries, first_broken: broken })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db_with_entries(n: i64) -> (tempfile::TempDir, crate::db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(dir.path(), 1).unwrap();
        db.write_blocking(|tx| -> Result<(), StoreError> {
            for i in 0..n {
                append(
                    tx,
                    1000 + i,
                    &Actor::User(i),
                    Action::UnitCreate,
                    &format!("thing:{i}"),
                    json!({"i": i}),
                )?;
            }
            Ok(())
        })
        .unwrap();
        (dir, db)
    }

    #[test]
    fn subjects_are_stored_in_the_spelling_the_log_always_had() {
        use crate::domain::events::Subject as Receipted;
        let spelled = |s: Subject<'_>| s.to_string();
        assert_eq!(spelled(Subject::Receipted(Receipted::Certificate, 7)), "certificate_application:7");
        assert_eq!(spelled(Subject::Receipted(Receipted::Booking, 3)), "booking:3");
        assert_eq!(spelled(Subject::Certificate(7)), "certificate:7");
        assert_eq!(spelled(Subject::Message(9)), "message:9");
        assert_eq!(spelled(Subject::Notice("N1")), "notice:N1");
        assert_eq!(spelled(Subject::Device("hh-1")), "device:hh-1");
        assert_eq!(spelled(Subject::Photo("ab")), "photo:ab");
        assert_eq!(spelled(Subject::Username("li")), "username:li");
        assert_eq!(spelled(Subject::Challenge), "challenge");
        assert_eq!(spelled(Subject::Session), "session");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (_dir, db) = db_with_entries(5);
        let report = db.write_blocking(|tx| verify(tx)).unwrap();
        assert_eq!(report, ChainReport { entries: 5, first_broken: None });
    }

    #[test]
    fn the_log_refuses_updates_and_deletes_through_sql() {
        let (_dir, db) = db_with_entries(2);
        let upd =
            db.write_blocking(|tx| Ok::<_, StoreError>(tx.execute("UPDATE audit_log SET actor = 'x'", [])?));
        assert!(upd.is_err());
        let del = db.write_blocking(|tx| Ok::<_, StoreError>(tx.execute("DELETE FROM audit_log", [])?));
        assert!(del.is_err());
    }

    #[test]
    fn an_edited_entry_is_named_as_the_first_broken_link() {
        let (_dir, db) = db_with_entries(5);
        db.write_blocking(|tx| -> Result<(), StoreError> {
            tx.execute_batch(
                "DROP TRIGGER audit_log_no_update;
                 UPDATE audit_log SET details = '{\"i\":99}' WHERE seq = 3;",
            )?;
            Ok(())
        })
        .unwrap();
        let report = db.write_blocking(|tx| verify(tx)).unwrap();
        assert_eq!(report.first_broken.map(|b| b.seq), Some(3));
    }
}
