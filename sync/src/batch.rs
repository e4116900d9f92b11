//! The batch sync wire format (`POST /api/v1/sync`, `Content-Type: application/cbor`): one request
//! carries an automerge sync message for each of many documents, one response answers them all. Built
//! for flaky mobile links: a whole round trip is one HTTP exchange, and replaying it is harmless
//! because automerge ignores changes it already has and the server starts every round from the
//! persisted (shared-heads) session state.
//!
//! CBOR maps with text keys; sync messages are CBOR byte strings. See `docs/sync-protocol.md`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

pub const CONTENT_TYPE: &str = "application/cbor";
/// The framing version; a request naming another is refused whole.
pub const VERSION: u32 = 1;
/// Documents per request. A handheld with more splits them over several requests.
pub const MAX_DOCS_PER_BATCH: usize = 500;

/// Bytes that travel as a CBOR byte string (serde's default for `Vec<u8>` is an array of integers,
/// four times larger and not what other clients send).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// What a handheld sends: one sync message per document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Always [`VERSION`].
    pub v: u32,
    pub messages: Vec<DocMessage>,
    /// What the handheld still holds unsent, as counted when it built this request. Optional and
    /// additive: a client that sends none leaves the server's figure "unknown".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

/// A handheld's count of work not yet on the server: edits not acknowledged, photos not uploaded.
/// Supervisors see it per handheld (issue 13); it is the device's word, used for monitoring only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub changes: u32,
    pub photos: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocMessage {
    /// The document id (from the assignment index, or the response's `index_doc`).
    pub doc: String,
    /// An automerge sync message.
    pub data: Bytes,
}

/// The server's answer: one result per requested document, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub v: u32,
    /// The caller's assignment-index document: sync it first to learn which records to fetch.
    pub index_doc: String,
    pub results: Vec<DocResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocResult {
    pub doc: String,
    /// The server's sync message for this document, if it has something to say.
    #[serde(default)]
    pub data: Option<Bytes>,
    /// Set when this document's message was refused; the server's copy is unchanged. Other
    /// documents of the batch are unaffected.
    #[serde(default)]
    pub error: Option<DocError>,
    /// How many new changes from this message the server accepted and stored.
    #[serde(default)]
    pub accepted: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocError {
    /// Stable code: `unknown_document`, `not_assigned`, `invalid_message`, or a validation rule
    /// (`Refusal::rule()`, e.g. `server_owned_path`, `sealed_record`).
    pub code: String,
    pub message: String,
}

/// Why a CBOR body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a batch sync body: {0}")]
pub struct DecodeError(String);

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR into a Vec cannot fail");
    out
}

/// Reads exactly one CBOR value that fills the whole body: bytes after it are refused, so a body that
/// is not what the sender meant (two bodies concatenated, a corrupted tail) never passes as a valid one.
pub fn decode<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(|e| DecodeError(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError(format!(
            "{} trailing bytes after the CBOR value (byte {} on); send exactly one value",
            rest.len(),
            bytes.len() - rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_messages_as_byte_strings() {
        let request = SyncRequest {
            v: VERSION,
            messages: vec![DocMessage { doc: "abc".into(), data: Bytes(vec![0x42, 0, 7]) }],
            pending: None,
        };
        let bytes = encode(&request);
        // 0x43 = a CBOR byte string of length 3.
        assert!(bytes.windows(4).any(|w| w == [0x43, 0x42, 0, 7]));
        assert_eq!(decode::<SyncRequest>(&bytes).unwrap(), request);
    }

    #[test]
    fn garbage_and_truncated_bodies_are_refused() {
        assert!(decode::<SyncRequest>(b"\xff\x00garbage").is_err());
        let request = SyncRequest {
            v: VERSION,
            messages: vec![DocMessage { doc: "abc".into(), data: Bytes(vec![1; 100]) }],
            pending: None,
        };
        let bytes = encode(&request);
        assert!(decode::<SyncRequest>(&bytes[..bytes.len() - 10]).is_err());
    }

    #[test]
    fn a_body_with_trailing_bytes_is_refused_and_the_error_says_so() {
        let request = SyncRequest {
            v: VERSION,
            messages: vec![DocMessage { doc: "abc".into(), data: Bytes(vec![1; 10]) }],
            pending: None,
        };
        let bytes = encode(&request);
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0x5a; 100]);
        let err = decode::<SyncRequest>(&padded).unwrap_err().to_string();
        assert!(err.contains("100 trailing bytes"), "{err}");
        let twice = [bytes.as_slice(), bytes.as_slice()].concat();
        let err = decode::<SyncRequest>(&twice).unwrap_err().to_string();
        assert!(err.contains(&format!("{} trailing bytes", bytes.len())), "{err}");
    }
}
