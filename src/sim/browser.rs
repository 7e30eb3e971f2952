//! A scripted browser for the demo and the tests: a cookie jar, redirects and
//! `<meta http-equiv="refresh">` followed (and counted), forms posted. Enough of a browser for the CAS dance, nothing more.
//!
//! Cookies are host-only (no `Domain` sharing) and honour `Path`, `Max-Age`, `Expires`
//! and `Secure` (sent over HTTPS, and to loopback hosts as browsers do for localhost).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE, USER_AGENT};
use http::{Method, Request, StatusCode};
use regex::Regex;
use url::Url;

use super::directory::PupilRef;
use super::http::{self as web, Body, HttpClient};
use super::pronote::LandingOutcome;

/// Redirects followed before giving up. A pinning proxy in `retry` mode adds two per
/// retry; real browsers stop at about 20.
pub const DEFAULT_MAX_HOPS: usize = 20;

/// One request's budget; the simulators answer in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a scripted visit stopped.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("URL cannot be requested: {0}")]
    Url(String),
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answer body unreadable or too large")]
    Body,
    #[error("more than {max} redirects")]
    TooManyRedirects { max: usize },
    #[error("redirect without a usable Location")]
    BadRedirect,
}

impl BrowserError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            BrowserError::Url(_) => "sim.browser.url",
            BrowserError::Request(_) => "sim.browser.request",
            BrowserError::Timeout(_) => "sim.browser.timeout",
            BrowserError::Body => "sim.browser.body",
            BrowserError::TooManyRedirects { .. } => "sim.browser.too_many_redirects",
            BrowserError::BadRedirect => "sim.browser.bad_redirect",
        }
    }
}

/// The page a visit ended on.
#[derive(Clone, Debug)]
pub struct Page {
    /// The final URL, after redirects.
    pub url: Url,
    pub status: StatusCode,
    pub body: String,
    /// Redirects followed to get here.
    pub hops: usize,
    /// Where a redirect not followed ([`Browser::fetch`], [`Browser::submit`]) points.
    pub location: Option<Url>,
}

/// A scripted browser: one cookie jar, like one person's browser profile.
pub struct Browser {
    client: HttpClient,
    jar: Vec<StoredCookie>,
    max_hops: usize,
}

#[derive(Clone, Debug)]
struct StoredCookie {
    name: String,
    value: String,
    host: String,
    path: String,
    expires: Option<Instant>,
    secure: bool,
}

/// Where a parent's login ended.
#[derive(Clone, Debug)]
pub struct LoginResult {
    /// The Pronote page's verdict, `None` when the visit did not end on a Pronote page
    /// (refused credentials, a chooser page, …).
    pub outcome: Option<LandingOutcome>,
    /// The child Pronote shows (`data-pupil` and `data-uai`), on a landing.
    pub pupil: Option<PupilRef>,
    /// Redirects followed across the whole dance.
    pub hops: usize,
    /// HTTP requests sent (first GET, form posts and redirects).
    pub requests: usize,
    pub page: Page,
}

// === impl Browser ===

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self::with_client(web::client())
    }

    /// Shares a connection pool between many browsers (cookie jars stay separate).
    pub fn with_client(client: HttpClient) -> Self {
        Self {
            client,
            jar: Vec::new(),
            max_hops: DEFAULT_MAX_HOPS,
        }
    }

    pub fn max_hops(mut self, max_hops: usize) -> Self {
        self.max_hops = max_hops;
        self
    }

    /// GETs `url`, following redirects.
    pub async fn get(&mut self, url: &Url) -> Result<Page, BrowserError> {
        self.navigate(Method::GET, url.clone(), None, true).await
    }

    /// GETs `url` once, without following a redirect (its target is in `location`).
    pub async fn fetch(&mut self, url: &Url) -> Result<Page, BrowserError> {
        self.navigate(Method::GET, url.clone(), None, false).await
    }

    /// POSTs `fields` once, without following a redirect.
    pub async fn submit(
        &mut self,
        url: &Url,
        fields: &[(String, String)],
    ) -> Result<Page, BrowserError> {
        self.navigate(Method::POST, url.clone(), Some(encode_form(fields)), false)
            .await
    }

    /// POSTs `fields` form-encoded to `url`, following redirects (as GETs after 301/302/303).
    pub async fn post_form(
        &mut self,
        url: &Url,
        fields: &[(String, String)],
    ) -> Result<Page, BrowserError> {
        self.navigate(Method::POST, url.clone(), Some(encode_form(fields)), true)
            .await
    }

    /// Forgets every cookie named `name` (a site's session ending, a person clearing it).
    pub fn clear_cookie(&mut self, name: &str) {
        self.jar.retain(|c| c.name != name);
    }

    /// Number of cookies held (expired ones included until next use).
    pub fn cookie_count(&self) -> usize {
        self.jar.len()
    }

    async fn navigate(
        &mut self,
        mut method: Method,
        mut url: Url,
        mut form: Option<Bytes>,
        follow: bool,
    ) -> Result<Page, BrowserError> {
        let mut hops = 0;
        loop {
            let response = self.send(&method, &url, form.clone()).await?;
            let status = response.status();
            self.store_cookies(&url, response.headers());
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok());
            if status.is_redirection() && follow {
                let next = location.ok_or(BrowserError::BadRedirect)?;
                hops += 1;
                if hops > self.max_hops {
                    return Err(BrowserError::TooManyRedirects { max: self.max_hops });
                }
                if !matches!(
                    status,
                    StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                ) {
                    method = Method::GET;
                    form = None;
                }
                url = next;
                continue;
            }
            let body = web::read_body(response.into_body())
                .await
                .ok_or(BrowserError::Body)?;
            let body = String::from_utf8_lossy(&body).into_owned();
            if let (true, true, Some(next)) =
                (follow, status.is_success(), refresh_target(&url, &body))
            {
                hops += 1;
                if hops > self.max_hops {
                    return Err(BrowserError::TooManyRedirects { max: self.max_hops });
                }
                method = Method::GET;
                form = None;
                url = next;
                continue;
            }
            return Ok(Page {
                url,
                status,
                body,
                hops,
                location,
            });
        }
    }

    async fn send(
        &mut self,
        method: &Method,
        url: &Url,
        form: Option<Bytes>,
    ) -> Result<http::Response<hyper::body::Incoming>, BrowserError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .header(USER_AGENT, "bonenfant-sim-browser/1");
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header(COOKIE, cookies);
        }
        let request = match form {
            // Browsers send the submitting page's origin with a form POST; the scripted
            // forms all post to their own origin.
            Some(form) => request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(http::header::ORIGIN, url.origin().ascii_serialization())
                .body(Body::from(form)),
            None => request.body(Body::new(Bytes::new())),
        }
        .map_err(|e| BrowserError::Url(e.to_string()))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(BrowserError::Timeout(REQUEST_TIMEOUT)),
        }
    }

    /// `Cookie` header for `url`, most specific path first.
    fn cookie_header(&mut self, url: &Url) -> Option<String> {
        let now = Instant::now();
        self.jar.retain(|c| c.expires.map_or(true, |e| e > now));
        let host = url.host_str()?;
        let secure_ok = url.scheme() == "https" || is_loopback(host);
        let mut matching: Vec<&StoredCookie> = self
            .jar
            .iter()
            .filter(|c| {
                c.host == host && path_matches(url.path(), &c.path) && (!c.secure || secure_ok)
            })
            .collect();
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let header = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        (!header.is_empty()).then_some(header)
    }

    fn store_cookies(&mut self, url: &Url, headers: &http::HeaderMap) {
        let Some(host) = url.host_str() else {
            return;
        };
        for value in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let Ok(parsed) = cookie::Cookie::parse_encoded(value) else {
                continue;
            };
            let path = parsed
                .path()
                .filter(|p| p.starts_with('/'))
                .map(str::to_owned)
                .unwrap_or_else(|| default_path(url.path()));
            let now = Instant::now();
            let expired_date = parsed
                .expires_datetime()
                .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
            let expires = match parsed.max_age() {
                Some(age) if age <= cookie::time::Duration::ZERO => Some(now),
                Some(age) => Some(now + Duration::from_secs(age.whole_seconds().unsigned_abs())),
                None if expired_date => Some(now),
                None => None,
            };
            self.jar
                .retain(|c| !(c.name == parsed.name() && c.host == host && c.path == path));
            if expires.is_some_and(|e| e <= now) {
                continue;
            }
            self.jar.push(StoredCookie {
                name: parsed.name().to_owned(),
                value: parsed.value().to_owned(),
                host: host.to_owned(),
                path,
                expires,
                secure: parsed.secure().unwrap_or(false),
            });
        }
    }
}

fn encode_form(fields: &[(String, String)]) -> Bytes {
    Bytes::from(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish(),
    )
}

/// RFC 6265 §5.1.4 path match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request
        .strip_prefix(cookie)
        .is_some_and(|rest| rest.is_empty() || cookie.ends_with('/') || rest.starts_with('/'))
}

/// RFC 6265 §5.1.4 default path: the request path up to its last `/`.
fn default_path(request: &str) -> String {
    match request.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => request[..i].to_owned(),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

// === the login dance ===

static FORM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)<form\b([^>]*)>(.*?)</form>"#).unwrap_or_else(|e| unreachable!("FORM: {e}"))
});
static INPUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<input\b([^>]*)>").unwrap_or_else(|e| unreachable!("INPUT: {e}"))
});
static ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)([a-z-]+)\s*=\s*"([^"]*)""#)
        .unwrap_or_else(|e| unreachable!("ATTRIBUTE: {e}"))
});
static BUTTON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<button\b([^>]*)>(.*?)</button>")
        .unwrap_or_else(|e| unreachable!("BUTTON: {e}"))
});
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<label\b([^>]*)>(.*?)</label>").unwrap_or_else(|e| unreachable!("LABEL: {e}"))
});
static SELECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<select\b([^>]*)>(.*?)</select>")
        .unwrap_or_else(|e| unreachable!("SELECT: {e}"))
});
/// Where an option starts; its end tag is optional in HTML, so options are cut there.
static OPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)<option\b").unwrap_or_else(|e| unreachable!("OPTION: {e}")));
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").unwrap_or_else(|e| unreachable!("TAG: {e}")));
static MAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<main\b([^>]*)>").unwrap_or_else(|e| unreachable!("MAIN: {e}"))
});
static META: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<meta\b([^>]*)>").unwrap_or_else(|e| unreachable!("META: {e}"))
});

/// Where a page's `<meta http-equiv="refresh" content="0;url=…">` leads, resolved
/// against `url`, as browsers follow it (bonenfant answers a pin this way).
pub fn refresh_target(url: &Url, body: &str) -> Option<Url> {
    META.captures_iter(body).find_map(|meta| {
        let attributes = attributes_vec(meta.get(1)?.as_str());
        let field = |key: &str| attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if !field("http-equiv")?.eq_ignore_ascii_case("refresh") {
            return None;
        }
        let (_, target) = field("content")?.split_once(';')?;
        let target = target.trim_start();
        let target = target
            .get(..4)
            .filter(|prefix| prefix.eq_ignore_ascii_case("url="))
            .map_or(target, |_| &target[4..]);
        url.join(target.trim().trim_matches(['\'', '"'])).ok()
    })
}

/// A form of a page: where it posts, and its hidden fields.
#[derive(Clone, Debug)]
pub struct Form {
    pub action: Url,
    pub fields: Vec<(String, String)>,
}

/// Logs a parent in through Pronote: the Pronote page, the CAS login form (skipped when
/// the ENT's SSO session is still alive), the credentials, the redirects back; then reads
/// which child the Pronote page shows.
pub async fn parent_login(
    browser: &mut Browser,
    pronote_url: &Url,
    login: &str,
    password: &str,
) -> Result<LoginResult, BrowserError> {
    let mut page = browser.get(pronote_url).await?;
    let mut hops = page.hops;
    let mut requests = 1 + page.hops;
    if let Some(form) = login_form(&page) {
        let mut fields = form.fields;
        fields.retain(|(name, _)| name != "username" && name != "password");
        fields.push(("username".to_owned(), login.to_owned()));
        fields.push(("password".to_owned(), password.to_owned()));
        page = browser.post_form(&form.action, &fields).await?;
        hops += page.hops;
        requests += 1 + page.hops;
    }
    let (outcome, pupil) = landing(&page);
    Ok(LoginResult {
        outcome,
        pupil,
        hops,
        requests,
        page,
    })
}

/// Which child a Pronote page shows, read from its `<main data-…>`: `(None, None)` for
/// any other page.
pub fn landing(page: &Page) -> (Option<LandingOutcome>, Option<PupilRef>) {
    let main = pronote_main(&page.body);
    let outcome = main
        .as_ref()
        .and_then(|m| match m.get("outcome").map(String::as_str) {
            Some("landed") => Some(LandingOutcome::Landed),
            Some("unknown_user") => Some(LandingOutcome::UnknownUser),
            Some("failure") => Some(LandingOutcome::Failure),
            _ => None,
        });
    let pupil = main.as_ref().and_then(|m| {
        Some(PupilRef {
            uai: m.get("uai")?.clone(),
            eleve_id: m.get("pupil")?.clone(),
        })
    });
    (outcome, pupil)
}

/// The page's form that asks for a password, if any.
fn login_form(page: &Page) -> Option<Form> {
    form_with_field(page, "password")
}

/// The page's first form with an input named `field` (a password for the ENT's login
/// form, `csrf` for bonenfant's chooser page).
pub fn form_with_field(page: &Page, field_name: &str) -> Option<Form> {
    FORM.captures_iter(&page.body).find_map(|form| {
        let attributes = attributes_vec(form.get(1)?.as_str());
        let inner = form.get(2)?.as_str();
        let inputs: Vec<Vec<(String, String)>> = INPUT
            .captures_iter(inner)
            .filter_map(|input| Some(attributes_vec(input.get(1)?.as_str())))
            .collect();
        let field = |input: &[(String, String)], key: &str| {
            input.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        };
        if !inputs
            .iter()
            .any(|i| field(i, "name").as_deref() == Some(field_name))
        {
            return None;
        }
        let action = attributes
            .iter()
            .find(|(k, _)| k == "action")
            .map(|(_, v)| v.as_str());
        let action = page.url.join(action.unwrap_or("")).ok()?;
        let fields = inputs
            .iter()
            .filter(|i| field(i, "type").as_deref() == Some("hidden"))
            .filter_map(|i| Some((field(i, "name")?, field(i, "value").unwrap_or_default())))
            .collect();
        Some(Form { action, fields })
    })
}

/// One answer a form offers for a field, as a person sees it: a radio button or a
/// `<select>` option, with the text shown beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// What the form posts when this is picked.
    pub value: String,
    /// The visible label, tags dropped, entities resolved, white space collapsed.
    pub label: String,
}

/// The page's first form that offers choices for `field` (radio buttons or a select),
/// with its hidden fields (a CSRF token, say), and the choices in page order. A radio
/// button's label is the `<label for=…>` naming it, else the `<label>` around it.
pub fn choices(page: &Page, field: &str) -> Option<(Form, Vec<Choice>)> {
    FORM.captures_iter(&page.body).find_map(|captures| {
        let attributes = attributes_vec(captures.get(1)?.as_str());
        let inner = captures.get(2)?.as_str();
        let named = |attributes: &[(String, String)], key: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let mut found = Vec::new();
        for input in INPUT.captures_iter(inner) {
            let Some(tag) = input.get(1) else { continue };
            let input = attributes_vec(tag.as_str());
            let is_choice = named(&input, "type").is_some_and(|t| t.eq_ignore_ascii_case("radio"))
                && named(&input, "name").as_deref() == Some(field);
            if !is_choice {
                continue;
            }
            let value = named(&input, "value").unwrap_or_else(|| "on".to_owned());
            let id = named(&input, "id");
            let label = LABEL.captures_iter(inner).find_map(|label| {
                let label_attributes = attributes_vec(label.get(1)?.as_str());
                let text = label.get(2)?.as_str();
                let names_it = match named(&label_attributes, "for") {
                    Some(target) => id.as_deref() == Some(target.as_str()),
                    None => text.contains(tag.as_str()),
                };
                names_it.then(|| visible_text(text))
            });
            found.push(Choice {
                value,
                label: label.unwrap_or_default(),
            });
        }
        for select in SELECT.captures_iter(inner) {
            let select_attributes = attributes_vec(select.get(1)?.as_str());
            if named(&select_attributes, "name").as_deref() != Some(field) {
                continue;
            }
            for option in OPTION.split(select.get(2)?.as_str()).skip(1) {
                let Some((tag, rest)) = option.split_once('>') else {
                    continue;
                };
                let option_attributes = attributes_vec(tag);
                let text = rest.split("</option>").next().unwrap_or(rest);
                let label = visible_text(text);
                let value = named(&option_attributes, "value").unwrap_or_else(|| label.clone());
                found.push(Choice { value, label });
            }
        }
        // One submit button per choice: its own name and value, its text the label.
        for button in BUTTON.captures_iter(inner) {
            let button_attributes = attributes_vec(button.get(1)?.as_str());
            if named(&button_attributes, "name").as_deref() != Some(field) {
                continue;
            }
            let label = visible_text(button.get(2)?.as_str());
            let value = named(&button_attributes, "value").unwrap_or_default();
            found.push(Choice { value, label });
        }
        if found.is_empty() {
            return None;
        }
        let action = named(&attributes, "action").unwrap_or_default();
        let action = page.url.join(&action).ok()?;
        let fields = INPUT
            .captures_iter(inner)
            .filter_map(|input| Some(attributes_vec(input.get(1)?.as_str())))
            .filter(|i| named(i, "type").as_deref() == Some("hidden"))
            .filter_map(|i| Some((named(&i, "name")?, named(&i, "value").unwrap_or_default())))
            .collect();
        Some((Form { action, fields }, found))
    })
}

/// The choice whose label shows `first_name` as a word (case aside), as a parent looks
/// for their child; among several (siblings may share a first name), the one that also
/// shows `class`. `None` when no label, or more than one, fits: a person would not know
/// which to pick either.
pub fn choice_showing<'a>(
    choices: &'a [Choice],
    first_name: &str,
    class: &str,
) -> Option<&'a Choice> {
    let shows = |choice: &Choice, wanted: &str| {
        let wanted = wanted.to_lowercase();
        choice
            .label
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
            .any(|word| word.to_lowercase() == wanted)
    };
    let named: Vec<&Choice> = choices.iter().filter(|c| shows(c, first_name)).collect();
    match named[..] {
        [only] => Some(only),
        [] => None,
        _ => {
            let mut in_class = named.into_iter().filter(|c| shows(c, class));
            match (in_class.next(), in_class.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

/// Markup as a person reads it: tags dropped, entities resolved, white space collapsed.
fn visible_text(markup: &str) -> String {
    let text = TAG.replace_all(markup, " ");
    let text = unescape_html(&text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Resolves the XML entities and `&nbsp;` (HTML pages use it; an unknown entity is kept
/// as written).
fn unescape_html(text: &str) -> String {
    let text = text.replace("&nbsp;", "\u{a0}");
    quick_xml::escape::unescape(&text)
        .map(|v| v.into_owned())
        .unwrap_or(text)
}

/// The `data-*` attributes of the page's `<main>`, keyed without `data-`.
fn pronote_main(body: &str) -> Option<std::collections::HashMap<String, String>> {
    let main = MAIN.captures(body)?;
    Some(
        attributes_vec(main.get(1)?.as_str())
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("data-")?.to_owned(), v)))
            .collect(),
    )
}

/// `name="value"` pairs of a tag, names lower-cased, values HTML-unescaped.
fn attributes_vec(tag: &str) -> Vec<(String, String)> {
    ATTRIBUTE
        .captures_iter(tag)
        .filter_map(|c| {
            let name = c.get(1)?.as_str().to_ascii_lowercase();
            Some((name, unescape_html(c.get(2)?.as_str())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_match_follows_rfc_6265() {
        assert!(path_matches("/cas/login", "/cas"));
        assert!(path_matches("/cas", "/cas"));
        assert!(!path_matches("/cashier", "/cas"));
        assert!(path_matches("/anything", "/"));
        assert_eq!(default_path("/cas/login"), "/cas");
        assert_eq!(default_path("/login"), "/");
    }

    fn set_cookies(browser: &mut Browser, url: &Url, values: &[&str]) {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append(SET_COOKIE, http::HeaderValue::from_str(value).unwrap());
        }
        browser.store_cookies(url, &headers);
    }

    #[tokio::test]
    async fn jar_honours_path_max_age_and_secure() {
        let mut browser = Browser::new();
        let login = Url::parse("http://127.0.0.1:1/cas/login").unwrap();
        set_cookies(
            &mut browser,
            &login,
            &[
                "CASTGC=abc; Path=/cas; HttpOnly",
                "lang=fr",
                "__Host-s=1; Path=/; Secure",
            ],
        );
        assert_eq!(
            browser.cookie_header(&login).as_deref(),
            Some("CASTGC=abc; lang=fr; __Host-s=1")
        );
        let pronote = Url::parse("http://127.0.0.1:2/0330101a/pronote/parent.html").unwrap();
        assert_eq!(
            browser.cookie_header(&pronote).as_deref(),
            Some("__Host-s=1")
        );
        let remote = Url::parse("http://example.org/cas/login").unwrap();
        assert_eq!(browser.cookie_header(&remote), None, "host-only cookies");
        set_cookies(&mut browser, &login, &["CASTGC=; Path=/cas; Max-Age=0"]);
        assert_eq!(
            browser.cookie_header(&login).as_deref(),
            Some("lang=fr; __Host-s=1")
        );
    }

    #[test]
    fn finds_the_password_form_and_its_hidden_fields() {
        let page = Page {
            url: Url::parse("http://127.0.0.1:1/cas/login?service=x").unwrap(),
            status: StatusCode::OK,
            body: r#"<form method="get" action="/search"><input name="q"></form>
<form id="fm1" method="post" action="login"><input type="hidden" name="service" value="http://h/a?b=1&amp;c=2">
<input type="text" name="username"><input type="password" name="password"></form>"#
                .to_owned(),
            hops: 0,
            location: None,
        };
        let form = login_form(&page).unwrap();
        assert_eq!(form.action.as_str(), "http://127.0.0.1:1/cas/login");
        assert_eq!(
            form.fields,
            vec![("service".to_owned(), "http://h/a?b=1&c=2".to_owned())]
        );
    }

    fn page(body: &str) -> Page {
        Page {
            url: Url::parse("http://127.0.0.1:1/bonenfant/choose?service=x").unwrap(),
            status: StatusCode::OK,
            body: body.to_owned(),
            hops: 0,
            location: None,
        }
    }

    /// The chooser's markup as bonenfant writes it: radio buttons labelled by `for`.
    #[test]
    fn reads_radio_choices_by_their_labels_and_keeps_the_hidden_fields() {
        let page = page(
            r#"<form method="post" action="/bonenfant/choose">
<fieldset><legend>Pour quel enfant voulez-vous ouvrir Pronote&nbsp;?</legend><ul>
<li><input type="radio" name="child" id="c0" value="t0" required><label for="c0">L&#233;a — classe de 4B</label></li>
<li><input type="radio" name="child" id="c1" value="t1" required checked><label for="c1">Hugo &amp; co — classe de 6A</label></li>
</ul></fieldset>
<input type="hidden" name="service" value="http://h/a?b=1&amp;c=2">
<input type="hidden" name="csrf" value="tok">
<button type="submit">Ouvrir Pronote pour cet enfant</button></form>"#,
        );
        let (form, found) = choices(&page, "child").unwrap();
        assert_eq!(form.action.as_str(), "http://127.0.0.1:1/bonenfant/choose");
        assert_eq!(
            form.fields,
            [
                ("service".to_owned(), "http://h/a?b=1&c=2".to_owned()),
                ("csrf".to_owned(), "tok".to_owned())
            ]
        );
        let labels: Vec<&str> = found.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["Léa — classe de 4B", "Hugo & co — classe de 6A"]);
        assert_eq!(
            choice_showing(&found, "léa", "3A").map(|c| c.value.as_str()),
            Some("t0")
        );
        assert_eq!(
            choice_showing(&found, "Hugo", "6A").map(|c| c.value.as_str()),
            Some("t1")
        );
        assert_eq!(choice_showing(&found, "Lé", "4B"), None, "whole words only");
        assert!(choices(&page, "other").is_none());
    }

    #[test]
    fn reads_wrapping_labels_and_select_options() {
        let wrapped = page(
            r#"<form action="pin"><label><input type="radio" name="child" value="a"> Zoé (5C)</label>
<label><input type="radio" name="child" value="b"> Zoé (3A)</label></form>"#,
        );
        let (_, found) = choices(&wrapped, "child").unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            choice_showing(&found, "Zoé", "3A").map(|c| c.value.as_str()),
            Some("b")
        );
        assert_eq!(choice_showing(&found, "Zoé", "4B"), None, "ambiguous");
        let select = page(
            r#"<form action="pin"><select name="child"><option value="x">Enfant n°1<option value="y">Tom</select></form>"#,
        );
        let (_, found) = choices(&select, "child").unwrap();
        let labels: Vec<&str> = found.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["Enfant n°1", "Tom"]);
        assert_eq!(
            choice_showing(&found, "Léa", "4B"),
            None,
            "no name shown, no guess"
        );
    }

    #[test]
    fn reads_the_landing_from_the_main_element() {
        let main =
            pronote_main(r#"<main data-outcome="landed" data-uai="0330012A" data-pupil="123456">"#)
                .unwrap();
        assert_eq!(main.get("pupil").map(String::as_str), Some("123456"));
        assert_eq!(main.get("outcome").map(String::as_str), Some("landed"));
    }
}
