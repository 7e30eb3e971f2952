//! A real browser for the tests: Debian's headless Chromium driven over W3C WebDriver by
//! its `chromedriver`, both started by the test on 127.0.0.1 and stopped by PID.
//!
//! What a test needs to act as a parent: start the servers ([`retry_stack`], or any
//! `pin_support::Stack`), [`open`] a browser (desktop or phone, with or
//! without JavaScript), [`Browser::goto`], [`Browser::click`], type with the keyboard
//! ([`Browser::press`]), read the child Pronote shows ([`Browser::landed`]), save
//! [`Browser::screenshot`]s under `target/browser-screenshots/`, and fail on any
//! Content-Security-Policy violation in the browser's log
//! ([`Browser::assert_no_csp_violation`], also run by [`Browser::quit`]). What the
//! browser itself fetched comes from Chromium's network log ([`Browser::redirects_from`]).
//!
//! Without a chromedriver on `PATH` (or in `BONENFANT_CHROMEDRIVER`) the tests say so on
//! one line and pass, except in CI (`CI=true`), where a missing browser fails the run:
//! `.ci/run` installs `chromium` and `chromium-driver`.
#![allow(dead_code)] // each test uses a different part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bonenfant::config::PinMode;
use bonenfant::sim::http as web;
use bonenfant::sim::{EntOptions, Pick, PupilRef};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request};
use serde_json::{json, Value};
use url::Url;

use crate::pin_support::{self, Stack};

/// How long a page may take to get where a test expects it.
const PATIENCE: Duration = Duration::from_secs(20);

/// The sim ENT with OSE's random child (seeded), bonenfant in `--pin retry` in front
/// of it with the committed directory's index, the sim Pronote behind: the stack the
/// browser tests drive.
pub async fn retry_stack(seed: u64) -> Stack {
    Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Random,
            ..EntOptions::ose_random(seed)
        },
        PinMode::Retry,
        |raw| raw.retry_max = Some(32),
    )
    .await
}

/// One browser at a time: two cores, and each Chromium takes most of one.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The browser a test asks for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// A phone's screen (390 × 844 CSS pixels, mobile layout, a phone's user agent)
    /// instead of a desktop window.
    pub phone: bool,
    pub javascript: bool,
}

impl Options {
    pub const DESKTOP: Options = Options {
        phone: false,
        javascript: true,
    };
    pub const PHONE: Options = Options {
        phone: true,
        javascript: true,
    };
    pub const PHONE_WITHOUT_JAVASCRIPT: Options = Options {
        phone: true,
        javascript: false,
    };
}

/// The phone's viewport width, in CSS pixels (an iPhone 12 to 15).
pub const PHONE_WIDTH: i64 = 390;

/// Where screenshots go: `target/browser-screenshots/`, which CI keeps.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("BONENFANT_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap_or(Path::new("target"))
                .join("browser-screenshots")
        })
}

/// The chromedriver to use, if any.
fn chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BONENFANT_CHROMEDRIVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

/// The Chromium binary, when it is not where chromedriver looks by itself.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BONENFANT_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A headless Chromium for `test` (the screenshots' prefix), or `None` after a
/// one-line note when this machine has no chromedriver. In CI, no chromedriver is a
/// failure.
#[allow(clippy::print_stderr)] // the one line that says a test was skipped
pub async fn open(test: &str, options: Options) -> Option<Browser> {
    let Some(driver) = chromedriver() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: chromedriver not found, and CI must run the browser suite (.ci/run installs chromium-driver)");
        }
        eprintln!("{test}: skipped, no chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let turn = ONE_AT_A_TIME.lock().await;
    let profile = tempfile::tempdir().expect("a profile directory");
    let port = free_port();
    let process = Command::new(&driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .arg("--log-level=SEVERE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
    let mut browser = Browser {
        driver: DriverProcess {
            child: process,
            port,
            session: None,
        },
        client: web::client(),
        base: Url::parse(&format!("http://127.0.0.1:{port}/")).expect("loopback URL"),
        test: test.to_owned(),
        log: Vec::new(),
        documents: Vec::new(),
        profile,
        _turn: turn,
    };
    browser.wait_for_driver().await;
    let session = browser.new_session(options).await;
    browser.driver.session = Some(session);
    Some(browser)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The chromedriver process: on drop (also when a test panics), its session is
/// deleted, which closes Chromium, then the driver is killed by its PID.
struct DriverProcess {
    child: Child,
    port: u16,
    session: Option<String>,
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            delete_session_blocking(self.port, &session);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DELETE /session/{id}` without a runtime (drop may run while a test unwinds).
fn delete_session_blocking(port: u16, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    ) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// One element of the current page (a WebDriver element reference).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element(String);

/// A key for [`Browser::press`], as WebDriver codes it.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    Tab,
    Enter,
    Space,
}

impl Key {
    fn code(self) -> &'static str {
        match self {
            Key::Tab => "\u{e004}",
            Key::Enter => "\u{e007}",
            Key::Space => "\u{e00d}",
        }
    }
}

/// A line of the browser's console log.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// A request the browser made for a page (a navigation or one of its redirects).
#[derive(Clone, Debug)]
pub struct DocumentRequest {
    pub url: Url,
    /// The page that answered with a redirect to `url`, if this request follows one.
    pub redirected_by: Option<Url>,
}

/// A headless Chromium under test.
pub struct Browser {
    driver: DriverProcess,
    client: web::HttpClient,
    base: Url,
    test: String,
    /// Every console line read so far (reading the log empties the browser's).
    log: Vec<LogLine>,
    /// Every page request of the browser read so far from its network log.
    documents: Vec<DocumentRequest>,
    profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    async fn wait_for_driver(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(status) = self.request(Method::GET, "status", None).await {
                if status["value"]["ready"] == json!(true) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn new_session(&self, options: Options) -> String {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-sync".to_owned(),
            "--lang=fr-FR".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", self.profile.path().display()),
        ];
        if !options.phone {
            args.push("--window-size=1280,900".to_owned());
        }
        let mut prefs = json!({
            "credentials_enable_service": false,
            "profile.password_manager_enabled": false,
            "profile.password_manager_leak_detection": false,
            "intl.accept_languages": "fr-FR,fr",
        });
        if !options.javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let mut chrome = json!({ "args": args, "prefs": prefs });
        if let Some(binary) = chromium() {
            chrome["binary"] = json!(binary);
        }
        if options.phone {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": PHONE_WIDTH,
                    "height": 844,
                    "pixelRatio": 2.0,
                    "mobile": true,
                    // Touch emulation with JavaScript off hangs chromedriver's clicks
                    // (Chromium 156); a click stands in for the tap.
                    "touch": false
                },
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
            });
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": chrome,
                    // `performance`: Chromium's network events, to count the redirects
                    // the browser itself followed.
                    "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" }
                }
            }
        });
        let answer = self
            .request(Method::POST, "session", Some(capabilities))
            .await
            .unwrap_or_else(|e| panic!("{}: no browser session: {e}", self.test));
        answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {answer}"))
            .to_owned()
    }

    /// One WebDriver request; `Err` carries the driver's error or the transport's.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = self.base.join(path).map_err(|e| e.to_string())?;
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(web::Body::new(Bytes::from(bytes)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .map_err(|_| format!("{path}: chromedriver did not answer"))?
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // Screenshots are megabytes of base64: no cap on what the local driver says.
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map_err(|e| format!("{path}: unreadable answer: {e}"))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("{path}: {status} {}", value["value"]))
        }
    }

    /// A request in this browser's session; panics on a WebDriver error.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let session = self.driver.session.as_deref().expect("a session");
        let full = format!("session/{session}/{path}");
        match self.request(method, &full, body).await {
            Ok(answer) => answer["value"].clone(),
            Err(e) => panic!("{}: {e}", self.test),
        }
    }

    /// Opens `url`, as typing it in the address bar; returns once it has loaded.
    pub async fn goto(&self, url: &Url) {
        self.command(Method::POST, "url", Some(json!({ "url": url.as_str() })))
            .await;
    }

    pub async fn current_url(&self) -> Url {
        let value = self.command(Method::GET, "url", None).await;
        Url::parse(value.as_str().expect("a URL")).expect("the browser's URL parses")
    }

    /// The first element matching the CSS `selector`, if any.
    pub async fn find(&self, selector: &str) -> Option<Element> {
        self.find_all(selector).await.into_iter().next()
    }

    /// Every element matching the CSS `selector`.
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let value = self
            .command(
                Method::POST,
                "elements",
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_object()?.values().next()?.as_str())
            .map(|id| Element(id.to_owned()))
            .collect()
    }

    /// The element matching `selector`, waiting for it to appear.
    pub async fn wait_for(&self, selector: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(element) = self.find(selector).await {
                return element;
            }
            if Instant::now() > deadline {
                let url = self.current_url().await;
                panic!(
                    "{}: no {selector} on {url} after {PATIENCE:?}:\n{}",
                    self.test,
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `element` with the mouse (a tap on a phone).
    pub async fn click(&self, element: &Element) {
        let path = format!("element/{}/click", element.0);
        self.command(Method::POST, &path, Some(json!({}))).await;
    }

    /// Clicks `element`, a link or a button that leaves the page, and returns once the
    /// page it was on is gone. The click may return before the next page loads (a
    /// server-side re-roll takes a while); a page that follows can look the same as
    /// the one it replaces (the give-up page after "Réessayer"), so only the clicked
    /// element going stale says the browser moved on.
    pub async fn click_and_leave(&self, element: &Element) {
        self.click(element).await;
        let session = self.driver.session.as_deref().expect("a session");
        let path = format!("session/{session}/element/{}/text", element.0);
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.request(Method::GET, &path, None).await {
                Err(e) if e.contains("stale element") || e.contains("no such element") => return,
                Err(e) => panic!("{}: {e}", self.test),
                Ok(_) if Instant::now() > deadline => {
                    panic!("{}: still on the page after {PATIENCE:?}", self.test)
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The element whose visible text contains `text`, among those matching `selector`.
    pub async fn find_by_text(&self, selector: &str, text: &str) -> Option<Element> {
        for element in self.find_all(selector).await {
            if self.text(&element).await.contains(text) {
                return Some(element);
            }
        }
        None
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        let value = self
            .command(Method::GET, &format!("element/{}/text", element.0), None)
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute of the element.
    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let path = format!("element/{}/attribute/{name}", element.0);
        let value = self.command(Method::GET, &path, None).await;
        value.as_str().map(str::to_owned)
    }

    /// The element's box, in CSS pixels: (x, y, width, height).
    pub async fn rect(&self, element: &Element) -> (f64, f64, f64, f64) {
        let value = self
            .command(Method::GET, &format!("element/{}/rect", element.0), None)
            .await;
        let n = |k: &str| value[k].as_f64().unwrap_or(f64::NAN);
        (n("x"), n("y"), n("width"), n("height"))
    }

    /// Types `text` into a field, as a person does (focus, then keys).
    pub async fn type_into(&self, element: &Element, text: &str) {
        let path = format!("element/{}/value", element.0);
        self.command(Method::POST, &path, Some(json!({ "text": text })))
            .await;
    }

    /// Presses and releases `key` on whatever has the focus.
    pub async fn press(&self, key: Key) {
        let actions = json!({
            "actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [
                    { "type": "keyDown", "value": key.code() },
                    { "type": "keyUp", "value": key.code() }
                ]
            }]
        });
        self.command(Method::POST, "actions", Some(actions)).await;
    }

    /// The element that has the keyboard focus.
    pub async fn focused(&self) -> Option<Element> {
        let session = self.driver.session.as_deref().expect("a session");
        let answer = self
            .request(
                Method::GET,
                &format!("session/{session}/element/active"),
                None,
            )
            .await
            .ok()?;
        let id = answer["value"].as_object()?.values().next()?.as_str()?;
        Some(Element(id.to_owned()))
    }

    /// Presses Tab until the focus is on an element whose text contains `text` (at
    /// most `max` times), as a keyboard user reaches a button.
    pub async fn tab_to(&self, text: &str, max: usize) -> Element {
        for _ in 0..max {
            self.press(Key::Tab).await;
            if let Some(focused) = self.focused().await {
                if self.text(&focused).await.contains(text) {
                    return focused;
                }
            }
        }
        panic!("{}: Tab never reached {text:?}", self.test);
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        let value = self.command(Method::GET, "source", None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// What the test Pronote shows once the browser is on one of its pages (waits for
    /// one: a pin answers with a page that refreshes to Pronote): its outcome
    /// (`landed`, `unknown_user`, `failure`) and the child, when it shows one.
    pub async fn on_pronote(&mut self) -> (String, Option<PupilRef>) {
        let deadline = Instant::now() + PATIENCE;
        let main = loop {
            if let Some(main) = self.find("main[data-outcome]").await {
                break main;
            }
            if Instant::now() > deadline {
                // Say why the browser stayed put: a blocked navigation is logged.
                let url = self.current_url().await;
                let violations = self.csp_violations().await;
                panic!(
                    "{}: no Pronote page after {PATIENCE:?}, still on {url}; CSP violations: {violations:#?}",
                    self.test
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let outcome = self
            .attribute(&main, "data-outcome")
            .await
            .unwrap_or_default();
        let pupil = match self.attribute(&main, "data-pupil").await {
            Some(eleve_id) => Some(PupilRef {
                uai: self.attribute(&main, "data-uai").await.unwrap_or_default(),
                eleve_id,
            }),
            None => None,
        };
        (outcome, pupil)
    }

    /// The child the test Pronote shows: [`Browser::on_pronote`], which must be a
    /// child's space.
    pub async fn landed(&mut self) -> PupilRef {
        match self.on_pronote().await {
            (outcome, Some(pupil)) if outcome == "landed" => pupil,
            _ => panic!(
                "{}: Pronote did not open a child's space:\n{}",
                self.test,
                self.source().await
            ),
        }
    }

    /// Logs in on the ENT's form the browser is on: types the login and password and
    /// submits with a click, as a parent does.
    pub async fn sign_in(&self, login: &str, password: &str) {
        let user = self.wait_for("input[name=username]").await;
        self.type_into(&user, login).await;
        let secret = self.wait_for("input[name=password]").await;
        self.type_into(&secret, password).await;
        let submit = self.wait_for("form button[type=submit]").await;
        self.click(&submit).await;
    }

    /// Saves a screenshot of the viewport as
    /// `target/browser-screenshots/{test}-{label}.png` and returns its path.
    pub async fn screenshot(&self, label: &str) -> PathBuf {
        let value = self.command(Method::GET, "screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{}-{label}.png", self.test));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Forgets every cookie of every site, as a new browser would start: the next
    /// login asks for the password again.
    pub async fn clear_cookies(&self) {
        let command = json!({ "cmd": "Network.clearBrowserCookies", "params": {} });
        self.command(Method::POST, "goog/cdp/execute", Some(command))
            .await;
    }

    /// Forgets the cookie `name` that `url`'s site set, as when a site's session ends.
    pub async fn delete_cookie(&self, name: &str, url: &Url) {
        let command = json!({
            "cmd": "Network.deleteCookies",
            "params": { "name": name, "url": url.as_str() }
        });
        self.command(Method::POST, "goog/cdp/execute", Some(command))
            .await;
    }

    /// Shows `html` as a page of its own (a `data:` URL), for a page a test cannot
    /// stop on otherwise.
    pub async fn show_html(&self, html: &str) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(html);
        let url = Url::parse(&format!("data:text/html;charset=utf-8;base64,{encoded}"))
            .expect("a data URL");
        self.goto(&url).await;
    }

    /// The pages the browser requested so far, from Chromium's network log, in order.
    pub async fn documents(&mut self) -> &[DocumentRequest] {
        let fresh = self
            .command(
                Method::POST,
                "se/log",
                Some(json!({ "type": "performance" })),
            )
            .await;
        for line in fresh.as_array().into_iter().flatten() {
            let Some(event) = line["message"]
                .as_str()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
            else {
                continue;
            };
            let event = &event["message"];
            let params = &event["params"];
            if event["method"] != "Network.requestWillBeSent" || params["type"] != "Document" {
                continue;
            }
            let Some(url) = params["request"]["url"]
                .as_str()
                .and_then(|u| Url::parse(u).ok())
            else {
                continue;
            };
            self.documents.push(DocumentRequest {
                url,
                redirected_by: params["redirectResponse"]["url"]
                    .as_str()
                    .and_then(|u| Url::parse(u).ok()),
            });
        }
        &self.documents
    }

    /// How many redirects the browser followed from pages of `origin`'s server since
    /// it started.
    pub async fn redirects_from(&mut self, origin: &Url) -> usize {
        let origin = origin.origin();
        self.documents()
            .await
            .iter()
            .filter(|d| {
                d.redirected_by
                    .as_ref()
                    .is_some_and(|r| r.origin() == origin)
            })
            .count()
    }

    /// The console lines logged since the browser started.
    pub async fn log(&mut self) -> &[LogLine] {
        let fresh = self
            .command(Method::POST, "se/log", Some(json!({ "type": "browser" })))
            .await;
        for line in fresh.as_array().into_iter().flatten() {
            self.log.push(LogLine {
                level: line["level"].as_str().unwrap_or_default().to_owned(),
                message: line["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        &self.log
    }

    /// The Content-Security-Policy violations Chromium reported so far ("Refused to…
    /// because it violates the following Content Security Policy directive", "Sending
    /// form data to … violates…").
    pub async fn csp_violations(&mut self) -> Vec<String> {
        self.log()
            .await
            .iter()
            .filter(|line| line.message.contains("Content Security Policy"))
            .map(|line| line.message.clone())
            .collect()
    }

    pub async fn assert_no_csp_violation(&mut self) {
        let violations = self.csp_violations().await;
        assert!(
            violations.is_empty(),
            "{}: Content-Security-Policy violations:\n{}",
            self.test,
            violations.join("\n")
        );
    }

    /// Checks the log for CSP violations one last time, then closes the browser and
    /// stops chromedriver.
    pub async fn quit(mut self) {
        self.assert_no_csp_violation().await;
        if let Some(session) = self.driver.session.take() {
            let _ = self
                .request(Method::DELETE, &format!("session/{session}"), None)
                .await;
        }
    }
}
