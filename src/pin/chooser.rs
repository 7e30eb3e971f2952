//! The chooser page: where a parent says which child they mean.
//!
//! Served by the proxy under the control prefix (`/bonenfant/choose`). Plain HTML that
//! works without JavaScript, French by default; its markup is in `pages`. Each child is
//! a submit button posting an opaque per-session token, never the pupil's identifier,
//! with a CSRF token.

use sha2::{Digest, Sha256};

use crate::code::Code;
use crate::pages::{self, Brand, Choice};
use crate::pupil::PupilKey;

/// One child the page offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChooserChild<'a> {
    pub key: &'a PupilKey,
    pub first_name: Option<&'a str>,
    pub class: Option<&'a str>,
    pub establishment: Option<&'a str>,
    /// Whether this child is the current pin.
    pub pinned: bool,
}

/// The fields of a pin POST, not yet checked against the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinForm {
    /// Opaque token naming a child (see [`child_token`]).
    pub child: String,
    /// Where to send the parent afterwards (the Pronote service URL).
    pub service: String,
    pub csrf: String,
}

/// Why a pin request was refused. Stable codes, as every rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooserError {
    #[error("pin form is missing the field {0}")]
    MissingField(&'static str),
    #[error("pin form repeats the field {0}")]
    RepeatedField(&'static str),
    #[error("pin request without a bonenfant session")]
    NoSession,
    #[error("pin request with a bad CSRF token")]
    Csrf,
    #[error("pin request from another origin")]
    Origin,
    #[error("pin request names a child not asserted for this parent")]
    UnknownChild,
    #[error("pin requests must be POSTed")]
    Method,
}

impl ChooserError {
    pub fn code(&self) -> Code {
        match self {
            ChooserError::MissingField(_) => Code::PinFormMissingField,
            ChooserError::RepeatedField(_) => Code::PinFormRepeatedField,
            ChooserError::NoSession => Code::PinNoSession,
            ChooserError::Csrf => Code::PinCsrf,
            ChooserError::Origin => Code::PinOrigin,
            ChooserError::UnknownChild => Code::PinUnknownChild,
            ChooserError::Method => Code::PinMethod,
        }
    }

    /// HTTP status for the browser.
    pub fn status(&self) -> http::StatusCode {
        match self {
            ChooserError::Method => http::StatusCode::METHOD_NOT_ALLOWED,
            ChooserError::Csrf | ChooserError::Origin | ChooserError::UnknownChild => {
                http::StatusCode::FORBIDDEN
            }
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The opaque token for a child in one session: a hash of the session's CSRF token and
/// the pupil key, so the page never carries the pupil's identifier and a token from one
/// session means nothing in another.
pub fn child_token(csrf: &str, key: &PupilKey) -> String {
    let mut hash = Sha256::new();
    hash.update(b"bonenfant/chooser\0");
    hash.update(csrf.as_bytes());
    hash.update(b"\0");
    hash.update(key.uai.as_str().as_bytes());
    hash.update(b"\0");
    hash.update(key.eleve_id.as_bytes());
    hex::encode(&hash.finalize()[..12])
}

/// Renders the chooser page, children in the order given. `action` is the form's
/// target path.
pub fn render(
    brand: &Brand,
    children: &[ChooserChild<'_>],
    service: &str,
    csrf: &str,
    action: &str,
) -> String {
    let choices: Vec<Choice<'_>> = children
        .iter()
        .map(|child| Choice {
            token: child_token(csrf, child.key),
            first_name: child.first_name,
            class: child.class,
            establishment: child.establishment,
            checked: child.pinned,
        })
        .collect();
    pages::chooser(brand, &choices, service, csrf, action)
}

/// Parses an `application/x-www-form-urlencoded` pin POST. Each field exactly once.
pub fn parse_form(body: &[u8]) -> Result<PinForm, ChooserError> {
    let mut child = None;
    let mut service = None;
    let mut csrf = None;
    for (name, value) in form_urlencoded::parse(body) {
        let (slot, field) = match name.as_ref() {
            "child" => (&mut child, "child"),
            "service" => (&mut service, "service"),
            "csrf" => (&mut csrf, "csrf"),
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ChooserError::RepeatedField(field));
        }
    }
    Ok(PinForm {
        child: child.ok_or(ChooserError::MissingField("child"))?,
        service: service.ok_or(ChooserError::MissingField("service"))?,
        csrf: csrf.ok_or(ChooserError::MissingField("csrf"))?,
    })
}

/// The CSRF defence beside the token: a POST must come from this very host. A request
/// without `Origin` is accepted only with a same-host `Referer` (old browsers).
pub fn same_origin(
    headers: &http::HeaderMap,
    scheme: &str,
    host: &str,
) -> Result<(), ChooserError> {
    let source = headers
        .get(http::header::ORIGIN)
        .or_else(|| headers.get(http::header::REFERER))
        .and_then(|v| v.to_str().ok())
        .ok_or(ChooserError::Origin)?;
    let source = url::Url::parse(source).map_err(|_| ChooserError::Origin)?;
    // Scheme, host and port: an `http` page must not post for an `https` session
    // (a network attacker can serve the former), nor the reverse.
    let ours = url::Url::parse(&format!("{scheme}://{host}/")).map_err(|_| ChooserError::Origin)?;
    if source.origin() == ours.origin() {
        Ok(())
    } else {
        Err(ChooserError::Origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pupil::Uai;

    fn key(id: &str) -> PupilKey {
        PupilKey {
            uai: Uai::parse("0330012A").unwrap(),
            eleve_id: id.to_owned(),
        }
    }

    #[test]
    fn page_never_shows_the_pupil_identifier_and_escapes_names() {
        let k = key("4242001");
        let children = [ChooserChild {
            key: &k,
            first_name: Some("<Zoé>"),
            class: Some("4e B"),
            establishment: None,
            pinned: false,
        }];
        let html = render(
            &Brand::default(),
            &children,
            "https://x/?a=1&b=2",
            "tok",
            "/bonenfant/choose",
        );
        assert!(!html.contains("4242001"));
        assert!(html.contains("&lt;Zoé&gt;"));
        assert!(html.contains("a=1&amp;b=2"));
        assert!(html.contains(&child_token("tok", &k)));
    }

    #[test]
    fn child_tokens_differ_between_sessions() {
        let k = key("1");
        assert_ne!(child_token("a", &k), child_token("b", &k));
    }

    #[test]
    fn form_fields_must_appear_once() {
        assert_eq!(
            parse_form(b"child=a&child=b&service=s&csrf=c"),
            Err(ChooserError::RepeatedField("child"))
        );
        assert_eq!(
            parse_form(b"child=a&service=s"),
            Err(ChooserError::MissingField("csrf"))
        );
        let form = parse_form(b"child=a&service=https%3A%2F%2Fx%2F&csrf=c").unwrap();
        assert_eq!(form.service, "https://x/");
    }

    #[test]
    fn origin_must_match_host() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(
            same_origin(&headers, "https", "ent.example"),
            Err(ChooserError::Origin)
        );
        headers.insert(
            http::header::ORIGIN,
            "https://evil.example".parse().unwrap(),
        );
        assert_eq!(
            same_origin(&headers, "https", "ent.example"),
            Err(ChooserError::Origin)
        );
        headers.insert(http::header::ORIGIN, "https://ent.example".parse().unwrap());
        assert_eq!(same_origin(&headers, "https", "ent.example"), Ok(()));
        assert_eq!(
            same_origin(&headers, "https", "ent.example:443"),
            Ok(()),
            "the default port is the same origin"
        );
        headers.insert(
            http::header::ORIGIN,
            "http://127.0.0.1:8080".parse().unwrap(),
        );
        assert_eq!(same_origin(&headers, "http", "127.0.0.1:8080"), Ok(()));
    }

    /// Regression: the Origin check ignored the scheme, so a page served over plain
    /// HTTP (which a network attacker can forge) could post a pin for an HTTPS session.
    #[test]
    fn origin_of_another_scheme_is_refused() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::ORIGIN, "http://ent.example".parse().unwrap());
        assert_eq!(
            same_origin(&headers, "https", "ent.example"),
            Err(ChooserError::Origin)
        );
        headers.insert(http::header::ORIGIN, "https://ent.example".parse().unwrap());
        assert_eq!(
            same_origin(&headers, "http", "ent.example"),
            Err(ChooserError::Origin)
        );
    }
}
