//! fieldcheck's sync core: the record document, what officers may change in it, and the sync
//! conversation that carries their changes to the server. No transport, no storage: the server and
//! the `handheld` client (crate `fieldcheck-handheld`) each bring their own.
//!
//! # Layout
//!
//! - [`schema`]: the record document's layout (schema 2), its value types, size limits and the
//!   strict readers shared by the handheld's edits and the server's validation.
//! - [`record`]: `RecordDoc`, one instruction's record: created by the server, edited by officers
//!   through typed operations, read back as a plain `Record`.
//! - [`chunks`]: what a sync message's changes inflate to, bounded before automerge reads them.
//! - [`conflicts`]: the verdict, check results and measurements that officers set differently at the
//!   same time, which must be resolved by a person, never by automerge's silent pick.
//! - [`migrate`]: upgrades a schema 1 record to schema 2 (notes as entries, flat measurements).
//! - [`validate`]: vets an incoming sync message on a copy of the document and accepts it whole or
//!   refuses it with the rule it broke.
//! - [`index`]: `AssignmentIndex`, each officer's list of assigned instructions, written by the
//!   server only.
//! - [`session`]: `SyncSession`, one peer's sync conversation about one document, free of any
//!   transport so the batch HTTP and WebSocket endpoints share it.
//! - [`batch`]: the batch HTTP endpoint's CBOR framing (many documents per round trip).
//! - [`repo`]: the automerge-repo wire protocol (join/peer/request/sync/…) and its document ids,
//!   for the WebSocket endpoint.
//! - [`exif`]: what a photo's EXIF block says (capture time, position, orientation, camera), read the
//!   same way by the server's photo checks and the handheld's `attach`.
//! - `json` (private): writes and reads the server-owned parts as plain automerge maps and lists.

pub mod batch;
pub mod chunks;
pub mod conflicts;
pub mod exif;
pub mod index;
mod json;
pub mod migrate;
pub mod record;
pub mod repo;
pub mod schema;
pub mod session;
pub mod validate;

pub use automerge::{ActorId, ChangeHash};
pub use conflicts::{Conflict, ConflictField, open_conflicts};
pub use index::{Assignment, AssignmentIndex, IndexReminder};
pub use record::{DocSize, Document, RecordDoc, RecordError, doc_size, new_actor_id};
pub use schema::Record;
pub use session::{Received, SyncSession};
pub use validate::{Refusal, Rules};
