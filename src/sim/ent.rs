//! The test ENT: a CAS server over a [`Directory`], built like OSE's facade, that can
//! reproduce the wrong-child bug on demand.
//!
//! It serves `/cas/login` (form, SSO cookie, silent re-login), every validation endpoint
//! (`/validate`, `/serviceValidate`, `/proxyValidate`, `/p3/…`, `/samlValidate`,
//! `format=JSON`) and `/cas/logout` with single-logout POSTs. Tickets are single use,
//! bound to their service and short-lived, like real servers'. What a parent's assertion
//! designates is the [`Pick`]; how it is written is the [`Dialect`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use maud::{html, Markup};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::time::Instant;
use url::Url;

use super::directory::{PupilRef, Synthetic as _};
use super::http::{self as web, Body, HttpClient, Server};
use crate::cas::{
    self, AnswerContext, Assertion, Attributes, AuthMeta, Endpoint, Failure, Outcome,
    ResponseFormat, ValidationRequest,
};
use crate::pupil::directory::{Directory, Parent, Pupil};

/// The SSO cookie (CAS "ticket-granting cookie"), scoped to `/cas`.
pub const SSO_COOKIE: &str = "CASTGC";

/// Where the ENT's CAS lives on its host.
pub const CAS_PATH: &str = "/cas";

/// Service URLs the sim ENT and Pronote understand: the real host style
/// (`https://0330012a.index-education.net/…`) and the loopback path style
/// (`http://127.0.0.1:PORT/0330012a/pronote/…`), as bonenfant's `--establishment-pattern`
/// for tests and the demo. The ENT itself reads such URLs its own way ([`service_uai`]).
pub const SIM_SERVICE_PATTERN: &str = r"(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]";

/// How long a single-logout POST may take before the ENT gives up on it (CAS SLO is
/// fire and forget).
const SLO_TIMEOUT: Duration = Duration::from_secs(2);

/// Live tickets held before expired ones are swept (tickets never validated would
/// otherwise pile up under a benchmark).
const SWEEP_ABOVE: usize = 10_000;

/// Random characters in tickets and SSO cookie values (Apereo uses 20+).
const TICKET_RANDOM_LEN: usize = 32;

/// Which of a parent's children an assertion designates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Pick {
    /// The child in the service's establishment (the first if several): a correct ENT.
    Correct,
    /// One child at random per ticket among all the parent's children: the OSE bug.
    Random,
    /// All children's values, in random order per ticket.
    Shuffled,
    /// Always the first child.
    First,
}

/// How the assertion is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Dialect {
    /// OSE facade: CAS 3 attributes (shape A) with `FrEduVecteur`, `ENTPersonJointure`
    /// of the designated child's record, `categories`, `nom`, `prenom`.
    Ose,
    /// Open ENT NG: `cas:userAttributes` with unprefixed children (shape E), plus the
    /// FrEduVecteur values.
    #[value(name = "openentng")]
    OpenEntNg,
    /// Laclasse.com: attributes both inside `cas:attributes` and directly under
    /// `cas:authenticationSuccess`; the child is known only through the record jointure
    /// and the establishment.
    Laclasse,
}

/// How the test ENT behaves.
#[derive(Clone, Debug)]
pub struct EntOptions {
    pub pick: Pick,
    pub dialect: Dialect,
    /// Seeds ticket values and every random pick.
    pub seed: u64,
    /// How long a ticket stays valid (real servers: 10 s to a few minutes).
    pub ticket_ttl: Duration,
    /// Writes each child's own names in a parent's FrEduVecteur values, instead of the
    /// parent's as the national chain does: some ENTs may, and bonenfant then shows
    /// those first names on its chooser.
    pub child_names_in_vectors: bool,
    /// Issues a ticket from the SSO session to a `/login` POST that carries no
    /// credentials, as some CAS servers do: a POST is then no proof of a password.
    pub sso_on_post: bool,
    /// Says in each assertion whether its ticket came from credentials
    /// (`isFromNewLogin`), as CAS 3 servers do at `p3/serviceValidate`.
    pub tells_new_login: bool,
    /// A silent `/login` answers through another host first: a redirect to
    /// `http://localhost:PORT/cas/hop`, which sends the browser back to the public
    /// `/login` (`X-Forwarded-Host`) with a one-time token; only that comes back with
    /// the ticket redirect. A proxy that re-asks `/login` itself never gets a ticket.
    pub login_via_other_host: bool,
    /// Asserts the designated child's class (`ENTEleveClasses`,
    /// `<establishment>$<class>`), as some ENTs release for a parent.
    pub asserts_class: bool,
    /// How long the ENT takes over each request before answering (a real ENT: tens of
    /// milliseconds per login), for measuring what re-rolls cost.
    pub latency: Duration,
}

/// What the ENT did, for tests and the demo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntCounters {
    /// Login forms shown.
    pub login_forms: u64,
    /// Credentials accepted.
    pub logins: u64,
    /// Credentials refused.
    pub failed_logins: u64,
    /// `/login` answered from the SSO session without a form.
    pub silent_logins: u64,
    pub tickets_issued: u64,
    /// Validation requests, whatever their outcome.
    pub validations: u64,
    pub validations_ok: u64,
    pub logouts: u64,
    /// Single-logout POSTs that got a 2xx answer.
    pub slo_delivered: u64,
    /// Single-logout POSTs that failed or timed out.
    pub slo_failed: u64,
    /// Requests at the other host's `/cas/hop` ([`EntOptions::login_via_other_host`]).
    pub hops: u64,
}

/// What the ENT issued one ticket for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketInfo {
    /// The parent's login (the principal).
    pub login: String,
    pub service: String,
    /// The pupils the assertion names, designated first.
    pub picked: Vec<PupilRef>,
    /// Validation requests that named this ticket (the first consumes it).
    pub validations: u32,
}

/// The test ENT. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct TestEnt {
    state: Arc<EntState>,
}

/// A test ENT running on its own task; dropping it stops it.
pub struct EntHandle {
    pub ent: TestEnt,
    server: Server,
}

struct EntState {
    directory: Arc<Directory>,
    options: EntOptions,
    client: HttpClient,
    inner: Mutex<Inner>,
    /// Where the ENT listens, for the other host's links.
    addr: std::sync::OnceLock<std::net::SocketAddr>,
}

#[derive(Default)]
struct Inner {
    /// (login, service) → tickets drawn so far, for [`EntState::draw`].
    draws: HashMap<(String, String), u64>,
    /// One-time tokens of the other host's way back to `/login`.
    hop_tokens: std::collections::HashSet<String>,
    /// Live tickets; removed by the first validation attempt.
    tickets: HashMap<String, LiveTicket>,
    /// SSO cookie value → session.
    sessions: HashMap<String, SsoSession>,
    /// Every ticket ever issued, kept for tests.
    issued: HashMap<String, TicketInfo>,
    counters: EntCounters,
}

struct LiveTicket {
    login: String,
    service: String,
    /// Pupil jointures, designated first.
    picked: Vec<String>,
    issued_at: Instant,
    /// Issued right after the credentials were checked (not from the SSO session):
    /// only such tickets pass a `renew=true` validation.
    from_credentials: bool,
}

struct SsoSession {
    login: String,
    /// (service, ticket) of every ticket issued in this session, for single logout.
    services: Vec<(String, String)>,
}

// === impl Pick ===

impl Pick {
    pub fn as_str(self) -> &'static str {
        match self {
            Pick::Correct => "correct",
            Pick::Random => "random",
            Pick::Shuffled => "shuffled",
            Pick::First => "first",
        }
    }
}

// === impl Dialect ===

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Ose => "ose",
            Dialect::OpenEntNg => "openentng",
            Dialect::Laclasse => "laclasse",
        }
    }
}

// === impl EntOptions ===

impl EntOptions {
    /// The `random` OSE facade: the bug, as the field reports it.
    pub fn ose_random(seed: u64) -> Self {
        Self {
            pick: Pick::Random,
            seed,
            ..Self::default()
        }
    }
}

impl Default for EntOptions {
    fn default() -> Self {
        Self {
            pick: Pick::Random,
            dialect: Dialect::Ose,
            seed: 0,
            ticket_ttl: Duration::from_secs(60),
            child_names_in_vectors: false,
            sso_on_post: false,
            tells_new_login: false,
            login_via_other_host: false,
            asserts_class: false,
            latency: Duration::ZERO,
        }
    }
}

/// The establishment a service URL names, upper case: the host's first label
/// (`0330012a.index-education.net`) or the path's first segment (`/0330012a/pronote/…`).
/// The ENT's own reading, for the `correct` pick, not bonenfant's pattern: the simulators
/// witness the proxy rather than share its rules.
pub fn service_uai(service: &str) -> Option<String> {
    let url = Url::parse(service).ok()?;
    let host_label = url.host_str().and_then(|h| h.split('.').next());
    let first_segment = url.path_segments().and_then(|mut s| s.next());
    let uai = [host_label, first_segment]
        .into_iter()
        .flatten()
        .find_map(|candidate| {
            let bytes = candidate.as_bytes();
            let is_uai = bytes.len() == 8
                && bytes[..7].iter().all(u8::is_ascii_digit)
                && bytes[7].is_ascii_alphabetic();
            is_uai.then(|| candidate.to_ascii_uppercase())
        });
    uai
}

// === impl TestEnt ===

impl TestEnt {
    pub fn new(directory: Arc<Directory>, options: EntOptions) -> Self {
        Self {
            state: Arc::new(EntState {
                directory,
                options,
                client: web::client(),
                inner: Mutex::new(Inner::default()),
                addr: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn counters(&self) -> EntCounters {
        self.state.lock().counters
    }

    /// Issues a ticket as if `login` had just typed their password at `/login?service=…`,
    /// without the HTTP round trips (benchmarks, tests of the back channel alone).
    /// `None` for an unknown login.
    pub fn issue_ticket(&self, login: &str, service: &str) -> Option<String> {
        self.state.issue(None, login, service, true)
    }

    /// What the ENT issued `ticket` for, and how often it was presented since.
    pub fn ticket(&self, ticket: &str) -> Option<TicketInfo> {
        self.state.lock().issued.get(ticket).cloned()
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.state.directory
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let _ = self.state.addr.set(listener.local_addr()?);
        web::serve_handler(listener, self.state, shutdown).await
    }

    /// Starts serving on `listener` in the background.
    pub fn spawn(self, listener: TcpListener) -> io::Result<EntHandle> {
        let ent = self.clone();
        let server = Server::spawn(listener, move |listener, shutdown| {
            self.serve(listener, shutdown)
        })?;
        Ok(EntHandle { ent, server })
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn spawn_local(
        directory: Arc<Directory>,
        options: EntOptions,
    ) -> io::Result<EntHandle> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::new(directory, options).spawn(listener)
    }
}

/// Serves the test ENT on `listener` until `shutdown` completes.
pub async fn serve_ent(
    listener: TcpListener,
    directory: Arc<Directory>,
    options: EntOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    TestEnt::new(directory, options)
        .serve(listener, shutdown)
        .await
}

// === impl EntHandle ===

impl EntHandle {
    /// `http://ADDR/cas`: the CAS base URL.
    pub fn cas_base(&self) -> Url {
        let mut url = self.server.base_url().clone();
        url.set_path(CAS_PATH);
        url
    }

    /// `http://ADDR/`.
    pub fn base_url(&self) -> &Url {
        self.server.base_url()
    }

    pub async fn stop(self) -> io::Result<()> {
        self.server.stop().await
    }
}

// === impl EntState ===

impl web::Handler for EntState {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        self.route(request).await
    }
}

impl EntState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        let (parts, body) = request.into_parts();
        let query = parts.uri.query().unwrap_or("").to_owned();
        let path = parts.uri.path();
        if path == format!("{CAS_PATH}/hop") {
            return self.hop(&query);
        }
        let Some(endpoint) = path.strip_prefix(CAS_PATH).and_then(cas::classify) else {
            return web::html(
                StatusCode::NOT_FOUND,
                message_page("Page introuvable", "Cette page n’existe pas."),
            );
        };
        let Some(body) = web::read_body(body).await else {
            return web::respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "request body too large\n",
            );
        };
        let sso = web::cookie(&parts.headers, SSO_COOKIE);
        match (endpoint, parts.method) {
            (Endpoint::Login, Method::GET) => {
                let public = ["x-forwarded-host", "host"]
                    .iter()
                    .find_map(|name| parts.headers.get(*name)?.to_str().ok());
                self.login_page(&query, sso, public)
            }
            (Endpoint::Login, Method::POST) => self.login_submit(&query, &body, sso),
            (Endpoint::Logout, _) => self.logout(&query, sso).await,
            (Endpoint::Proxy, _) => self.answer(
                ResponseFormat::Xml,
                "",
                &Outcome::Failure(Failure::new(
                    "UNAUTHORIZED_SERVICE",
                    "proxy tickets are not issued by this ENT",
                )),
            ),
            (endpoint, _) => self.validate(endpoint, &query, &body),
        }
    }

    // --- login ---

    fn login_page(&self, query: &str, sso: Option<String>, public: Option<&str>) -> Response<Body> {
        let service = web::param(query.as_bytes(), "service");
        let renew = web::param(query.as_bytes(), "renew").as_deref() == Some("true");
        let gateway = web::param(query.as_bytes(), "gateway").as_deref() == Some("true");
        if !renew {
            let login = sso.and_then(|id| {
                self.lock()
                    .sessions
                    .get(&id)
                    .map(|s| (id.clone(), s.login.clone()))
            });
            if let Some((session, login)) = login {
                if self.options.login_via_other_host && service.is_some() {
                    let token = web::param(query.as_bytes(), "hop");
                    let spent = token.is_some_and(|t| self.lock().hop_tokens.remove(&t));
                    if !spent {
                        return self.through_other_host(query, public);
                    }
                }
                self.lock().counters.silent_logins += 1;
                return match service {
                    Some(service) => self.issue_and_redirect(&session, &login, &service, false),
                    None => web::html(
                        StatusCode::OK,
                        message_page("Connecté", "Vous êtes déjà connecté."),
                    ),
                };
            }
        }
        if let (true, Some(service)) = (gateway && !renew, &service) {
            return web::redirect(service);
        }
        self.lock().counters.login_forms += 1;
        web::html(StatusCode::OK, login_form(service.as_deref(), None))
    }

    /// The way round through the other host: `/cas/hop` on `localhost`, then back to the
    /// public `/login` with a fresh one-time token.
    fn through_other_host(&self, query: &str, public: Option<&str>) -> Response<Body> {
        let token = self.random_token();
        self.lock().hop_tokens.insert(token.clone());
        let mut back = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name != "hop" {
                back.append_pair(&name, &value);
            }
        }
        back.append_pair("hop", &token);
        let back = format!(
            "http://{}{CAS_PATH}/login?{}",
            public.unwrap_or("localhost"),
            back.finish()
        );
        let port = self.addr.get().map_or(0, std::net::SocketAddr::port);
        let hop = form_urlencoded::Serializer::new(String::new())
            .append_pair("back", &back)
            .finish();
        web::redirect(&format!("http://localhost:{port}{CAS_PATH}/hop?{hop}"))
    }

    /// The other host: sends the browser back where the `/login` said.
    fn hop(&self, query: &str) -> Response<Body> {
        self.lock().counters.hops += 1;
        match web::param(query.as_bytes(), "back") {
            Some(back) => web::redirect(&back),
            None => web::html(
                StatusCode::BAD_REQUEST,
                message_page("Requête invalide", "Lien incomplet."),
            ),
        }
    }

    fn login_submit(&self, query: &str, body: &[u8], sso: Option<String>) -> Response<Body> {
        let field = |name| web::param(body, name).or_else(|| web::param(query.as_bytes(), name));
        let service = field("service").filter(|s| !s.is_empty());
        let username = field("username").unwrap_or_default();
        let password = field("password").unwrap_or_default();
        if self.options.sso_on_post && username.is_empty() && password.is_empty() {
            if let (Some(session), Some(service)) = (sso, &service) {
                let login = self.lock().sessions.get(&session).map(|s| s.login.clone());
                if let Some(login) = login {
                    self.lock().counters.silent_logins += 1;
                    return self.issue_and_redirect(&session, &login, service, false);
                }
            }
        }
        let accepted = self
            .directory
            .parent(&username)
            .filter(|parent| parent.password == password)
            .map(|parent| parent.login.clone());
        let Some(login) = accepted else {
            self.lock().counters.failed_logins += 1;
            return web::html(
                StatusCode::UNAUTHORIZED,
                login_form(
                    service.as_deref(),
                    Some("Identifiant ou mot de passe incorrect."),
                ),
            );
        };
        let session = format!("TGC-{}", self.random_token());
        {
            let mut inner = self.lock();
            inner.counters.logins += 1;
            inner.sessions.insert(
                session.clone(),
                SsoSession {
                    login: login.clone(),
                    services: Vec::new(),
                },
            );
        }
        let mut response = match service {
            Some(service) => self.issue_and_redirect(&session, &login, &service, true),
            None => web::html(
                StatusCode::OK,
                message_page("Connecté", "Connexion réussie."),
            ),
        };
        let cookie = cookie::Cookie::build((SSO_COOKIE, session))
            .path(CAS_PATH)
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .build();
        web::set_cookie(&mut response, &cookie);
        response
    }

    /// Issues a ticket for `service` in SSO session `session` and sends the browser there.
    fn issue_and_redirect(
        &self,
        session: &str,
        login: &str,
        service: &str,
        from_credentials: bool,
    ) -> Response<Body> {
        match self.issue(Some(session), login, service, from_credentials) {
            Some(ticket) => {
                let separator = if service.contains('?') { '&' } else { '?' };
                web::redirect(&format!("{service}{separator}ticket={ticket}"))
            }
            None => web::html(
                StatusCode::FORBIDDEN,
                message_page("Accès refusé", "Compte inconnu."),
            ),
        }
    }

    /// Issues a ticket for `login` and `service`, recorded in SSO `session` (for single
    /// logout) when there is one. `None` for an unknown login.
    fn issue(
        &self,
        session: Option<&str>,
        login: &str,
        service: &str,
        from_credentials: bool,
    ) -> Option<String> {
        let parent = self.directory.parent(login)?;
        let ticket = format!("ST-{}", self.random_token());
        let picked = self.pick(parent, service);
        let info = TicketInfo {
            login: login.to_owned(),
            service: service.to_owned(),
            picked: picked
                .iter()
                .filter_map(|j| self.directory.pupil_by_jointure(j))
                .map(PupilRef::from)
                .collect(),
            validations: 0,
        };
        let mut inner = self.lock();
        inner.counters.tickets_issued += 1;
        if inner.tickets.len() >= SWEEP_ABOVE {
            let ttl = self.options.ticket_ttl;
            inner.tickets.retain(|_, t| t.issued_at.elapsed() < ttl);
        }
        inner.tickets.insert(
            ticket.clone(),
            LiveTicket {
                login: login.to_owned(),
                service: service.to_owned(),
                picked,
                issued_at: Instant::now(),
                from_credentials,
            },
        );
        inner.issued.insert(ticket.clone(), info);
        if let Some(sso) = session.and_then(|id| inner.sessions.get_mut(id)) {
            sso.services.push((service.to_owned(), ticket.clone()));
        }
        Some(ticket)
    }

    /// The children this ticket's assertion names (jointures), designated first.
    fn pick(&self, parent: &Parent, service: &str) -> Vec<String> {
        let children = &parent.children;
        match self.options.pick {
            Pick::First => children.iter().take(1).cloned().collect(),
            Pick::Random => {
                let mut rng = self.draw(parent, service);
                children.choose(&mut rng).cloned().into_iter().collect()
            }
            Pick::Shuffled => {
                let mut all = children.clone();
                all.shuffle(&mut self.draw(parent, service));
                all
            }
            Pick::Correct => {
                let in_establishment = service_uai(service).and_then(|uai| {
                    self.directory
                        .children_of(parent)
                        .find(|child| child.uai == uai)
                        .map(|child| child.jointure.clone())
                });
                in_establishment
                    .or_else(|| children.first().cloned())
                    .into_iter()
                    .collect()
            }
        }
    }

    /// The RNG for this parent's next ticket for `service`: seeded from (seed, login,
    /// the service's host and path, how many such tickets came before), so a parent's sequence of
    /// picks does not depend on how other parents' logins interleave, nor on the port
    /// the test Pronote happened to get: one seed, one run.
    fn draw(&self, parent: &Parent, service: &str) -> StdRng {
        let service = Url::parse(service).map_or_else(
            |_| service.to_owned(),
            |url| format!("{}{}", url.host_str().unwrap_or_default(), url.path()),
        );
        let service = service.as_str();
        let n = {
            let mut inner = self.lock();
            let count = inner
                .draws
                .entry((parent.login.clone(), service.to_owned()))
                .or_insert(0);
            *count += 1;
            *count
        };
        let digest = Sha256::new()
            .chain_update(self.options.seed.to_be_bytes())
            .chain_update(parent.login.as_bytes())
            .chain_update([0])
            .chain_update(service.as_bytes())
            .chain_update([0])
            .chain_update(n.to_be_bytes())
            .finalize();
        StdRng::from_seed(digest.into())
    }

    /// Ticket and cookie values: from the thread's CSPRNG, never from the seed (which
    /// only drives the picks), so they are unguessable like a real CAS server's and a
    /// restarted ENT never issues a ticket it issued before, which bonenfant would refuse
    /// as a replay.
    fn random_token(&self) -> String {
        rand::thread_rng()
            .sample_iter(rand::distributions::Alphanumeric)
            .take(TICKET_RANDOM_LEN)
            .map(char::from)
            .collect()
    }

    // --- validation ---

    fn validate(&self, endpoint: Endpoint, query: &str, body: &[u8]) -> Response<Body> {
        let request = match ValidationRequest::parse(endpoint, Some(query), body) {
            Ok(request) => request,
            Err(error) => {
                self.lock().counters.validations += 1;
                let format = requested_format(endpoint, query);
                let service = web::param(query.as_bytes(), "service")
                    .or_else(|| web::param(query.as_bytes(), "TARGET"))
                    .unwrap_or_default();
                let failure = Failure::new(
                    "INVALID_REQUEST",
                    format!("request refused ({})", error.code()),
                );
                return self.answer(format, &service, &Outcome::Failure(failure));
            }
        };
        let outcome = self.consume(&request);
        self.answer(request.format, &request.service, &outcome)
    }

    /// Consumes the ticket (first attempt, whatever its outcome) and says what it proves.
    fn consume(&self, request: &ValidationRequest) -> Outcome {
        let ticket = request.ticket.expose();
        let live = {
            let mut inner = self.lock();
            inner.counters.validations += 1;
            if let Some(info) = inner.issued.get_mut(ticket) {
                info.validations += 1;
            }
            inner.tickets.remove(ticket)
        };
        let Some(live) = live else {
            return Outcome::Failure(Failure::new("INVALID_TICKET", "ticket not recognized"));
        };
        if live.issued_at.elapsed() >= self.options.ticket_ttl {
            return Outcome::Failure(Failure::new("INVALID_TICKET", "ticket expired"));
        }
        if request.renew && !live.from_credentials {
            return Outcome::Failure(Failure::new(
                "INVALID_TICKET",
                "renew was requested but the ticket came from single sign-on",
            ));
        }
        if live.service != request.service {
            return Outcome::Failure(Failure::new(
                "INVALID_SERVICE",
                "ticket was issued for another service",
            ));
        }
        let Some(parent) = self.directory.parent(&live.login) else {
            return Outcome::Failure(Failure::internal("account no longer exists"));
        };
        let picked: Vec<&Pupil> = live
            .picked
            .iter()
            .filter_map(|j| self.directory.pupil_by_jointure(j))
            .collect();
        self.lock().counters.validations_ok += 1;
        let mut assertion = assertion(&self.directory, self.options.dialect, parent, &picked);
        if self.options.child_names_in_vectors {
            name_children_in_vectors(&mut assertion, &picked);
        }
        if let (true, Some(child)) = (self.options.asserts_class, picked.first()) {
            assertion
                .attributes
                .push("ENTEleveClasses", format!("{}${}", child.uai, child.class));
        }
        if self.options.tells_new_login {
            assertion.auth.from_new_login = Some(live.from_credentials);
        }
        Outcome::Success(assertion)
    }

    /// Writes `outcome` in `format`: the dialect's own XML, else the canonical forms.
    fn answer(&self, format: ResponseFormat, service: &str, outcome: &Outcome) -> Response<Body> {
        let (content_type, bytes): (&'static str, Bytes) = match format {
            ResponseFormat::Xml => (
                "application/xml; charset=utf-8",
                render_xml(self.options.dialect, outcome).into(),
            ),
            ResponseFormat::Json => (
                "application/json",
                cas::serialize(outcome, format, &context(service)).into(),
            ),
            ResponseFormat::Saml11 => (
                "text/xml; charset=utf-8",
                cas::serialize(outcome, format, &context(service)).into(),
            ),
            ResponseFormat::Cas1Text => (
                "text/plain; charset=utf-8",
                cas::serialize(outcome, format, &context(service)).into(),
            ),
        };
        web::respond(StatusCode::OK, content_type, bytes)
    }

    // --- logout ---

    async fn logout(&self, query: &str, sso: Option<String>) -> Response<Body> {
        let session = sso.and_then(|id| self.lock().sessions.remove(&id));
        self.lock().counters.logouts += 1;
        if let Some(session) = session {
            let deliveries = session
                .services
                .iter()
                .map(|(service, ticket)| self.single_logout(service, ticket));
            let delivered = futures_util::future::join_all(deliveries).await;
            let ok = delivered.iter().filter(|ok| **ok).count() as u64;
            let mut inner = self.lock();
            inner.counters.slo_delivered += ok;
            inner.counters.slo_failed += delivered.len() as u64 - ok;
        }
        let mut response = match web::param(query.as_bytes(), "service") {
            Some(service) => web::redirect(&service),
            None => web::html(
                StatusCode::OK,
                message_page("Déconnexion", "Vous êtes déconnecté de l’ENT."),
            ),
        };
        let removal = cookie::Cookie::build((SSO_COOKIE, ""))
            .path(CAS_PATH)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        web::set_cookie(&mut response, &removal);
        response
    }

    /// POSTs one CAS single-logout request to `service`; true when it answered 2xx.
    async fn single_logout(&self, service: &str, ticket: &str) -> bool {
        let Ok(uri) = service.parse::<http::Uri>() else {
            return false;
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "logoutRequest",
                &logout_request(&self.random_token(), ticket),
            )
            .finish();
        let Ok(request) = Request::post(uri)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Body::from(form))
        else {
            return false;
        };
        matches!(
            tokio::time::timeout(SLO_TIMEOUT, self.client.request(request)).await,
            Ok(Ok(response)) if response.status().is_success()
        )
    }
}

/// The format a refused request is answered in (no parsed request to ask).
fn requested_format(endpoint: Endpoint, query: &str) -> ResponseFormat {
    match endpoint {
        Endpoint::Validate => ResponseFormat::Cas1Text,
        Endpoint::SamlValidate => ResponseFormat::Saml11,
        _ if web::param(query.as_bytes(), "format").as_deref() == Some("JSON") => {
            ResponseFormat::Json
        }
        _ => ResponseFormat::Xml,
    }
}

fn context(service: &str) -> AnswerContext<'_> {
    AnswerContext {
        service,
        now_unix: web::now_unix(),
    }
}

/// The assertion for `parent` naming `picked` (designated first), in `dialect`'s attribute set.
fn assertion(
    directory: &Directory,
    dialect: Dialect,
    parent: &Parent,
    picked: &[&Pupil],
) -> Assertion {
    let designated = picked.first();
    let record = designated.and_then(|child| directory.record_for(parent, &child.uai));
    let mut attributes = Attributes::new();
    let mut auth = AuthMeta::default();
    match dialect {
        Dialect::Ose => {
            if let Some(record) = record {
                attributes.push("ENTPersonJointure", record.jointure.clone());
            }
            attributes.push("nom", parent.last_name.clone());
            attributes.push("prenom", parent.first_name.clone());
            attributes.push("categories", "National_2");
            for child in picked {
                attributes.push("FrEduVecteur", directory.vector(parent, child));
            }
        }
        Dialect::OpenEntNg => {
            auth.long_term = Some(false);
            auth.from_new_login = Some(false);
            attributes.push("nom", parent.last_name.clone());
            attributes.push("prenom", parent.first_name.clone());
            attributes.push("categories", "National_2");
            for child in picked {
                attributes.push("FrEduVecteur", directory.vector(parent, child));
            }
        }
        Dialect::Laclasse => {
            attributes.push("uid", parent.login.clone());
            attributes.push("user", parent.login.clone());
            attributes.push("login", parent.login.clone());
            attributes.push("nom", parent.last_name.clone());
            attributes.push("prenom", parent.first_name.clone());
            attributes.push("categories", "National_2");
            attributes.push("ENTPersonProfils", "TUT");
            if let Some(child) = designated {
                attributes.push("ENTPersonStructRattach", child.uai.clone());
                attributes.push("ENTPersonStructRattachRNE", child.uai.clone());
            }
            if let Some(record) = record {
                attributes.push("ENTPersonJointure", record.jointure.clone());
            }
        }
    }
    Assertion {
        principal: parent.login.clone(),
        attributes,
        pgt_iou: None,
        proxies: Vec::new(),
        auth,
    }
}

/// Rewrites each FrEduVecteur value's names to its child's (`2|LEROY|Nina|…`).
fn name_children_in_vectors(assertion: &mut Assertion, picked: &[&Pupil]) {
    let renamed: Vec<(String, String)> = assertion
        .attributes
        .iter()
        .map(|(name, value)| {
            let child = picked.iter().find(|p| {
                name == "FrEduVecteur" && value.ends_with(&format!("|{}|{}", p.eleve_id, p.uai))
            });
            let value = match (child, value.split_once('|')) {
                (Some(child), Some((profil, _))) => format!(
                    "{profil}|{}|{}|{}|{}",
                    child.last_name, child.first_name, child.eleve_id, child.uai
                ),
                _ => value.to_owned(),
            };
            (name.to_owned(), value)
        })
        .collect();
    assertion.attributes = renamed.into_iter().collect();
}

const CAS_NS: &str = "http://www.yale.edu/tp/cas";

/// The dialect's XML for `outcome` (shapes A, E, A+B: `docs/domain.md`).
fn render_xml(dialect: Dialect, outcome: &Outcome) -> String {
    let mut xml = format!("<cas:serviceResponse xmlns:cas=\"{CAS_NS}\">\n");
    match outcome {
        Outcome::Failure(failure) => {
            xml.push_str(&format!(
                "  <cas:authenticationFailure code=\"{}\">{}</cas:authenticationFailure>\n",
                quick_xml::escape::escape(&failure.code),
                quick_xml::escape::escape(&failure.message)
            ));
        }
        Outcome::Success(assertion) => {
            xml.push_str("  <cas:authenticationSuccess>\n");
            xml.push_str(&format!(
                "    <cas:user>{}</cas:user>\n",
                quick_xml::escape::escape(&assertion.principal)
            ));
            xml.push_str("    <cas:attributes>\n");
            let bool_element = |name: &str, value: Option<bool>| {
                value
                    .map(|v| format!("      <cas:{name}>{v}</cas:{name}>\n"))
                    .unwrap_or_default()
            };
            xml.push_str(&bool_element(
                "longTermAuthenticationRequestTokenUsed",
                assertion.auth.long_term,
            ));
            xml.push_str(&bool_element(
                "isFromNewLogin",
                assertion.auth.from_new_login,
            ));
            match dialect {
                Dialect::OpenEntNg => {
                    xml.push_str("      <cas:userAttributes>\n");
                    push_elements(&mut xml, &assertion.attributes, "", "        ");
                    xml.push_str("      </cas:userAttributes>\n");
                    xml.push_str("    </cas:attributes>\n");
                }
                Dialect::Ose => {
                    push_elements(&mut xml, &assertion.attributes, "cas:", "      ");
                    xml.push_str("    </cas:attributes>\n");
                }
                Dialect::Laclasse => {
                    push_elements(&mut xml, &assertion.attributes, "cas:", "      ");
                    xml.push_str("    </cas:attributes>\n");
                    // The old-client copy directly under authenticationSuccess; a
                    // `user` attribute there would read as a second `cas:user`.
                    let outside: Attributes = assertion
                        .attributes
                        .iter()
                        .filter(|(name, _)| *name != "user")
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect();
                    push_elements(&mut xml, &outside, "cas:", "    ");
                }
            }
            xml.push_str("  </cas:authenticationSuccess>\n");
        }
    }
    xml.push_str("</cas:serviceResponse>\n");
    xml
}

fn push_elements(xml: &mut String, attributes: &Attributes, prefix: &str, indent: &str) {
    for (name, value) in attributes.iter() {
        xml.push_str(&format!(
            "{indent}<{prefix}{name}>{}</{prefix}{name}>\n",
            quick_xml::escape::escape(value)
        ));
    }
}

/// A CAS single-logout request (`docs/domain.md`, "Single logout") for `ticket`.
fn logout_request(id: &str, ticket: &str) -> String {
    let instant = web::now_rfc3339();
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"LR-{id}\" \
         Version=\"2.0\" IssueInstant=\"{instant}\">\
         <saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">@NOT_USED@</saml:NameID>\
         <samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>",
        quick_xml::escape::escape(ticket)
    )
}

/// A page of the ENT around `content`.
fn page(title: &str, content: Markup) -> String {
    web::page(
        &format!("{title} — ENT de test"),
        html! {
            header { strong { "ENT de test" } " (simulateur bonenfant : aucun compte réel)" }
            h1 { (title) }
            (content)
        },
    )
}

/// A page of the ENT that says one thing.
fn message_page(title: &str, message: &str) -> String {
    page(title, html! { p { (message) } })
}

/// The CAS login form; scripted browsers post it like people do (the interop suite's
/// reader too: it must stay the page's first form, with these field names).
fn login_form(service: Option<&str>, error: Option<&str>) -> String {
    page(
        "Connexion",
        html! {
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form #fm1 method="post" action="login" {
                @if let Some(service) = service {
                    input type="hidden" name="service" value=(service);
                }
                label { "Identifiant " input type="text" name="username" autocomplete="username"; }
                label { "Mot de passe " input type="password" name="password" autocomplete="current-password"; }
                button type="submit" { "Se connecter" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#"<script>alert("x")</script>&'"#;

    #[test]
    fn login_form_escapes_a_hostile_service_url_and_message() {
        let service =
            format!("http://127.0.0.1:9/0330101a/pronote/parent.html?a=1&b=\"><script>{HOSTILE}");
        let html = login_form(Some(&service), Some(HOSTILE));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains(
            r#"<input type="hidden" name="service" value="http://127.0.0.1:9/0330101a/pronote/parent.html?a=1&amp;b=&quot;&gt;&lt;script&gt;"#
        ));
        assert!(
            html.contains(r#"<p class="error" role="alert">&lt;script&gt;alert(&quot;x&quot;)"#)
        );
        assert!(html.contains(r#"<form id="fm1" method="post" action="login">"#));
        let html = message_page(HOSTILE, HOSTILE);
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn reads_the_establishment_of_both_service_url_styles() {
        for (service, uai) in [
            (
                "https://0330012a.index-education.net/pronote/parent.html",
                Some("0330012A"),
            ),
            (
                "http://127.0.0.1:8080/0330012a/pronote/parent.html",
                Some("0330012A"),
            ),
            ("http://127.0.0.1:8080/pronote/0330012a/parent.html", None),
            ("https://evil.example/x/0330012a/", None),
            ("not a url", None),
        ] {
            assert_eq!(service_uai(service).as_deref(), uai, "{service}");
        }
    }

    #[test]
    fn failure_xml_escapes_the_message() {
        let xml = render_xml(
            Dialect::Ose,
            &Outcome::Failure(Failure::new("INVALID_TICKET", "a<b")),
        );
        assert!(xml.contains("code=\"INVALID_TICKET\">a&lt;b</cas:authenticationFailure>"));
    }

    #[test]
    fn laclasse_writes_attributes_inside_and_outside_attributes() {
        let mut attributes = Attributes::new();
        attributes.push("nom", "MARTIN");
        let outcome = Outcome::Success(Assertion {
            principal: "claire.martin".into(),
            attributes,
            ..Assertion::default()
        });
        let xml = render_xml(Dialect::Laclasse, &outcome);
        assert_eq!(xml.matches("<cas:nom>MARTIN</cas:nom>").count(), 2);
        let entng = render_xml(Dialect::OpenEntNg, &outcome);
        assert!(entng.contains("<cas:userAttributes>\n        <nom>MARTIN</nom>"));
    }
}
