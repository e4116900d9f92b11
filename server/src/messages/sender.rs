//! The reference sender behind `fieldcheck message sign|send`: what an integrator's system does, in the
//! fewest lines: read a payload, sign it as a compact JWS with the key file, POST it.
//!
//! `send` speaks HTTP/1.1 (hyper's client), over TLS (rustls) for an `https://` server, as a deployment
//! has it behind its TLS-terminating proxy: the system's roots are trusted, or only the CA of `--ca-file`
//! (a private CA, as the handheld's `--ca-file`).

use std::{io::Read, path::Path, sync::Arc};

use anyhow::{Context, bail};
use axum::{
    body::Body,
    http::{Uri, uri::Authority},
};
use ed25519_dalek::SigningKey;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        crypto::ring,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    },
};

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

/// A CA file is a few kB; anything much larger is not one.
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// The roots an `https://` server's certificate must chain to: the CA file's certificates only, or the
/// system's when there is none.
fn roots(ca_file: Option<&Path>) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let Some(path) = ca_file else {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        anyhow::ensure!(added > 0, "no CA certificates found on this system; pass --ca-file");
        return Ok(roots);
    };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("opening the CA file {}", path.display()))?
        .take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .with_context(|| format!("reading the CA file {}", path.display()))?;
    anyhow::ensure!(pem.len() as u64 <= MAX_CA_FILE_BYTES, "{} is too large for a CA file", path.display());
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.with_context(|| format!("{}: not a PEM certificate", path.display()))?;
        roots.add(cert).with_context(|| format!("{}: a certificate rustls cannot use", path.display()))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(roots)
}

/// POSTs signed messages to `<server>/api/v1/messages`: one as `application/jose`, several as a batch;
/// over TLS for `https://`, trusting `ca_file`'s CA (or the system's roots). Returns the status and the
/// JSON answer.
pub async fn send(server: &str, ca_file: Option<&Path>, signed: Vec<String>) -> anyhow::Result<(u16, Value)> {
    let base: Uri = server.parse().with_context(|| format!("`{server}` is not a URL"))?;
    let tls = match base.scheme_str() {
        Some("https") => true,
        Some("http") if ca_file.is_some() => bail!("--ca-file is for an https:// server"),
        Some("http") => false,
        _ => bail!("the server URL starts with http:// or https://, e.g. https://customs.example:443"),
    };
    let authority = base.authority().context("the server URL needs a host")?.clone();
    let (content_type, body) = match signed.as_slice() {
        [one] => ("application/jose", one.clone()),
        _ => ("application/json", json!({"messages": signed}).to_string()),
    };
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let host = bare_host(&authority);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let request = hyper::Request::post("/api/v1/messages")
        .header("host", authority.as_str())
        .header("content-type", content_type)
        .body(Body::from(body))?;
    if !tls {
        return exchange(stream, request).await;
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_file)?)
        .with_no_client_auth();
    let name =
        ServerName::try_from(host.to_owned()).with_context(|| format!("`{authority}` is not a host name"))?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS with {authority} (is its certificate signed by the CA you trust?)"))?;
    exchange(stream, request).await
}

/// The host to connect to and to check the certificate against: `Authority::host` keeps an IPv6
/// literal's brackets, which neither a socket address nor a certificate's name has.
fn bare_host(authority: &Authority) -> &str {
    let host = authority.host();
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// Sends the request on `stream` and reads the answer (at most 64 MiB: a batch of 1,000 answers is far less).
async fn exchange<S>(stream: S, request: hyper::Request<Body>) -> anyhow::Result<(u16, Value)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
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

    #[test]
    fn an_ipv6_literal_is_connected_to_and_named_without_its_brackets() {
        let at = |url: &str| url.parse::<Uri>().unwrap().authority().unwrap().clone();
        assert_eq!(bare_host(&at("https://[::1]:8443")), "::1");
        assert_eq!(bare_host(&at("https://customs.example:443")), "customs.example");
    }

    #[tokio::test]
    async fn a_batch_reaches_a_server_given_by_its_ipv6_address() {
        // A one-shot HTTP server on the IPv6 loopback: what `message send http://[::1]:…` connects to.
        let listener =
            tokio::net::TcpListener::bind("[::1]:0").await.expect("the machine has an IPv6 loopback");
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ends its headers");
                seen.extend_from_slice(&buf[..n]);
            }
            let body = br#"{"accepted":2}"#;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(body).await.unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        });
        let (status, answer) =
            send(&format!("http://[::1]:{port}"), None, vec!["a".into(), "b".into()]).await.unwrap();
        assert_eq!((status, answer), (200, json!({"accepted": 2})));
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /api/v1/messages "), "{request}");
    }
}
