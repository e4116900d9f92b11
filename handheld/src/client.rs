//! HTTP to the server: JSON for login and registration, CBOR for sync batches. Network failures,
//! request timeouts (408) and 5xx answers are retried with exponential backoff (a flaky link is the normal
//! case in a yard); an expired access token is renewed once with the refresh token. Plain HTTP only for
//! now: no TLS.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use fieldcheck_sync::batch::{self, SyncRequest, SyncResponse};

pub struct Client {
    http: Http,
    pub base: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// Attempts per request before giving up (at least 1).
    pub attempts: u32,
    /// Requests sent, including retries: what "round trips" counts.
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// How long each sync request took, retries included (for the fleet benchmark's percentiles).
    pub latencies: Vec<Duration>,
    /// Attempts that were tried again (network errors, 408, 5xx).
    pub retries: u64,
    /// `503` answers: the server said it was saturated and when to come back.
    pub unavailable: u64,
}

/// The server's `{code, message}` error, kept whole so the CLI can show it.
#[derive(Debug, thiserror::Error)]
#[error("server refused ({status}): {code}: {message}")]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

impl Client {
    /// A client for the server at `base` (`http://` or `https://`). HTTPS trusts the system's CAs, plus
    /// the certificates of `private_ca` (PEM) when a site runs its own CA.
    pub fn new(base: &str, attempts: u32, private_ca: Option<&str>) -> Result<Client> {
        let mut builder = Http::builder().timeout(Duration::from_secs(60)).use_rustls_tls();
        if let Some(pem) = private_ca {
            for cert in private_ca_certificates(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("HTTP client")?;
        Ok(Client {
            http,
            base: server_url(base)?,
            access_token: None,
            refresh_token: None,
            attempts: attempts.max(1),
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            latencies: Vec::new(),
            retries: 0,
            unavailable: 0,
        })
    }

    /// Sends with retries; `build` makes a fresh request for every attempt.
    fn send(&mut self, build: &dyn Fn(&Http, Option<&str>) -> RequestBuilder) -> Result<Response> {
        let mut refreshed = false;
        let mut attempt = 0;
        let mut saturated_waits = 0;
        loop {
            attempt += 1;
            self.requests += 1;
            let result = build(&self.http, self.access_token.as_deref()).send();
            match result {
                Ok(resp) if resp.status().as_u16() == 401 && !refreshed && self.refresh_token.is_some() => {
                    refreshed = true;
                    self.refresh()?;
                }
                // 503: the server is saturated and refused before doing any work; it says when to come
                // back (`Retry-After`), which beats our own guess.
                // It did no work, so waiting it out does not use up an attempt; still bounded, at
                // `SATURATED_WAITS_PER_ATTEMPT` per attempt.
                Ok(resp)
                    if resp.status().as_u16() == 503
                        && saturated_waits < SATURATED_WAITS_PER_ATTEMPT * self.attempts =>
                {
                    saturated_waits += 1;
                    attempt -= 1;
                    self.unavailable += 1;
                    self.retries += 1;
                    let asked = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    wait_before_retry(attempt, asked)
                }
                // 408: the server's request timeout fired while our batch waited for the writer; it may
                // still have been stored. Sync is idempotent, so asking again is safe and settles it.
                Ok(resp)
                    if (resp.status().is_server_error() || resp.status().as_u16() == 408)
                        && attempt < self.attempts =>
                {
                    self.unavailable += u64::from(resp.status().as_u16() == 503);
                    self.retries += 1;
                    backoff(attempt)
                }
                Ok(resp) => {
                    self.unavailable += u64::from(resp.status().as_u16() == 503);
                    return Ok(resp);
                }
                Err(e) if attempt < self.attempts && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    eprintln!("network error ({e}); retrying");
                    self.retries += 1;
                    backoff(attempt)
                }
                Err(e) => return Err(e).context(format!("reaching {}", self.base)),
            }
        }
    }

    /// A new access token from the refresh token (the old one expired, or a WebSocket upgrade said 401).
    pub fn refresh(&mut self) -> Result<()> {
        let token = self.refresh_token.clone().context("no refresh token")?;
        let url = format!("{}/api/v1/auth/refresh", self.base);
        let resp = self.http.post(url).json(&json!({"refresh_token": token})).send()?;
        let tokens: Tokens = read_json(resp)?;
        self.access_token = Some(tokens.access_token);
        self.refresh_token = Some(tokens.refresh_token);
        Ok(())
    }

    pub fn post_json<T: DeserializeOwned>(&mut self, path: &str, body: &impl Serialize) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let body = serde_json::to_value(body)?;
        let resp = self.send(&|http, token| {
            let req = http.post(&url).json(&body);
            match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        })?;
        read_json(resp)
    }

    pub fn get_json<T: DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self.send(&|http, token| {
            let req = http.get(&url);
            match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        })?;
        read_json(resp)
    }

    pub fn login(&mut self, username: &str, password: &str, device_id: Option<&str>) -> Result<Tokens> {
        let tokens: Tokens = self.post_json(
            "/api/v1/auth/login",
            &json!({"username": username, "password": password, "device_id": device_id}),
        )?;
        self.access_token = Some(tokens.access_token.clone());
        self.refresh_token = Some(tokens.refresh_token.clone());
        Ok(tokens)
    }

    /// One batch round trip.
    pub fn sync(&mut self, request: &SyncRequest) -> Result<SyncResponse> {
        let url = format!("{}/api/v1/sync", self.base);
        let body = batch::encode(request);
        self.bytes_sent += body.len() as u64;
        let started = std::time::Instant::now();
        let resp = self.send(&|http, token| {
            let req = http.post(&url).header("content-type", batch::CONTENT_TYPE).body(body.clone());
            match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        })?;
        if !resp.status().is_success() {
            return Err(server_error(resp).into());
        }
        let bytes = resp.bytes().context("reading the sync response")?;
        self.latencies.push(started.elapsed());
        self.bytes_received += bytes.len() as u64;
        batch::decode(&bytes).context("the server's sync response")
    }
}

/// How one photo upload ended.
pub enum Upload {
    /// The photo store holds the bytes (now or from before).
    Stored,
    /// Refused for good: damaged, wrong hash, not an image, not our instruction.
    Refused(ServerError),
}

/// Chunk size for resumable photo uploads: small enough to cross a slow mobile link well within the
/// server's request timeout.
pub const PHOTO_CHUNK: usize = 256 * 1024;

impl Client {
    /// Uploads a photo by the resumable protocol (docs/api.md, "Photos"): start (or find the unfinished
    /// upload of these bytes), append chunks from the server's offset, finish. An interrupted upload
    /// resumes from what the server already holds, on the next sync if need be. `progress` hears the
    /// server's offset where the upload starts and after each chunk it acknowledged.
    pub fn upload_photo(
        &mut self,
        sha256: &str,
        instruction_id: i64,
        bytes: &[u8],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Upload> {
        let start = format!("{}/api/v1/photos/{sha256}/uploads", self.base);
        let body = json!({"instruction_id": instruction_id, "size": bytes.len()});
        let resp = self.send(&|http, token| with_token(http.post(&start).json(&body), token))?;
        if resp.status().is_client_error() {
            return Ok(Upload::Refused(server_error(resp)));
        }
        let status: Value = read_json(resp)?;
        if status["complete"] == json!(true) {
            return Ok(Upload::Stored);
        }
        let upload_id = status["upload_id"].as_str().context("the server named no upload")?.to_owned();
        let url = format!("{}/api/v1/photo-uploads/{upload_id}", self.base);
        let mut offset = status["offset"].as_u64().context("no offset")? as usize;
        progress(offset);
        while offset < bytes.len() {
            let chunk = &bytes[offset..(offset + PHOTO_CHUNK).min(bytes.len())];
            let resp = self.send(&|http, token| {
                let req = http
                    .patch(&url)
                    .header("content-type", "application/offset+octet-stream")
                    .header("upload-offset", offset.to_string())
                    .body(chunk.to_vec());
                with_token(req, token)
            })?;
            let code = resp.status().as_u16();
            if code == 204 {
                offset += chunk.len();
                self.bytes_sent += chunk.len() as u64;
                progress(offset);
                continue;
            }
            // Out of step with the server (a retried chunk that had landed, or a busy upload): ask.
            if code == 409 {
                let head = self.send(&|http, token| with_token(http.head(&url), token))?;
                offset = head
                    .headers()
                    .get("upload-offset")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .context("the server gave no offset")?;
                continue;
            }
            return Ok(Upload::Refused(server_error(resp)));
        }
        let finish = format!("{url}/finish");
        let resp = self.send(&|http, token| with_token(http.post(&finish), token))?;
        if resp.status().is_success() { Ok(Upload::Stored) } else { Ok(Upload::Refused(server_error(resp))) }
    }
}

fn with_token(req: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// How many `503 saturated` answers a request waits out per allowed attempt before it gives up.
const SATURATED_WAITS_PER_ATTEMPT: u32 = 4;

/// The wait before retrying after a `503`: what the server asked for (capped at 30 s, so a wrong header
/// cannot park the handheld for long), plus up to half a second of jitter so a fleet told the same
/// number does not come back in one wave; our own backoff when it asked for nothing.
fn wait_before_retry(attempt: u32, asked_secs: Option<u64>) {
    match asked_secs {
        Some(secs) => {
            // The clock's nanoseconds are random enough to spread a fleet.
            let jitter_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::from(d.subsec_nanos()) % 500);
            std::thread::sleep(Duration::from_millis(secs.min(30) * 1000 + jitter_ms));
        }
        None => backoff(attempt),
    }
}

fn backoff(attempt: u32) {
    // 200 ms, 400 ms, 800 ms … capped at 10 s.
    let ms = (200u64 << attempt.min(6).saturating_sub(1)).min(10_000);
    std::thread::sleep(Duration::from_millis(ms));
}

fn server_error(resp: Response) -> ServerError {
    let status = resp.status().as_u16();
    let body: Value = resp.json().unwrap_or(Value::Null);
    ServerError {
        status,
        code: body["code"].as_str().unwrap_or("unknown").to_owned(),
        message: body["message"].as_str().unwrap_or("no message").to_owned(),
    }
}

fn read_json<T: DeserializeOwned>(resp: Response) -> Result<T> {
    if !resp.status().is_success() {
        bail!(server_error(resp));
    }
    resp.json().context("reading the server's answer")
}

/// The certificates of a private CA file (PEM); refused when it holds none.
pub fn private_ca_certificates(pem: &str) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .context("the CA file is not PEM (-----BEGIN CERTIFICATE-----)")?;
    anyhow::ensure!(!certs.is_empty(), "the CA file holds no certificate (-----BEGIN CERTIFICATE-----)");
    Ok(certs)
}

/// The server's base URL as typed by an officer, checked before any request: `127.0.0.1:8080` alone would
/// otherwise fail deep inside the HTTP client as "relative URL without a base".
pub fn server_url(typed: &str) -> Result<String> {
    let base = typed.trim().trim_end_matches('/');
    match base.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(base.to_owned()),
        Some((scheme, _)) => anyhow::bail!(
            "the server address {typed:?} starts with {scheme}://; use http:// or https://, e.g. http://127.0.0.1:8080"
        ),
        None => {
            anyhow::bail!("the server address {typed:?} has no scheme; type it with one, e.g. http://{base}")
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::server_url;

    #[test]
    fn a_server_address_without_a_scheme_is_refused_with_what_to_type() {
        let err = server_url("127.0.0.1:8080").unwrap_err().to_string();
        assert!(err.contains("e.g. http://127.0.0.1:8080"), "{err}");
        assert!(server_url("ftp://host").is_err());
        assert_eq!(server_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(server_url("https://customs.example").unwrap(), "https://customs.example");
    }
}
