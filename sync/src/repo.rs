//! The automerge-repo wire protocol (as `@automerge/automerge-repo` 2.5 with its WebSocket adapter
//! speaks it): CBOR maps, one per WebSocket binary frame. Only the framing lives here; what a sync
//! message means is [`crate::session`]'s, so the WebSocket endpoint runs the very same validation as
//! the batch endpoint.
//!
//! The protocol's CDDL (the adapter's README) names the join metadata `metadata` while the TypeScript
//! sends `peerMetadata`; neither is needed by the server, so both are accepted and ignored. Document
//! ids are bs58check of 16 bytes, the same 16 bytes the server names in hex.
//!
//! # Layout
//! - [`RepoDocId`]: a document id in automerge-repo's form, convertible to and from the server's hex.
//! - [`ClientMessage`] and [`decode`]: what a client may send, read strictly (unknown types refused).
//! - [`ServerMessage`] and [`encode`]: what the server sends.

use std::fmt;

use ciborium::Value;

use crate::batch::{self, Pending};

/// The only protocol version automerge-repo 2.x speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// A document id as automerge-repo writes it (`automerge:<id>` in URLs): bs58check of 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoDocId([u8; 16]);

impl RepoDocId {
    /// Reads the bs58check form; anything else (bad checksum, wrong length, a URL prefix) is refused.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        // 16 bytes + 4 checksum bytes are at most 28 base58 digits; refuse longer before decoding.
        if s.is_empty() || s.len() > 28 {
            return Err(WireError::new(format!("document id {s:?} is not a bs58check id of 16 bytes")));
        }
        let bytes = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|e| WireError::new(format!("document id {s:?} is not bs58check: {e}")))?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| WireError::new(format!("document id {s:?} does not hold 16 bytes")))?;
        Ok(Self(bytes))
    }

    /// The server's own name for the document: 32 hex digits.
    pub fn from_hex(hex_id: &str) -> Option<Self> {
        let bytes = hex::decode(hex_id).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for RepoDocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for RepoDocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoDocId({self})")
    }
}

/// Which of the two document messages carried a sync message: a `request` comes from a peer that
/// does not have the document yet and wants to be told `doc-unavailable` if we do not either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocMessageKind {
    Request,
    Sync,
}

/// What a client may send.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// The handshake: the client's peer id and the protocol versions it speaks, and what it still holds
    /// unsent when its `peerMetadata` carries `pending: {changes, photos}` (fieldcheck's addition; absent
    /// from plain automerge-repo clients).
    Join { sender_id: String, versions: Vec<String>, pending: Option<Pending> },
    /// An automerge sync message about one document.
    Doc { kind: DocMessageKind, sender_id: String, document_id: RepoDocId, data: Vec<u8> },
    /// The client does not have a document we asked about.
    DocUnavailable { document_id: RepoDocId },
    /// Presence and cursors between peers: not part of the record, never stored or relayed.
    Ephemeral,
    /// The client is going away.
    Leave,
    /// Remote-heads gossip (`remote-subscription-change`, `remote-heads-changed`): an optimisation the
    /// protocol lets a peer ignore.
    RemoteHeads,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<'a> {
    /// `storage_id` names the server's storage: clients then track the heads the server last reported
    /// for each document (`DocHandle.getSyncInfo(storageId)`), which is how an app knows its edits
    /// are stored (the server answers only after committing).
    Peer {
        sender_id: &'a str,
        target_id: &'a str,
        storage_id: &'a str,
    },
    Sync {
        sender_id: &'a str,
        target_id: &'a str,
        document_id: RepoDocId,
        data: &'a [u8],
    },
    DocUnavailable {
        sender_id: &'a str,
        target_id: &'a str,
        document_id: RepoDocId,
    },
    /// The protocol's error: the connection is closed after it.
    Error {
        sender_id: &'a str,
        target_id: &'a str,
        message: &'a str,
    },
}

/// A frame that is not a message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

impl WireError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

fn field<'v>(map: &'v [(Value, Value)], key: &str) -> Option<&'v Value> {
    map.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

fn text(map: &[(Value, Value)], key: &str) -> Result<String, WireError> {
    match field(map, key) {
        Some(Value::Text(s)) => Ok(s.clone()),
        Some(_) => Err(WireError::new(format!("`{key}` must be a text string"))),
        None => Err(WireError::new(format!("`{key}` is missing"))),
    }
}

fn document_id(map: &[(Value, Value)]) -> Result<RepoDocId, WireError> {
    RepoDocId::parse(&text(map, "documentId")?)
}

/// `peerMetadata.pending` of a `join`, if the client sent one: two counts that fit a `u32`.
fn peer_pending(map: &[(Value, Value)]) -> Result<Option<Pending>, WireError> {
    let Some(Value::Map(meta)) = field(map, "peerMetadata").or_else(|| field(map, "metadata")) else {
        return Ok(None);
    };
    let Some(pending) = field(meta, "pending") else { return Ok(None) };
    let bad = || WireError::new("`peerMetadata.pending` must be {changes, photos}, two counts");
    let Value::Map(pending) = pending else { return Err(bad()) };
    let count = |key: &str| -> Result<u32, WireError> {
        match field(pending, key) {
            Some(Value::Integer(n)) => u32::try_from(i128::from(*n)).map_err(|_| bad()),
            _ => Err(bad()),
        }
    };
    Ok(Some(Pending { changes: count("changes")?, photos: count("photos")? }))
}

/// Reads one client frame: exactly one CBOR map with a known `type`.
pub fn decode(frame: &[u8]) -> Result<ClientMessage, WireError> {
    let value: Value = batch::decode(frame).map_err(|e| WireError::new(e.to_string()))?;
    let Value::Map(map) = value else {
        return Err(WireError::new("a message must be a CBOR map"));
    };
    let kind = text(&map, "type")?;
    Ok(match kind.as_str() {
        "join" => {
            let versions = match field(&map, "supportedProtocolVersions") {
                Some(Value::Array(vs)) => vs.iter().filter_map(|v| v.as_text().map(str::to_owned)).collect(),
                Some(_) => return Err(WireError::new("`supportedProtocolVersions` must be an array")),
                // automerge-repo before 1.0 sent no versions; they spoke version 1.
                None => vec![PROTOCOL_VERSION.to_owned()],
            };
            ClientMessage::Join { sender_id: text(&map, "senderId")?, versions, pending: peer_pending(&map)? }
        }
        "request" | "sync" => {
            let data = match field(&map, "data") {
                Some(Value::Bytes(b)) => b.clone(),
                _ => return Err(WireError::new("`data` must be a byte string (an automerge sync message)")),
            };
            ClientMessage::Doc {
                kind: if kind == "request" { DocMessageKind::Request } else { DocMessageKind::Sync },
                sender_id: text(&map, "senderId")?,
                document_id: document_id(&map)?,
                data,
            }
        }
        "doc-unavailable" => ClientMessage::DocUnavailable { document_id: document_id(&map)? },
        "ephemeral" => ClientMessage::Ephemeral,
        "leave" => ClientMessage::Leave,
        "remote-subscription-change" | "remote-heads-changed" => ClientMessage::RemoteHeads,
        other => return Err(WireError::new(format!("unknown message type {other:?}"))),
    })
}

fn entry(key: &str, value: impl Into<Value>) -> (Value, Value) {
    (Value::Text(key.to_owned()), value.into())
}

/// Writes one server frame as the JS client reads it (plain maps, byte strings for `data`).
pub fn encode(message: &ServerMessage<'_>) -> Vec<u8> {
    let map = match *message {
        ServerMessage::Peer { sender_id, target_id, storage_id } => vec![
            entry("type", "peer"),
            entry("senderId", sender_id),
            entry("targetId", target_id),
            entry("selectedProtocolVersion", PROTOCOL_VERSION),
            // Not ephemeral: the server keeps what it accepts.
            entry(
                "peerMetadata",
                Value::Map(vec![entry("storageId", storage_id), entry("isEphemeral", false)]),
            ),
        ],
        ServerMessage::Sync { sender_id, target_id, document_id, data } => vec![
            entry("type", "sync"),
            entry("senderId", sender_id),
            entry("targetId", target_id),
            entry("documentId", document_id.to_string()),
            entry("data", Value::Bytes(data.to_vec())),
        ],
        ServerMessage::DocUnavailable { sender_id, target_id, document_id } => vec![
            entry("type", "doc-unavailable"),
            entry("senderId", sender_id),
            entry("targetId", target_id),
            entry("documentId", document_id.to_string()),
        ],
        ServerMessage::Error { sender_id, target_id, message } => vec![
            entry("type", "error"),
            entry("senderId", sender_id),
            entry("targetId", target_id),
            entry("message", message),
        ],
    };
    batch::encode(&Value::Map(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entries: Vec<(Value, Value)>) -> Vec<u8> {
        batch::encode(&Value::Map(entries))
    }

    #[test]
    fn a_document_id_round_trips_between_bs58check_and_hex() {
        let hex_id = "00112233445566778899aabbccddeeff";
        let id = RepoDocId::from_hex(hex_id).unwrap();
        let text = id.to_string();
        assert_eq!(RepoDocId::parse(&text).unwrap(), id);
        assert_eq!(RepoDocId::parse(&text).unwrap().to_hex(), hex_id);
    }

    #[test]
    fn a_document_id_with_a_bad_checksum_or_length_is_refused() {
        let text = RepoDocId::from_hex("00112233445566778899aabbccddeeff").unwrap().to_string();
        let mut broken = text.clone().into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'2' { b'3' } else { b'2' };
        assert!(RepoDocId::parse(std::str::from_utf8(&broken).unwrap()).is_err());
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert!(RepoDocId::parse(&short).is_err());
        assert!(RepoDocId::parse(&format!("automerge:{text}")).is_err());
        assert!(RepoDocId::parse("").is_err());
    }

    #[test]
    fn a_join_may_carry_the_clients_pending_counts_and_bad_counts_are_refused() {
        let join = |pending: Value| {
            frame(vec![
                entry("type", "join"),
                entry("senderId", "device-1"),
                entry(
                    "peerMetadata",
                    Value::Map(vec![entry("isEphemeral", false), entry("pending", pending)]),
                ),
            ])
        };
        let ok = join(Value::Map(vec![entry("changes", 3), entry("photos", 1)]));
        assert!(matches!(
            decode(&ok).unwrap(),
            ClientMessage::Join { pending: Some(Pending { changes: 3, photos: 1 }), .. }
        ));
        for bad in [
            Value::Map(vec![entry("changes", -1), entry("photos", 1)]),
            Value::Map(vec![entry("changes", 3)]),
            Value::Text("3".into()),
        ] {
            assert!(decode(&join(bad)).is_err());
        }
    }

    #[test]
    fn a_join_is_read_with_either_metadata_spelling() {
        for meta in ["peerMetadata", "metadata"] {
            let bytes = frame(vec![
                entry("type", "join"),
                entry("senderId", "device-1"),
                entry(meta, Value::Map(vec![entry("isEphemeral", true)])),
                entry("supportedProtocolVersions", Value::Array(vec!["1".into()])),
            ]);
            assert_eq!(
                decode(&bytes).unwrap(),
                ClientMessage::Join {
                    sender_id: "device-1".into(),
                    versions: vec!["1".into()],
                    pending: None
                }
            );
        }
    }

    #[test]
    fn a_sync_message_carries_its_document_and_bytes() {
        let id = RepoDocId::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        let bytes = frame(vec![
            entry("type", "request"),
            entry("senderId", "device-1"),
            entry("targetId", "server"),
            entry("documentId", id.to_string()),
            entry("data", Value::Bytes(vec![0x42, 1, 2])),
        ]);
        assert_eq!(
            decode(&bytes).unwrap(),
            ClientMessage::Doc {
                kind: DocMessageKind::Request,
                sender_id: "device-1".into(),
                document_id: id,
                data: vec![0x42, 1, 2]
            }
        );
    }

    #[test]
    fn frames_that_are_not_protocol_messages_are_refused_with_a_reason() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", b"\xff\x00garbage".to_vec()),
            ("not a map", batch::encode(&Value::Array(vec![]))),
            ("unknown type", frame(vec![entry("type", "teleport")])),
            ("no type", frame(vec![entry("senderId", "x")])),
            (
                "data as an array",
                frame(vec![
                    entry("type", "sync"),
                    entry("senderId", "x"),
                    entry("documentId", "x"),
                    entry("data", Value::Array(vec![])),
                ]),
            ),
            ("trailing bytes", [frame(vec![entry("type", "leave")]), vec![0]].concat()),
        ];
        for (name, bytes) in cases {
            assert!(decode(&bytes).is_err(), "{name}");
        }
    }

    #[test]
    fn server_messages_are_plain_maps_with_byte_string_data() {
        let id = RepoDocId::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        let bytes = encode(&ServerMessage::Sync {
            sender_id: "server",
            target_id: "device-1",
            document_id: id,
            data: &[7, 8, 9],
        });
        let Value::Map(map) = batch::decode::<Value>(&bytes).unwrap() else { panic!("not a map") };
        assert_eq!(field(&map, "type").and_then(Value::as_text), Some("sync"));
        assert_eq!(field(&map, "documentId").and_then(Value::as_text), Some(id.to_string().as_str()));
        assert_eq!(field(&map, "data"), Some(&Value::Bytes(vec![7, 8, 9])));
    }
}
