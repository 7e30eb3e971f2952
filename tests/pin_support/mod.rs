//! Shared set-up for the pinning and verdict tests: a test ENT, bonenfant in front of it
//! and a test Pronote behind it, all on loopback, plus a small browser whose cookie jar
//! a test can read and write (cookie transplant, session fixation).
#![allow(dead_code)] // each test crate uses a different part

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bonenfant::config::{PinMode, RawConfig};
use bonenfant::events::{LossCounter, Pseudonymizer, TraceLog};
use bonenfant::pin::chooser;
use bonenfant::proxy::exchange::{self, RunningProxy};
use bonenfant::sim::{
    http as web, Directory, DirectoryData, DirectoryParams, EntHandle, EntOptions, Landing, Parent,
    PronoteHandle, PronoteOptions, RelationRecord, Synthetic as _, TestEnt, TestPronote,
    SIM_SERVICE_PATTERN,
};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, REFERER, SET_COOKIE};
use http::{Method, Request, StatusCode};
use url::Url;

/// The pseudonym key of every test proxy, so tests compute the same pseudonyms.
pub const PSEUDONYM_KEY: &[u8] = b"pin tests: a pseudonym key of 32+ bytes";

/// bonenfant's session cookie on plain HTTP.
pub const SESSION_COOKIE: &str = "bonenfant";

/// An ENT, bonenfant in front of it and a Pronote validating through bonenfant.
pub struct Stack {
    pub directory: Arc<Directory>,
    pub ent: EntHandle,
    pub proxy: RunningProxy,
    pub pronote: PronoteHandle,
    pub trace: TraceLog,
}

impl Stack {
    /// Starts the three servers, bonenfant with the directory's index. `tweak` adjusts
    /// bonenfant's settings.
    pub async fn start(
        directory: Arc<Directory>,
        ent: EntOptions,
        mode: PinMode,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Self {
        Self::launch(directory, ent, mode, tweak, true).await
    }

    /// [`Stack::start`], bonenfant knowing only what the ENT asserts, or what `tweak`'s
    /// `--directory` gives it.
    pub async fn start_without_index(
        directory: Arc<Directory>,
        ent: EntOptions,
        mode: PinMode,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Self {
        Self::launch(directory, ent, mode, tweak, false).await
    }

    async fn launch(
        directory: Arc<Directory>,
        ent: EntOptions,
        mode: PinMode,
        tweak: impl FnOnce(&mut RawConfig),
        index: bool,
    ) -> Self {
        let ent = TestEnt::spawn_local(Arc::clone(&directory), ent)
            .await
            .expect("ENT starts");
        // Pronote's port first: it is the one origin bonenfant may send a parent on to.
        let pronote_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("Pronote binds");
        let pronote_addr = pronote_listener.local_addr().expect("bound address");
        let mut raw = RawConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            upstream: Some(ent.base_url().clone()),
            pin: Some(mode),
            establishment_pattern: Some(SIM_SERVICE_PATTERN.to_owned()),
            service_origin: Some(vec![format!("http://{pronote_addr}")]),
            ..RawConfig::default()
        };
        tweak(&mut raw);
        let mut config = raw.validate().expect("test configuration is valid");
        // Without the simulators' index, bonenfant has what `--directory` loaded, if any.
        if index {
            config.directory_index = directory.index().into();
        }
        let trace = TraceLog::new(
            Pseudonymizer::new(PSEUDONYM_KEY).expect("key long enough"),
            LossCounter::default(),
        );
        let proxy = exchange::spawn(Arc::new(config), trace.clone())
            .await
            .expect("bonenfant starts");
        let cas = Url::parse(&format!("http://{}/cas", proxy.addr)).expect("loopback URL");
        let pronote = TestPronote::new(Arc::clone(&directory), PronoteOptions::new(cas))
            .spawn(pronote_listener)
            .expect("Pronote starts");
        Self {
            directory,
            ent,
            proxy,
            pronote,
            trace,
        }
    }

    pub async fn stop(self) {
        let _ = self.pronote.stop().await;
        let _ = self.proxy.stop().await;
        let _ = self.ent.stop().await;
    }

    /// `http://PROXY/PATH`.
    pub fn proxy_url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.proxy.addr)).expect("loopback URL")
    }

    /// The chooser page for `service`.
    pub fn chooser_url(&self, service: &Url) -> Url {
        let mut url = self.proxy_url("/bonenfant/choose");
        url.query_pairs_mut()
            .append_pair("service", service.as_str());
        url
    }

    /// The Pronote parent page of `uai`.
    pub fn pronote_page(&self, uai: &str) -> Url {
        self.pronote.parent_page(uai).expect("known establishment")
    }

    pub fn landings(&self) -> Vec<Landing> {
        self.pronote.landings()
    }

    /// What the ENT asserted for the ticket Pronote accepted in `landing`, checked
    /// against what Pronote received: same principal, same designated pupil (I1a).
    pub fn assert_landing_was_asserted_for_its_ticket(&self, landing: &Landing) {
        let info = self
            .ent
            .ent
            .ticket(&landing.ticket)
            .expect("Pronote only sees tickets the ENT issued");
        assert_eq!(
            landing.principal.as_deref(),
            Some(info.login.as_str()),
            "the principal Pronote got is the one the ENT asserted for that ticket"
        );
        let designated = landing
            .designated
            .as_ref()
            .map(|k| (k.uai.as_str().to_ascii_uppercase(), k.eleve_id.clone()));
        let picked = info
            .picked
            .first()
            .map(|p| (p.uai.to_ascii_uppercase(), p.eleve_id.clone()));
        assert_eq!(
            designated, picked,
            "the pupil Pronote got is the one the ENT asserted for that ticket"
        );
    }
}

/// The give-up set-up: an ENT that always names a parent's first child, `--pin retry`
/// with 3 re-logins, and a parent whose second child (the one meant) is in another
/// school than the first, so every login spends its budget.
pub async fn gave_up_stack() -> (Stack, bonenfant::sim::ParentVisit) {
    let directory = generated(40, 3, 11);
    let stack = Stack::start(
        directory.clone(),
        EntOptions {
            pick: bonenfant::sim::Pick::First,
            ..EntOptions::ose_random(11)
        },
        PinMode::Retry,
        |raw| raw.retry_max = Some(3),
    )
    .await;
    let visit = directory
        .visits(stack.pronote.base_url())
        .into_iter()
        .find(|v| {
            let parent = directory.parent(&v.login).expect("parent");
            let first = directory.children_of(parent).next().expect("a child");
            v.children == 2 && v.establishments == 2 && first.uai != v.intended.uai
        })
        .expect("a parent whose second child is in another school");
    (stack, visit)
}

/// Claire's co-parent in [`fixture_directory`]: the same two children.
pub const MARC: (&str, &str) = ("marc.martin", "demo-marc");

/// The committed example directory (Claire: Léa and Hugo in two collèges; Julien:
/// Chloé and Lucas in one; Sophie: Zoé) plus Marc, Claire's co-parent.
pub fn fixture_directory() -> Arc<Directory> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/directory.toml");
    let mut data = Directory::load(&path)
        .expect("committed directory")
        .data()
        .clone();
    let record = |jointure: &str, uai: &str, child: &str| RelationRecord {
        jointure: jointure.to_owned(),
        uai: uai.to_owned(),
        children: vec![child.to_owned()],
    };
    data.parents.push(Parent {
        login: MARC.0.to_owned(),
        password: MARC.1.to_owned(),
        last_name: "MARTIN".to_owned(),
        first_name: "Marc".to_owned(),
        children: vec!["2605001".to_owned(), "2605002".to_owned()],
        records: vec![
            record("2867101", "0330101A", "2605001"),
            record("2867102", "0330202B", "2605002"),
        ],
    });
    directory(data)
}

/// A generated directory.
pub fn generated(families: usize, establishments: usize, seed: u64) -> Arc<Directory> {
    Arc::new(Directory::generate(
        &DirectoryParams {
            families,
            establishments,
            ..DirectoryParams::default()
        },
        seed,
    ))
}

/// A directory made of `data` (built by hand in a test).
pub fn directory(data: DirectoryData) -> Arc<Directory> {
    Arc::new(Directory::from_data(data).expect("test directory is consistent"))
}

/// Children of each parent per establishment.
pub fn children_per_establishment(directory: &Directory, login: &str) -> BTreeMap<String, usize> {
    let mut per = BTreeMap::new();
    if let Some(parent) = directory.parent(login) {
        for child in directory.children_of(parent) {
            *per.entry(child.uai.clone()).or_insert(0) += 1;
        }
    }
    per
}

/// The value of `name` among a page's hidden form fields.
pub fn hidden(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The chooser form's token for `key`, as a parent picking that child posts it.
pub fn child_field(csrf: &str, key: &bonenfant::pupil::PupilKey) -> (String, String) {
    ("child".to_owned(), chooser::child_token(csrf, key))
}

// === a browser whose jar a test controls ===

/// A browser with a flat cookie jar (name → value: every server of a test lives on
/// 127.0.0.1) that a test may read, copy and plant cookies in.
pub struct Jar {
    client: web::HttpClient,
    pub cookies: BTreeMap<String, String>,
}

/// One answer, redirects not followed.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Where the answer sends the browser: its `Location`, or the target of a page
    /// that refreshes at once (`<meta http-equiv="refresh">`).
    pub location: Option<Url>,
    pub body: String,
    pub url: Url,
}

impl Answer {
    /// A redirect, or a page that goes on by itself.
    pub fn sends_on(&self) -> bool {
        self.location.is_some() && (self.status.is_redirection() || self.status.is_success())
    }
}

impl Default for Jar {
    fn default() -> Self {
        Self::new()
    }
}

impl Jar {
    pub fn new() -> Self {
        Self {
            client: web::client(),
            cookies: BTreeMap::new(),
        }
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookies.get(SESSION_COOKIE).cloned()
    }

    /// Sends one request with the jar's cookies and `headers`; stores what is set.
    pub async fn send(
        &mut self,
        method: Method,
        url: &Url,
        body: Option<String>,
        headers: &[(http::HeaderName, String)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(url.as_str());
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, header);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(web::Body::new(Bytes::from(body.unwrap_or_default())))
            .expect("request builds");
        let response = self.client.request(request).await.expect("server answers");
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Ok(parsed) = cookie::Cookie::parse(text.to_owned()) else {
                continue;
            };
            let cleared = parsed.value().is_empty()
                || parsed
                    .max_age()
                    .is_some_and(|a| a <= cookie::time::Duration::ZERO);
            if cleared {
                self.cookies.remove(parsed.name());
            } else {
                self.cookies
                    .insert(parsed.name().to_owned(), parsed.value().to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let body = web::read_body(response.into_body())
            .await
            .expect("body readable");
        let body = String::from_utf8_lossy(&body).into_owned();
        // A page that refreshes to another at once sends the browser on, as a redirect.
        let location = location.or_else(|| {
            status
                .is_success()
                .then(|| bonenfant::sim::browser::refresh_target(url, &body))
                .flatten()
        });
        Answer {
            status,
            location,
            body,
            url: url.clone(),
        }
    }

    /// GETs `url` and follows redirects and refreshes (at most 100).
    pub async fn get(&mut self, url: &Url) -> Answer {
        let mut url = url.clone();
        for _ in 0..100 {
            let answer = self.send(Method::GET, &url, None, &[]).await;
            match (&answer.location, answer.sends_on()) {
                (Some(next), true) => url = next.clone(),
                _ => return answer,
            }
        }
        panic!("redirect loop");
    }

    /// POSTs a form with explicit `Origin`/`Referer` choices, without following.
    pub async fn post(
        &mut self,
        url: &Url,
        fields: &[(String, String)],
        origin: Option<&str>,
        referer: Option<&str>,
    ) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut headers = Vec::new();
        if let Some(origin) = origin {
            headers.push((ORIGIN, origin.to_owned()));
        }
        if let Some(referer) = referer {
            headers.push((REFERER, referer.to_owned()));
        }
        self.send(Method::POST, url, Some(body), &headers).await
    }

    /// Opens Pronote's page, logs in at the ENT form if asked, follows to the end.
    /// Opens `pronote` and, on the ENT's login form, posts the credentials: the answer
    /// to that post, its redirect not followed (the page itself when there was no form).
    pub async fn sign_in(&mut self, pronote: &Url, login: &str, password: &str) -> Answer {
        let page = self.get(pronote).await;
        let Some((action, mut fields)) = form(&page, "password") else {
            return page;
        };
        fields.retain(|(k, _)| k != "username" && k != "password");
        fields.push(("username".to_owned(), login.to_owned()));
        fields.push(("password".to_owned(), password.to_owned()));
        let origin = action.origin().ascii_serialization();
        self.post(&action, &fields, Some(&origin), None).await
    }

    pub async fn login(&mut self, pronote: &Url, login: &str, password: &str) -> Answer {
        let answer = self.sign_in(pronote, login, password).await;
        match (&answer.location, answer.sends_on()) {
            (Some(next), true) => {
                let next = next.clone();
                self.get(&next).await
            }
            _ => answer,
        }
    }
}

/// The page's form holding a field named `field`: its action and hidden fields.
pub fn form(answer: &Answer, field: &str) -> Option<(Url, Vec<(String, String)>)> {
    let page = bonenfant::sim::Page {
        url: answer.url.clone(),
        status: answer.status,
        body: answer.body.clone(),
        hops: 0,
        location: None,
    };
    bonenfant::sim::browser::form_with_field(&page, field).map(|f| (f.action, f.fields))
}

/// The pupil a Pronote page shows.
pub fn shown(answer: &Answer) -> Option<bonenfant::sim::PupilRef> {
    let page = bonenfant::sim::Page {
        url: answer.url.clone(),
        status: answer.status,
        body: answer.body.clone(),
        hops: 0,
        location: None,
    };
    bonenfant::sim::browser::landing(&page).1
}
