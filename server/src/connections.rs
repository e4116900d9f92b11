//! What happens to a TCP connection before and around the router: how many one client address may hold
//! open, and the JSON shape of the errors hyper answers by itself.
//!
//! hyper refuses a request it cannot parse (a request target over 64 KiB → 414, more header fields than
//! `server.max_headers` or a head larger than its read buffer → 431, a malformed request line or header →
//! 400) before any service sees it, with an empty body. The limit on the request target is a constant in
//! hyper, so no layer of ours can see such a request and answer it; instead [`ShapedIo`] recognises hyper's
//! automatic answer on its way out and sends our `{code, message, details}` error in its place.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ErrorBody;

/// Open connections per client address, capped. A slot is held for a connection's lifetime.
#[derive(Debug)]
pub struct PeerLimits {
    /// 0 = no cap.
    max: usize,
    /// `std::sync::Mutex`: held for one map update, never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct PeerSlot {
    limits: Arc<PeerLimits>,
    ip: IpAddr,
}

impl PeerLimits {
    pub fn new(max: usize) -> Arc<PeerLimits> {
        Arc::new(PeerLimits { max, open: Mutex::new(HashMap::new()) })
    }

    /// A slot for a new connection from `ip`, or `None` when that address already holds `max`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        // An IPv4 client reaching a dual-stack socket shows up as ::ffff:a.b.c.d; count it as itself.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if self.max != 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PeerSlot { limits: self.clone(), ip })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The complete answer to a connection over the per-address cap, written before it is closed.
pub fn too_many_connections(max: usize) -> Vec<u8> {
    error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
        format!("this address already has {max} connections open; reuse them or close some"),
        json!({ "max_connections_per_address": max }),
    )
}

/// A whole HTTP/1.1 response carrying our error body, closing the connection.
fn error_response(status: StatusCode, code: &str, message: String, details: serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(&ErrorBody { code: code.into(), message, details })
        .expect("an error body always serialises");
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Our answer in place of hyper's empty one, by its status.
fn shaped(status: u16, max_headers: usize) -> Option<Vec<u8>> {
    let (status, code, message, details) = match status {
        400 => (
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "the request line or a header is not valid HTTP/1.1".to_string(),
            serde_json::Value::Null,
        ),
        414 => (
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request target (path and query) is longer than 65534 bytes".to_string(),
            json!({ "max_uri_bytes": 65534 }),
        ),
        431 => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request has more than {max_headers} header fields, or its head is too large"),
            json!({ "max_headers": max_headers }),
        ),
        _ => return None,
    };
    Some(error_response(status, code, message, details))
}

/// hyper's automatic error answer at the start of `buf`: its status and the length of its head. It is
/// recognised by what only it sends: a 400/414/431 with `content-length: 0` and neither a content type
/// nor the request id that the router puts on every response it makes.
fn automatic_error_head(buf: &[u8]) -> Option<(u16, usize)> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let automatic = head.contains("\r\ncontent-length: 0\r\n")
        && !head.contains("\r\ncontent-type:")
        && !head.contains("\r\nx-request-id:");
    automatic.then_some((status, end))
}

/// How long, and for how many bytes, a connection whose request was refused unread is drained after our
/// answer: closing a socket with unread input makes the kernel send a reset, which can destroy the answer
/// before the client reads it.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// The connection's stream, passing everything through except hyper's automatic error answers, which it
/// replaces by our error shape (see the module documentation).
pub struct ShapedIo<T> {
    inner: T,
    max_headers: usize,
    replacement: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// Set once our answer is out and the write side is shut: the input is then drained until this fires.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    drained: usize,
}

impl<T> ShapedIo<T> {
    pub fn new(inner: T, max_headers: usize) -> ShapedIo<T> {
        ShapedIo { inner, max_headers, replacement: None }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> ShapedIo<T> {
    /// Looks at the start of what hyper writes; an automatic error head is swallowed (reported written)
    /// and our answer queued instead.
    fn intercept(&mut self, buf: &[u8]) -> Option<usize> {
        if self.replacement.is_some() {
            // After its automatic answer hyper writes nothing more; should it, ours already stands.
            return Some(buf.len());
        }
        let (status, head_len) = automatic_error_head(buf)?;
        let bytes = shaped(status, self.max_headers)?;
        self.replacement = Some(Replacement { bytes, written: 0, linger: None, drained: 0 });
        Some(head_len)
    }

    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(r) = &mut self.replacement else { return Poll::Ready(Ok(())) };
        while r.written < r.bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            r.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ShapedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ShapedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(n) = this.intercept(buf) {
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // A response head always starts a write, in the first non-empty slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(n) = this.intercept(first)
        {
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        let Some(r) = &mut this.replacement else { return Pin::new(&mut this.inner).poll_shutdown(cx) };
        if r.linger.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            r.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let mut scratch = [0u8; 8192];
        loop {
            if r.linger.as_mut().is_some_and(|l| l.as_mut().poll(cx).is_ready()) || r.drained > LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => r.drained += buf.filled().len(),
                // The client is gone: nothing left to protect.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 04:13:07 GMT\r\n\r\n";

    #[test]
    fn hypers_automatic_answers_are_recognised_and_ours_are_not() {
        assert_eq!(automatic_error_head(HYPER_431), Some((431, HYPER_431.len())));
        let ours = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nx-request-id: 1\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error_head(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error_head(ok), None);
        assert_eq!(automatic_error_head(b"HTTP/1.1 431 partial head"), None);
    }

    #[tokio::test]
    async fn an_automatic_answer_goes_out_as_our_json_error_and_everything_else_unchanged() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        // The client has sent all it will, so the drain after the answer ends at once.
        client.shutdown().await.unwrap();
        let mut io = ShapedIo::new(server, 100);
        io.write_all(HYPER_431).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "headers_too_large");
        assert_eq!(body["details"]["max_headers"], 100);

        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut io = ShapedIo::new(server, 100);
        let normal = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        io.write_all(normal).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, normal);
    }

    #[test]
    fn the_per_address_cap_admits_up_to_max_and_frees_a_slot_when_a_connection_ends() {
        let limits = PeerLimits::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(mapped).unwrap();
        assert!(limits.admit(a).is_none(), "an IPv4-mapped address counts as the same client");
        assert!(limits.admit("127.0.0.2".parse().unwrap()).is_some(), "another address has its own slots");
        drop(first);
        assert_eq!(limits.open_from(a), 1);
        assert!(limits.admit(a).is_some());
        assert!(PeerLimits::new(0).admit(a).is_some(), "0 means no cap");
    }
}
