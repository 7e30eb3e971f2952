//! The test Pronote: one instance per establishment of the [`Directory`], addressed by
//! path (`/0330012a/pronote/parent.html`, loopback) or by host (`0330012a.…/pronote/…`).
//!
//! Like a CAS client: without its session cookie it sends the browser to the ENT's
//! `/login`; with a `ticket` it validates it on the back channel, keeps the designated
//! pupil in a session and renders the "Espace Parents" of that child, or "utilisateur
//! inconnu" when the designated child is not a pupil of this establishment. Every
//! landing is recorded for tests and the demo. Single-logout POSTs drop the session.
//!
//! Which child landed is read the way a real Pronote would (`answer.rs`), never with
//! bonenfant's own parser or pupil rules: it is a witness of the proxy, not a copy.

mod answer;
mod pages;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use rand::Rng;
use tokio::net::TcpListener;
use url::Url;

use self::answer::Answer;
use super::http::{self as web, Body, HttpClient, Server};
use crate::pupil::directory::{Directory, Establishment};
use crate::pupil::{PupilKey, Uai};

/// Pronote's session cookie, scoped to one instance's path.
pub const SESSION_COOKIE: &str = "PRONOTE_SID";

/// How long Pronote waits for the CAS back channel.
const BACK_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Which validation endpoint and format Pronote uses on the back channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum ValidationMode {
    /// `GET /serviceValidate` (CAS 2), XML: what Pronote uses with ENTs.
    #[default]
    #[value(name = "serviceValidate")]
    ServiceValidate,
    /// `GET /p3/serviceValidate` (CAS 3), XML.
    #[value(name = "p3")]
    P3ServiceValidate,
    /// `GET /serviceValidate?format=JSON`.
    #[value(name = "json")]
    Json,
    /// `POST /samlValidate?TARGET=…` with a SOAP body (SAML 1.1).
    #[value(name = "samlValidate")]
    SamlValidate,
}

/// How the test Pronote behaves.
#[derive(Clone, Debug)]
pub struct PronoteOptions {
    /// The CAS base URL (`http://HOST/cas`) for both the browser's login redirect and the
    /// back channel; in tests and the demo, the proxy.
    pub cas_base: Url,
    pub validation: ValidationMode,
}

/// How a landing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LandingOutcome {
    /// On the designated child's page.
    Landed,
    /// The ticket was good but designated no pupil of this establishment.
    UnknownUser,
    /// The validation failed (CAS failure, unreadable answer, back channel down).
    Failure,
}

/// One ticket Pronote validated, and where it left the parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landing {
    /// The establishment of this Pronote instance.
    pub uai: String,
    pub outcome: LandingOutcome,
    /// The pupil the assertion designated (first designation), known here or not.
    pub designated: Option<PupilKey>,
    /// `cas:user`, on success.
    pub principal: Option<String>,
    /// The ticket validated.
    pub ticket: String,
    /// The service URL it was validated for.
    pub service: String,
    /// The CAS failure code, or `sim.pronote.back_channel` / `sim.pronote.unreadable`.
    pub failure: Option<String>,
}

/// The test Pronote. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct TestPronote {
    state: Arc<PronoteState>,
}

/// A test Pronote running on its own task; dropping it stops it.
pub struct PronoteHandle {
    pub pronote: TestPronote,
    server: Server,
}

struct PronoteState {
    directory: Arc<Directory>,
    /// Parent-record jointure → the record's first child's jointure, for dialects that
    /// name the child only through the record (Laclasse).
    records: HashMap<String, String>,
    options: PronoteOptions,
    /// Where the back channel validates when it differs from `options.cas_base`: only
    /// the back channel goes through the proxy (deployment mode 2).
    back_channel: Option<Url>,
    client: HttpClient,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Session cookie value → landing.
    sessions: HashMap<String, Landing>,
    landings: Vec<Landing>,
    /// Single-logout requests that named a live session.
    logouts: u64,
}

/// Where a request is addressed.
struct Instance<'a> {
    establishment: &'a Establishment,
    /// `/0330012a/pronote` (path style) or `/pronote` (host style): the cookie path.
    prefix: String,
}

// === impl ValidationMode ===

impl ValidationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationMode::ServiceValidate => "serviceValidate",
            ValidationMode::P3ServiceValidate => "p3",
            ValidationMode::Json => "json",
            ValidationMode::SamlValidate => "samlValidate",
        }
    }
}

// === impl PronoteOptions ===

impl PronoteOptions {
    /// `serviceValidate` against `cas_base`.
    pub fn new(cas_base: Url) -> Self {
        Self {
            cas_base,
            validation: ValidationMode::default(),
        }
    }
}

// === impl TestPronote ===

impl TestPronote {
    pub fn new(directory: Arc<Directory>, options: PronoteOptions) -> Self {
        Self::build(directory, options, None)
    }

    /// Browsers log in at `options.cas_base` but tickets are validated at `back_channel`
    /// (deployment mode 2: only Pronote's validation URL points at the proxy).
    pub fn with_back_channel(
        directory: Arc<Directory>,
        options: PronoteOptions,
        back_channel: Url,
    ) -> Self {
        Self::build(directory, options, Some(back_channel))
    }

    fn build(
        directory: Arc<Directory>,
        options: PronoteOptions,
        back_channel: Option<Url>,
    ) -> Self {
        let records = directory
            .parents()
            .iter()
            .flat_map(|parent| &parent.records)
            .filter_map(|r| Some((r.jointure.clone(), r.children.first()?.clone())))
            .collect();
        Self {
            state: Arc::new(PronoteState {
                records,
                directory,
                options,
                back_channel,
                client: web::client(),
                inner: Mutex::new(Inner::default()),
            }),
        }
    }

    /// Every landing so far, in order.
    pub fn landings(&self) -> Vec<Landing> {
        self.state.lock().landings.clone()
    }

    /// Live Pronote sessions.
    pub fn sessions(&self) -> usize {
        self.state.lock().sessions.len()
    }

    /// Single-logout requests that ended a session.
    pub fn logouts(&self) -> u64 {
        self.state.lock().logouts
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        web::serve_handler(listener, self.state, shutdown).await
    }

    /// Starts serving on `listener` in the background.
    pub fn spawn(self, listener: TcpListener) -> io::Result<PronoteHandle> {
        let pronote = self.clone();
        let server = Server::spawn(listener, move |listener, shutdown| {
            self.serve(listener, shutdown)
        })?;
        Ok(PronoteHandle { pronote, server })
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn spawn_local(
        directory: Arc<Directory>,
        options: PronoteOptions,
    ) -> io::Result<PronoteHandle> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::new(directory, options).spawn(listener)
    }
}

/// Serves the test Pronote on `listener` until `shutdown` completes.
pub async fn serve_pronote(
    listener: TcpListener,
    directory: Arc<Directory>,
    options: PronoteOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    TestPronote::new(directory, options)
        .serve(listener, shutdown)
        .await
}

// === impl PronoteHandle ===

impl PronoteHandle {
    /// `http://ADDR/`: the base of every instance's path-style URL.
    pub fn base_url(&self) -> &Url {
        self.server.base_url()
    }

    /// The parent page of establishment `uai`.
    pub fn parent_page(&self, uai: &str) -> Option<Url> {
        super::directory::pronote_url(self.server.base_url(), uai)
    }

    pub fn landings(&self) -> Vec<Landing> {
        self.pronote.landings()
    }

    pub async fn stop(self) -> io::Result<()> {
        self.server.stop().await
    }
}

// === impl PronoteState ===

impl web::Handler for PronoteState {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        self.route(request).await
    }
}

impl PronoteState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost")
            .to_owned();
        let path = parts.uri.path().to_owned();
        if path == "/" && parts.method == Method::GET {
            return web::html(StatusCode::OK, self.index_page(&host));
        }
        let Some(instance) = self.locate(&host, &path) else {
            return web::html(StatusCode::NOT_FOUND, pages::not_found());
        };
        match parts.method {
            Method::GET => {
                let query = parts.uri.query().unwrap_or("");
                let service = format!("http://{host}{path}");
                let ticket = web::param(query.as_bytes(), "ticket");
                let session = self.session(&instance, &parts.headers);
                match (ticket, session) {
                    // A reload of the landing URL: the ticket is spent, the session stays.
                    (Some(ticket), Some(landing)) if landing.ticket == ticket => {
                        self.show(&instance, &service, &landing)
                    }
                    (Some(ticket), _) => self.land(&instance, &service, ticket).await,
                    (None, Some(landing)) => self.show(&instance, &service, &landing),
                    (None, None) => web::redirect(self.login_url(&service).as_str()),
                }
            }
            Method::POST => {
                let content_type = parts
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let body = web::read_body(body).await.unwrap_or_default();
                self.single_logout(content_type, &body)
            }
            _ => web::respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "method not allowed\n",
            ),
        }
    }

    /// Which instance `host` + `path` addresses: `/UAI/pronote/PAGE.html`, or
    /// `UAI.…` + `/pronote/PAGE.html`.
    fn locate(&self, host: &str, path: &str) -> Option<Instance<'_>> {
        let is_page = |rest: &str| rest.ends_with(".html") && !rest.contains('/');
        let mut segments = path.trim_start_matches('/').splitn(3, '/');
        if let (Some(uai), Some("pronote"), Some(rest)) =
            (segments.next(), segments.next(), segments.next())
        {
            if let Some(establishment) = self.directory.establishment(uai).filter(|_| is_page(rest))
            {
                return Some(Instance {
                    establishment,
                    prefix: format!("/{uai}/pronote"),
                });
            }
        }
        let rest = path.strip_prefix("/pronote/")?;
        let label = host.split(['.', ':']).next()?;
        let establishment = self
            .directory
            .establishment(label)
            .filter(|_| is_page(rest))?;
        Some(Instance {
            establishment,
            prefix: "/pronote".to_owned(),
        })
    }

    /// This instance's session named by the request's cookie.
    fn session(&self, instance: &Instance<'_>, headers: &http::HeaderMap) -> Option<Landing> {
        let sid = web::cookie(headers, SESSION_COOKIE)?;
        self.lock()
            .sessions
            .get(&sid)
            .filter(|l| l.uai == instance.establishment.uai)
            .cloned()
    }

    fn show(&self, instance: &Instance<'_>, service: &str, landing: &Landing) -> Response<Body> {
        let body = self.render(instance.establishment, landing, &self.login_url(service));
        web::html(StatusCode::OK, body)
    }

    /// `<cas>/login?service=<service>`: where the browser authenticates.
    fn login_url(&self, service: &str) -> Url {
        let base = &self.options.cas_base;
        let mut login = base.clone();
        login.set_path(&format!("{}/login", base.path().trim_end_matches('/')));
        login.query_pairs_mut().append_pair("service", service);
        login
    }

    /// Validates `ticket`, records the landing, opens a session and renders the page.
    async fn land(&self, instance: &Instance<'_>, service: &str, ticket: String) -> Response<Body> {
        let uai = instance.establishment.uai.clone();
        let mut landing = Landing {
            uai: uai.clone(),
            outcome: LandingOutcome::Failure,
            designated: None,
            principal: None,
            ticket,
            service: service.to_owned(),
            failure: None,
        };
        match self.validate(service, &landing.ticket).await {
            Err(code) => landing.failure = Some(code.to_owned()),
            Ok(Answer::Failure(code)) => landing.failure = Some(code),
            Ok(Answer::Success(success)) => {
                let child = answer::landed_child(&success, &self.directory, &self.records);
                let known = child
                    .as_ref()
                    .filter(|child| child.uai == uai)
                    .and_then(|child| self.directory.pupil(&child.uai, &child.eleve_id));
                landing.outcome = match known {
                    Some(_) => LandingOutcome::Landed,
                    None => LandingOutcome::UnknownUser,
                };
                landing.designated = child.and_then(|child| {
                    Some(PupilKey {
                        uai: Uai::parse(&child.uai)?,
                        eleve_id: child.eleve_id,
                    })
                });
                landing.principal = Some(success.principal);
            }
        }
        let mut response = self.show(instance, service, &landing);
        if landing.outcome == LandingOutcome::Landed {
            let sid = random_id();
            let cookie = cookie::Cookie::build((SESSION_COOKIE, sid.clone()))
                .path(instance.prefix.clone())
                .http_only(true)
                .same_site(cookie::SameSite::Lax)
                .build();
            web::set_cookie(&mut response, &cookie);
            self.lock().sessions.insert(sid, landing.clone());
        }
        self.lock().landings.push(landing);
        response
    }

    /// Asks the CAS server about `ticket` in the configured mode; `Err` holds the
    /// simulator's own failure code.
    async fn validate(&self, service: &str, ticket: &str) -> Result<Answer, &'static str> {
        let base = self.back_channel.as_ref().unwrap_or(&self.options.cas_base);
        let endpoint = |name: &str| {
            let mut url = base.clone();
            url.set_path(&format!("{}/{name}", base.path().trim_end_matches('/')));
            url
        };
        let request = match self.options.validation {
            ValidationMode::SamlValidate => {
                let mut url = endpoint("samlValidate");
                url.query_pairs_mut().append_pair("TARGET", service);
                Request::post(url.as_str())
                    .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                    .body(Body::from(saml_request(ticket)))
            }
            mode => {
                let name = match mode {
                    ValidationMode::P3ServiceValidate => "p3/serviceValidate",
                    _ => "serviceValidate",
                };
                let mut url = endpoint(name);
                url.query_pairs_mut()
                    .append_pair("service", service)
                    .append_pair("ticket", ticket);
                if mode == ValidationMode::Json {
                    url.query_pairs_mut().append_pair("format", "JSON");
                }
                Request::get(url.as_str()).body(Body::new(Bytes::new()))
            }
        };
        let request = request.map_err(|_| "sim.pronote.back_channel")?;
        let response = tokio::time::timeout(BACK_CHANNEL_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "sim.pronote.back_channel")?
            .map_err(|_| "sim.pronote.back_channel")?;
        if !response.status().is_success() {
            return Err("sim.pronote.back_channel");
        }
        let body = web::read_body(response.into_body())
            .await
            .ok_or("sim.pronote.back_channel")?;
        let now = time::OffsetDateTime::now_utc();
        answer::read(&body, service, now).map_err(|_| "sim.pronote.unreadable")
    }

    /// A CAS single-logout request: drop the session it names.
    fn single_logout(&self, content_type: Option<&str>, body: &[u8]) -> Response<Body> {
        let Some(ticket) = answer::logout_session_index(content_type, body) else {
            return web::respond(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                "not a logout request\n",
            );
        };
        let mut inner = self.lock();
        let before = inner.sessions.len();
        inner.sessions.retain(|_, landing| landing.ticket != ticket);
        if inner.sessions.len() < before {
            inner.logouts += 1;
        }
        web::respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
    }

    /// The page a landing shows: the child, "utilisateur inconnu", or the failure.
    /// `again` is the link that goes back through the ENT for a new ticket: what a parent
    /// does when they click Pronote in the ENT portal once more.
    fn render(&self, establishment: &Establishment, landing: &Landing, again: &Url) -> String {
        let pupil = landing
            .designated
            .as_ref()
            .and_then(|key| self.directory.pupil(key.uai.as_str(), &key.eleve_id));
        let shown = match (landing.outcome, pupil) {
            (LandingOutcome::Landed, Some(pupil)) => pages::Shown::Landed {
                eleve_id: &pupil.eleve_id,
                first_name: &pupil.first_name,
                last_name: &pupil.last_name,
                class: &pupil.class,
            },
            (LandingOutcome::Failure, _) => pages::Shown::Failure {
                code: landing.failure.as_deref().unwrap_or(""),
            },
            _ => pages::Shown::UnknownUser,
        };
        pages::landing(
            &establishment.uai,
            &establishment.name,
            shown,
            again.as_str(),
        )
    }

    /// The front page (`demo --serve`): every establishment's Pronote and every test
    /// parent with their credentials and one link per child.
    fn index_page(&self, host: &str) -> String {
        let Ok(base) = Url::parse(&format!("http://{host}/")) else {
            return pages::bad_address();
        };
        let accounts: Vec<pages::Account<'_>> = self
            .directory
            .parents()
            .iter()
            .map(|parent| pages::Account {
                login: &parent.login,
                password: &parent.password,
                links: self
                    .directory
                    .children_of(parent)
                    .filter_map(|child| {
                        let url = super::directory::pronote_url(&base, &child.uai)?;
                        let school = self.directory.establishment(&child.uai)?;
                        let label =
                            format!("{} ({}, {})", child.first_name, child.class, school.name);
                        Some((url.to_string(), label))
                    })
                    .collect(),
            })
            .collect();
        pages::accounts(&accounts)
    }
}

/// A SAML 1.1 validation request (java-cas-client's shape) for `ticket`.
fn saml_request(ticket: &str) -> String {
    let instant = web::now_rfc3339();
    format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <SOAP-ENV:Header/><SOAP-ENV:Body>\
         <samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" MinorVersion=\"1\" \
         RequestID=\"_{}\" IssueInstant=\"{instant}\">\
         <samlp:AssertionArtifact>{}</samlp:AssertionArtifact></samlp:Request>\
         </SOAP-ENV:Body></SOAP-ENV:Envelope>",
        random_id(),
        quick_xml::escape::escape(ticket)
    )
}

/// 128 random bits, hex: session ids and request ids (not seeded: they decide nothing).
fn random_id() -> String {
    hex::encode(rand::thread_rng().gen::<[u8; 16]>())
}
