//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver (chromedriver),
//! against the real server. `scripts/test.sh` installs `chromium` and `chromium-driver` when missing.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fieldcheck_tests::{
    TestServer,
    field::dispatched,
    monitoring::WebDriver,
    photos::{fixture, put_photo},
};

/// chromedriver on a free local port, killed on drop.
struct Driver {
    child: Child,
    base: String,
}

impl Driver {
    async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/test.sh installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => {
                    r.json::<serde_json::Value>().await.ok().is_some_and(|v| v["value"]["ready"] == true)
                }
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, base }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_supervisor_sees_a_dashboard_tile_change_after_an_api_action_without_reloading() {
    let server = TestServer::start();
    // Evidence for the map: a photo whose EXIF position is in Italy, for an instruction at Yangshan.
    let first = dispatched(&server, &["officer1"]).await;
    let officer = server.login("officer1").await;
    let (status, body) = put_photo(&officer, first, &fixture("gps_DSCN0010.jpg"), "image/jpeg").await;
    assert_eq!(status, 201, "{body}");
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = WebDriver::chromium(&driver.base, profile.path()).await;

    // Not signed in: the dashboard sends the browser to the login page.
    browser.goto(&format!("{}/dashboard", server.base)).await;
    assert!(browser.url().await.ends_with("/dashboard/login"), "{}", browser.url().await);
    browser.type_into("#username", "supervisor1").await;
    browser.type_into("#password", "demo-password").await;
    browser.click("#submit").await;
    let tile = "[data-tile=instructions] .value";
    let before = browser
        .wait_for(Duration::from_secs(20), "the dashboard after login", async |b| b.text(tile).await)
        .await;
    assert!(browser.url().await.ends_with("/dashboard"));
    assert_eq!(before, "1");
    let far = browser.script("return document.querySelectorAll('#map circle.photo.far').length;").await;
    assert_eq!(far, 1, "the photo taken far from its site is flagged on the map");
    browser
        .wait_for(Duration::from_secs(10), "the live stream to open", async |b| {
            b.text("#live").await.filter(|t| t.contains("live"))
        })
        .await;
    // Marks the page: a reload would lose it, so finding it afterwards proves there was none.
    browser.script("window.notReloaded = true; return null;").await;

    dispatched(&server, &["officer1"]).await;
    let after = browser
        .wait_for(Duration::from_secs(10), "the instructions tile to change", async |b| {
            b.text(tile).await.filter(|t| t != "1")
        })
        .await;
    assert_eq!(after, "2");
    assert_eq!(
        browser.script("return window.notReloaded === true;").await,
        true,
        "the page was not reloaded"
    );
    // The assignment is the last of the burst of events; the workload follows it.
    browser
        .wait_for(Duration::from_secs(10), "officer1's workload to show the assignment", async |b| {
            b.text("[data-officer=officer1] td:nth-child(3)").await.filter(|t| t == "2")
        })
        .await;
    let label = browser.text("[data-tile=overdue] .label").await.unwrap();
    assert!(label.contains("逾期"), "the Chinese label is in the page: {label}");

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    println!("dashboard screenshot: {}", path.display());
    browser.quit().await;
}
