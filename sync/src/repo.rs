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
//! - The client's side, for the handheld's WebSocket transport: [`encode_client`] writes what a client
//!   sends, [`decode_server`] reads what the server sends into a [`ServerFrame`], and [`refusal`] takes a
//!   refusal's rule and document out of an `error` message's text.

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

/// What a client sends, written as the JS client writes it; `target_id` is the server's peer id.
pub fn encode_client(message: &ClientMessage, target_id: &str) -> Vec<u8> {
    let map = match message {
        ClientMessage::Join { sender_id, versions, pending } => {
            let mut meta = vec![entry("isEphemeral", false)];
            if let Some(p) = pending {
                meta.push(entry(
                    "pending",
                    Value::Map(vec![entry("changes", p.changes), entry("photos", p.photos)]),
                ));
            }
            vec![
                entry("type", "join"),
                entry("senderId", sender_id.as_str()),
                entry(
                    "supportedProtocolVersions",
                    Value::Array(versions.iter().map(|v| Value::Text(v.clone())).collect()),
                ),
                entry("peerMetadata", Value::Map(meta)),
            ]
        }
        ClientMessage::Doc { kind, sender_id, document_id, data } => vec![
            entry("type", if *kind == DocMessageKind::Request { "request" } else { "sync" }),
            entry("senderId", sender_id.as_str()),
            entry("targetId", target_id),
            entry("documentId", document_id.to_string()),
            entry("data", Value::Bytes(data.clone())),
        ],
        ClientMessage::DocUnavailable { document_id } => vec![
            entry("type", "doc-unavailable"),
            entry("targetId", target_id),
            entry("documentId", document_id.to_string()),
        ],
        ClientMessage::Ephemeral => vec![entry("type", "ephemeral")],
        ClientMessage::Leave => vec![entry("type", "leave")],
        ClientMessage::RemoteHeads => vec![entry("type", "remote-heads-changed")],
    };
    batch::encode(&Value::Map(map))
}

/// What the server sent, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// The handshake's answer, with the server's storage id when it names one.
    Peer {
        sender_id: String,
        storage_id: Option<String>,
    },
    Sync {
        document_id: RepoDocId,
        data: Vec<u8>,
    },
    DocUnavailable {
        document_id: RepoDocId,
    },
    /// The server's refusal or failure, in words (`<rule>: <message>`); the connection closes after it.
    Error {
        message: String,
    },
    /// Messages a client may ignore (`ephemeral`, the remote-heads gossip).
    Ignored,
}

/// Reads one server frame; a frame that is not a protocol message, or a `sync` without bytes, is refused.
pub fn decode_server(frame: &[u8]) -> Result<ServerFrame, WireError> {
    let value: Value = batch::decode(frame).map_err(|e| WireError::new(e.to_string()))?;
    let Value::Map(map) = value else {
        return Err(WireError::new("a message must be a CBOR map"));
    };
    Ok(match text(&map, "type")?.as_str() {
        "peer" => {
            let storage_id = match field(&map, "peerMetadata").or_else(|| field(&map, "metadata")) {
                Some(Value::Map(meta)) => {
                    field(meta, "storageId").and_then(Value::as_text).map(str::to_owned)
                }
                _ => None,
            };
            ServerFrame::Peer { sender_id: text(&map, "senderId")?, storage_id }
        }
        "sync" | "request" => match field(&map, "data") {
            Some(Value::Bytes(b)) => ServerFrame::Sync { document_id: document_id(&map)?, data: b.clone() },
            _ => return Err(WireError::new("`data` must be a byte string (an automerge sync message)")),
        },
        "doc-unavailable" => ServerFrame::DocUnavailable { document_id: document_id(&map)? },
        "error" => ServerFrame::Error { message: text(&map, "message")? },
        "ephemeral" | "remote-subscription-change" | "remote-heads-changed" => ServerFrame::Ignored,
        other => return Err(WireError::new(format!("unknown message type {other:?}"))),
    })
}

/// A refusal read from the server's `error` text: the rule's code, the server's words, and the document
/// when the refusal was about one. The server writes `<code>: <message>`, and a document's refusal ends
/// with `(document <bs58check id>)` (docs/sync-protocol.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    pub document_id: Option<RepoDocId>,
}

pub fn refusal(error_text: &str) -> Refusal {
    let (code, message) = match error_text.split_once(": ") {
        Some((code, rest)) if !code.is_empty() && !code.contains(' ') => (code, rest),
        _ => ("error", error_text),
    };
    let document_id = message
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once(" (document "))
        .and_then(|(_, id)| RepoDocId::parse(id).ok());
    Refusal { code: code.to_owned(), message: message.to_owned(), document_id }
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

    #[test]
    fn a_clients_messages_read_back_as_the_server_reads_them() {
        let id = RepoDocId::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let join = ClientMessage::Join {
            sender_id: "device-1".into(),
            versions: vec![PROTOCOL_VERSION.into()],
            pending: Some(Pending { changes: 2, photos: 1 }),
        };
        let doc = ClientMessage::Doc {
            kind: DocMessageKind::Sync,
            sender_id: "device-1".into(),
            document_id: id,
            data: vec![0x42, 7],
        };
        for message in [join, doc, ClientMessage::Leave] {
            assert_eq!(decode(&encode_client(&message, "server")).unwrap(), message);
        }
    }

    #[test]
    fn a_servers_messages_read_back_as_a_client_reads_them() {
        let id = RepoDocId::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        let peer = encode(&ServerMessage::Peer { sender_id: "server", target_id: "d", storage_id: "abc" });
        assert_eq!(
            decode_server(&peer).unwrap(),
            ServerFrame::Peer { sender_id: "server".into(), storage_id: Some("abc".into()) }
        );
        let sync =
            encode(&ServerMessage::Sync { sender_id: "s", target_id: "d", document_id: id, data: &[1, 2] });
        assert_eq!(decode_server(&sync).unwrap(), ServerFrame::Sync { document_id: id, data: vec![1, 2] });
        let gone = encode(&ServerMessage::DocUnavailable { sender_id: "s", target_id: "d", document_id: id });
        assert_eq!(decode_server(&gone).unwrap(), ServerFrame::DocUnavailable { document_id: id });
        assert!(decode_server(&frame(vec![entry("type", "teleport")])).is_err());
        assert!(
            decode_server(&frame(vec![entry("type", "sync"), entry("documentId", id.to_string())])).is_err()
        );
    }

    #[test]
    fn a_refusal_names_its_rule_and_the_document_it_was_about() {
        let id = RepoDocId::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        // As the server writes it: `<code>: <message> (document <id>)`.
        let about_doc = refusal(&format!("server_owned_path: /instruction is the server's (document {id})"));
        assert_eq!(about_doc.code, "server_owned_path");
        assert_eq!(about_doc.document_id, Some(id));
        assert!(about_doc.message.starts_with("/instruction is the server's"));
        let whole = refusal("session_ended: this login session has ended; log in again");
        assert_eq!((whole.code.as_str(), whole.document_id), ("session_ended", None));
        assert_eq!(refusal("no rule here").code, "error");
    }
}
