//! The reference sender behind `fieldcheck message sign|send`: what an integrator's system does, in the
//! fewest lines: read a payload, sign it as a compact JWS with the key file, POST it.
//!
//! `send` speaks plain HTTP/1.1 (hyper's client, no TLS stack in the server binary); put the server
//! behind a TLS-terminating proxy and use `sign` with curl (docs/messages.md) for HTTPS.

use std::path::Path;

use anyhow::{Context, bail};
use axum::{body::Body, http::Uri};
use ed25519_dalek::SigningKey;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{MESSAGE_TYP, envelope::sign_compact};
use crate::auth::keys::read_seed;

/// Signs the payload file with the seed file (hex, as `fieldcheck keys generate` writes it) as `kid`.
pub fn sign_file(key_file: &Path, kid: &str, payload_file: &Path) -> anyhow::Result<String> {
    let key = SigningKey::from_bytes(&read_seed(key_file)?);
    let text = std::fs::read(payload_file).with_context(|| format!("reading {}", payload_file.display()))?;
    let value: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", payload_file.display()))?;
    if !(value.get("type").is_some_and(Value::is_string) && value.get("id").is_some_and(Value::is_string)) {
        bail!("{}: a message payload needs `type` and `id` (see docs/messages.md)", payload_file.display());
    }
    // The file's bytes are signed as they are: what the sender keeps is byte for byte what customs keeps.
    Ok(sign_compact(&key, kid, MESSAGE_TYP, &text))
}

/// POSTs signed messages to `<server>/api/v1/messages`: one as `application/jose`, several as a batch.
/// Returns the status and the JSON answer.
pub async fn send(server: &str, signed: Vec<String>) -> anyhow::Result<(u16, Value)> {
    let base: Uri = server.parse().with_context(|| format!("`{server}` is not a URL"))?;
    if base.scheme_str() != Some("http") {
        bail!("`send` speaks plain http://; for https, `sign` and send with curl");
    }
    let authority = base.authority().context("the server URL needs a host")?.clone();
    let (content_type, body) = match signed.as_slice() {
        [one] => ("application/jose", one.clone()),
        _ => ("application/json", json!({"messages": signed}).to_string()),
    };
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::post("/api/v1/messages")
        .header("host", authority.as_str())
        .header("content-type", content_type)
        .body(Body::from(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 64 * 1024 * 1024).await?;
    let answer = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Ok((status, answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::envelope::Envelope;

    /// A key file of seed `[4; 32]` and a payload file holding `payload`, in a fresh folder.
    fn files(payload: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (key_file, payload_file) = (dir.path().join("k.seed"), dir.path().join("m.json"));
        std::fs::write(&key_file, hex::encode([4u8; 32])).unwrap();
        std::fs::write(&payload_file, payload).unwrap();
        (dir, key_file, payload_file)
    }

    #[test]
    fn a_signed_file_verifies_with_the_public_half_of_the_key_file() {
        let (_dir, key_file, payload) =
            files(br#"{"type":"application.draft","id":"m-1","enterprise":"3101960001"}"#);
        let jws = sign_file(&key_file, "ent1-operator", &payload).unwrap();
        let env = Envelope::parse_compact(&jws, 1 << 16).unwrap();
        env.verify(&SigningKey::from_bytes(&[4u8; 32]).verifying_key()).unwrap();
        assert_eq!(env.payload, std::fs::read(&payload).unwrap());
    }

    #[test]
    fn a_payload_without_type_or_id_is_not_signed() {
        let (_dir, key_file, payload) = files(br#"{"content":{}}"#);
        assert!(sign_file(&key_file, "x", &payload).is_err());
    }
}
