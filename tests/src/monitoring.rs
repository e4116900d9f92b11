//! Monitoring fixtures shared by the monitoring tests and `bench-monitor`: instructions written straight
//! into a stopped server's SQLite file (a hand-computed fixture, or 100,000 generated ones), a
//! Server-Sent Events reader, and a small WebDriver client for the browser test.
//!
//! Writing rows directly is for figures only: the figures read instructions, seals and assignments,
//! and a fixture with known times and states is the only way to know the right answer by hand. Foreign
//! keys are switched off on this connection, so the instructions need no
//! applications behind them.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::Api;

/// One instruction of a fixture; times in Unix milliseconds.
#[derive(Debug, Clone)]
pub struct FixtureInstruction {
    pub site: &'static str,
    pub state: &'static str,
    pub created_at: i64,
    pub deadline: i64,
    pub due_at: Option<i64>,
    pub state_since: i64,
    /// For approved ones: `conforming` or `non_conforming` (written as the seal).
    pub verdict: Option<&'static str>,
    pub officers: &'static [&'static str],
}

/// Writes `rows` into the database of a stopped server's data dir; answers their ids, in order.
pub fn insert_instructions(data_dir: &Path, rows: &[FixtureInstruction]) -> Vec<i64> {
    let mut c = Connection::open(data_dir.join("fieldcheck.sqlite3")).expect("open the server's database");
    c.pragma_update(None, "foreign_keys", "OFF").expect("fixture rows have no applications behind them");
    let tx = c.transaction().expect("transaction");
    let unit_of = |code: &str| -> (i64, i64) {
        tx.query_row("SELECT id, parent_id FROM customs_units WHERE code = ?1", [code], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or_else(|e| panic!("site {code}: {e}"))
    };
    let enterprise: i64 =
        tx.query_row("SELECT min(id) FROM enterprises", [], |r| r.get(0)).expect("an enterprise");
    let sealer: i64 = tx
        .query_row("SELECT id FROM users WHERE username = 'supervisor1'", [], |r| r.get(0))
        .expect("supervisor1");
    let base: i64 = tx
        .query_row("SELECT coalesce(max(application_id), 0) + 1000000 FROM instructions", [], |r| r.get(0))
        .unwrap();
    let mut sites = std::collections::HashMap::new();
    let mut officers = std::collections::HashMap::new();
    let mut ids = Vec::with_capacity(rows.len());
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO instructions (application_id, inspection_no, enterprise_id, unit_id, site_id, state, checklist,
                                           deadline, due_at, created_at, updated_at, state_since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '[]', ?7, ?8, ?9, ?10, ?10)",
            )
            .unwrap();
        let mut seal = tx
            .prepare(
                "INSERT INTO record_seals (instruction_id, heads, digest, verdict, sealed_by, sealed_at)
                 VALUES (?1, '[]', 'fixture', ?2, ?3, ?4)",
            )
            .unwrap();
        let mut assign = tx
            .prepare("INSERT INTO instruction_officers (instruction_id, officer_id, assigned_at) VALUES (?1, ?2, ?3)")
            .unwrap();
        for (n, r) in rows.iter().enumerate() {
            let (site, unit) = *sites.entry(r.site).or_insert_with(|| unit_of(r.site));
            let app = base + n as i64;
            insert
                .execute(params![
                    app,
                    format!("F{app:014}"),
                    enterprise,
                    unit,
                    site,
                    r.state,
                    r.deadline,
                    r.due_at,
                    r.created_at,
                    r.state_since
                ])
                .unwrap();
            let id = tx.last_insert_rowid();
            if let Some(v) = r.verdict {
                seal.execute(params![id, v, sealer, r.state_since]).unwrap();
            }
            for name in r.officers {
                let officer = *officers.entry(*name).or_insert_with(|| {
                    tx.query_row("SELECT id FROM users WHERE username = ?1", [name], |r| r.get::<_, i64>(0))
                        .unwrap_or_else(|e| panic!("officer {name}: {e}"))
                });
                assign.execute(params![id, officer, r.created_at]).unwrap();
            }
            ids.push(id);
        }
    }
    tx.commit().expect("commit the fixture");
    ids
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// A reader of `GET /api/v1/events`.
pub struct EventStream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
}

impl EventStream {
    /// Opens the stream as `api`'s caller (bearer token), resuming after `last_event_id` if given.
    pub async fn open(api: &Api, last_event_id: Option<i64>) -> EventStream {
        let mut req = reqwest::Client::new().get(format!("{}/api/v1/events", api.base));
        if let Some(t) = &api.token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        Self::from(req.send().await.expect("the stream opens")).await
    }

    /// Opens the stream at `url` (a stream token in it, no header).
    pub async fn open_url(url: &str) -> EventStream {
        Self::from(reqwest::Client::new().get(url).send().await.expect("the stream opens")).await
    }

    async fn from(resp: reqwest::Response) -> EventStream {
        EventStream {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped), or `None` when `deadline` passes first or the
    /// stream ends.
    pub async fn next_before(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && id.is_none() {
                    continue; // a comment or the retry line
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(SseEvent { id, event, data });
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"))
                }
                _ => return None,
            }
        }
    }

    /// Events until one satisfies `until` (included), within `within`; panics with what arrived otherwise.
    pub async fn collect_until(
        &mut self,
        within: Duration,
        until: impl Fn(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            match self.next_before(deadline).await {
                Some(e) => {
                    let done = until(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                None => panic!("no matching event within {within:?}; got {seen:#?}"),
            }
        }
    }
}

/// A minimal WebDriver (W3C) client over HTTP: enough to drive chromedriver in the browser test.
pub struct WebDriver {
    base: String,
    session: String,
    http: reqwest::Client,
}

impl WebDriver {
    /// A new headless Chromium session with a fresh profile directory.
    pub async fn chromium(driver_base: &str, profile: &Path) -> WebDriver {
        let http = reqwest::Client::new();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let resp: Value = http
            .post(format!("{driver_base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        let session =
            resp["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {resp}")).to_string();
        WebDriver { base: driver_base.to_string(), session, http }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req.send().await.expect("chromedriver answers").json().await.expect("JSON");
        if resp["value"].get("error").is_some() {
            panic!("webdriver {path}: {resp}");
        }
        resp["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_string()
    }

    /// Runs a script in the page and answers its return value.
    pub async fn script(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .await;
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element id").to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/value"), Some(json!({"text": text}))).await;
    }

    pub async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// The text of the first element matching `css`, or `None` if there is none.
    pub async fn text(&self, css: &str) -> Option<String> {
        let script = format!(
            "var e = document.querySelector({}); return e ? e.textContent.trim() : null;",
            serde_json::to_string(css).unwrap()
        );
        self.script(&script).await.as_str().map(str::to_owned)
    }

    /// Polls `check` until it answers `Some`, or panics after `within`.
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        mut check: impl AsyncFnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = check(self).await {
                return v;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 PNG"))
            .expect("PNG bytes")
    }

    pub async fn quit(&self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
    }
}
