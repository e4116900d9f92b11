//! The connection level, below the routes: half-sent requests time out, one address cannot hold every
//! connection, and the requests hyper refuses by itself still answer in the JSON error shape.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use fieldcheck_tests::TestServer;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// An upper bound for things that happen within a second or two, not an expected duration: a slow CI
/// machine may take long, a hung server would take forever.
const GENEROUS: Duration = Duration::from_secs(60);

fn addr(server: &TestServer) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().expect("the server listens on ip:port")
}

/// A connection from `from` (any address of 127/8 is this machine).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Everything the server sends until it closes the connection (a reset counts as a close).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(GENEROUS, stream.read(&mut buf)).await {
            Err(_) => panic!("the server neither answered nor closed within {GENEROUS:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads until one whole response with a `content-length` body has arrived (the connection may stay open).
async fn read_until_answered(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + length {
                return out;
            }
        }
        match tokio::time::timeout(GENEROUS, stream.read(&mut buf)).await {
            Err(_) => panic!("no whole answer within {GENEROUS:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` whole and reads the answer up to the close: `(status, headers, body)`.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> (u16, String, Value) {
    stream.write_all(request).await.unwrap();
    parse(&read_until_closed(stream).await)
}

fn parse(response: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(response);
    let (head, body) =
        text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete response: {text:?}"));
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_read_timeout() {
    let server = TestServer::start_with(&[("FIELDCHECK__SERVER__HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut stream = connect_from("127.0.0.1", addr(&server)).await;
    // The head's last empty line never comes: the request timeout would never start.
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: fieldcheck\r\nX-Slow: ").await.unwrap();
    let sent = Instant::now();
    let answer = read_until_closed(&mut stream).await;
    let waited = sent.elapsed();
    assert!(answer.is_empty(), "no answer, just a close: {:?}", String::from_utf8_lossy(&answer));
    assert!(waited >= Duration::from_secs(1), "closed after the timeout, not before: {waited:?}");

    // A whole request on the same server is answered as usual.
    let mut stream = connect_from("127.0.0.1", addr(&server)).await;
    let (status, _, body) =
        exchange(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: fieldcheck\r\nConnection: close\r\n\r\n")
            .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_request_whose_body_stalls_is_answered_408_in_the_error_shape() {
    let server = TestServer::start_with(&[("FIELDCHECK__SERVER__REQUEST_TIMEOUT_SECS", "1")]);
    let mut stream = connect_from("127.0.0.1", addr(&server)).await;
    // The head is complete, so the request timeout runs; the body promised never arrives in full.
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: fieldcheck\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    let (status, head, body) = parse(&read_until_answered(&mut stream).await);
    assert_eq!(status, 408, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body["code"], "request_timeout", "{body}");
    assert_eq!(body["details"]["request_timeout_secs"], 1);
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_refused_while_another_address_is_served() {
    let server = TestServer::start_with(&[
        ("FIELDCHECK__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "3"),
        ("FIELDCHECK__SERVER__HEADER_READ_TIMEOUT_SECS", "600"),
    ]);
    let to = addr(&server);
    // Three half-sent requests from one address hold all of its connections.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", to).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: fieldcheck\r\n").await.unwrap();
        held.push(s);
    }
    // The server accepts in order, so the fourth is judged after the three are counted.
    let mut fourth = connect_from("127.0.0.1", to).await;
    let (status, head, body) = parse(&read_until_closed(&mut fourth).await);
    assert_eq!(status, 429, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body["code"], "too_many_connections", "{body}");
    assert_eq!(body["details"]["max_connections_per_address"], 3);

    let request = b"GET /healthz HTTP/1.1\r\nHost: fieldcheck\r\nConnection: close\r\n\r\n";
    let mut other = connect_from("127.0.0.2", to).await;
    let (status, _, body) = exchange(&mut other, request).await;
    assert_eq!(status, 200, "another address is served: {body}");

    // A freed slot is usable again. The server learns of the close when it reads it, so ask until it has.
    drop(held.pop());
    let deadline = Instant::now() + GENEROUS;
    loop {
        let mut again = connect_from("127.0.0.1", to).await;
        let (status, _, body) = exchange(&mut again, request).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(Instant::now() < deadline, "the closed connection's slot was never freed");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn requests_hyper_refuses_itself_answer_in_the_error_shape() {
    let server = TestServer::start();
    let to = addr(&server);
    let long_path = format!("GET /api/v1/{} HTTP/1.1\r\nHost: fieldcheck\r\n\r\n", "a".repeat(100_000));
    let mut many_headers = String::from("GET /healthz HTTP/1.1\r\nHost: fieldcheck\r\n");
    for i in 0..500 {
        many_headers.push_str(&format!("X-Probe-{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");
    let cases: [(&str, Vec<u8>, u16, &str, &str); 3] = [
        ("a 100 KB path", long_path.into_bytes(), 414, "uri_too_long", "65534 bytes"),
        ("500 headers", many_headers.into_bytes(), 431, "headers_too_large", "more than 100 header fields"),
        (
            "a header name with a space",
            b"GET /healthz HTTP/1.1\r\nHost: fieldcheck\r\nBad Header: x\r\n\r\n".to_vec(),
            400,
            "malformed_request",
            "not valid HTTP/1.1",
        ),
    ];
    for (name, request, status, code, says) in cases {
        let mut stream = connect_from("127.0.0.1", to).await;
        let (got, head, body) = exchange(&mut stream, &request).await;
        assert_eq!(got, status, "{name}: {body}");
        assert!(head.contains("content-type: application/json"), "{name}: {head}");
        assert_eq!(body["code"], code, "{name}: {body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{name}: {body}");
        assert!(body.get("details").is_some(), "{name}: {body}");
    }
    // The server is unharmed.
    assert_eq!(server.api().get("/healthz").await.0, 200);
}
