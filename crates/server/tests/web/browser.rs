//! A headless Chromium for one test: chromedriver on a free loopback port, the browser with
//! a fresh profile and every network service of its own off (this machine has no network),
//! ended when the test ends, even by a panic. `source scripts/services/chromium.sh` installs
//! both programs; without them the tests fail, never pass.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::Server;

fn program(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(p) if !p.trim().is_empty() => p,
        _ if std::path::Path::new(default).exists() => default.to_owned(),
        _ => panic!("{var} is not set and {default} is missing: run `source scripts/services/chromium.sh` first (scripts/check.sh does)"),
    }
}

/// A browser session and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, `width` x 900 px.
    pub async fn start(width: u32) -> Browser {
        let driver_path = program("PRISMQ_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let browser_path = program("PRISMQ_TEST_CHROMIUM", "/usr/bin/chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_path}: {e}"));
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": browser_path,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},900"),
                ],
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let mut b =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            b.capabilities(caps.as_object().unwrap().clone());
            match b.connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver at {url} did not start a session: {e}"),
            }
        };
        let session = client
            .session_id()
            .await
            .unwrap()
            .expect("a WebDriver session id");
        client.set_window_size(width, 900).await.unwrap();
        Browser {
            client,
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    /// Opens `path` on `server`.
    pub async fn open(&self, server: &Server, path: &str) {
        self.client.goto(&server.url(path)).await.unwrap();
    }

    /// Signs in with `key` through the sign-in form.
    pub async fn sign_in(&self, server: &Server, key: &str) {
        self.open(server, "/signin").await;
        self.client
            .find(Locator::Id("key"))
            .await
            .unwrap()
            .send_keys(key)
            .await
            .unwrap();
        self.client
            .find(Locator::Css("form[action='/signin'] button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for_text("h1", "Overview").await;
    }

    /// Signs in with the keyboard alone: Tab to the key field, type, Enter.
    pub async fn sign_in_by_keyboard(&self, server: &Server, key: &str) {
        const TAB: &str = "\u{E004}";
        const ENTER: &str = "\u{E007}";
        self.open(server, "/signin").await;
        let mut on_key = false;
        for _ in 0..10 {
            self.client
                .active_element()
                .await
                .unwrap()
                .send_keys(TAB)
                .await
                .unwrap();
            let active = self.client.active_element().await.unwrap();
            if active.attr("id").await.unwrap().as_deref() == Some("key") {
                on_key = true;
                break;
            }
        }
        assert!(on_key, "Tab reaches the key field");
        let field = self.client.active_element().await.unwrap();
        field.send_keys(key).await.unwrap();
        field.send_keys(ENTER).await.unwrap();
        self.wait_for_text("h1", "Overview").await;
    }

    /// The form controls of the page that have neither a label nor an aria-label.
    pub async fn unlabelled(&self) -> Vec<String> {
        let v = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))\
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))\
                 .map(e => e.name || e.id || e.outerHTML);",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(v).unwrap()
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits up to 15 s until the first element matching `css` has text containing `want`.
    pub async fn wait_for_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if t.contains(want) {
                        return t;
                    }
                    last = t;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {want:?}; last text {last:?}");
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Saves a PNG screenshot as `target/web-screenshots/NAME.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Whether the page's document is wider than its window (a horizontal scroll bar).
    pub async fn overflows(&self) -> bool {
        self.client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap()
            .as_bool()
            .unwrap()
    }

    /// Ends the session (the browser quits) and chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Where the screenshots go: `target/web-screenshots` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("web-screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never reached close(): end the WebDriver session over plain
        // HTTP so chromedriver quits the browser, then stop chromedriver.
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
