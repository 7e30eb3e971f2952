//! Request-side parameters: validation requests, login redirects, single-logout bodies.
//!
//! Every ticket goes through the gate ([`ServiceTicket::parse`]) and every parameter
//! bonenfant reads must appear exactly once: a second `ticket` or `service` is the
//! classic way to make two parsers disagree (HTTP parameter pollution).

use crate::code::Code;
use std::borrow::Cow;

use super::xml::{Ns, XmlReader};
use super::{Endpoint, ParseError, ParseLimits, ResponseFormat, ServiceTicket, TicketError};

/// A back-channel validation request, parameters checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationRequest {
    pub endpoint: Endpoint,
    pub ticket: ServiceTicket,
    /// `service` (or SAML `TARGET`), percent-decoded.
    pub service: String,
    pub format: ResponseFormat,
    pub renew: bool,
    pub pgt_url: Option<String>,
}

/// Why a request was refused. Messages name the parameter, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("bad ticket: {0}")]
    Ticket(#[from] TicketError),
    #[error("parameter `{0}` is missing")]
    MissingParam(&'static str),
    #[error("parameter `{0}` appears more than once")]
    DuplicateParam(&'static str),
    #[error("parameter `{0}` is not valid percent-encoded UTF-8")]
    BadEncoding(&'static str),
    #[error("`format` is neither XML nor JSON")]
    BadFormat,
    #[error("a proxy ticket is not accepted on this endpoint")]
    ProxyTicketRefused,
    #[error("endpoint {0} does not validate tickets")]
    NotValidation(Endpoint),
    #[error("SAML request body refused: {0}")]
    SamlBody(ParseError),
}

impl RequestError {
    pub fn code(&self) -> Code {
        match self {
            RequestError::Ticket(e) => e.code(),
            RequestError::MissingParam(_) => Code::CasRequestMissingParam,
            RequestError::DuplicateParam(_) => Code::CasRequestDuplicateParam,
            RequestError::BadEncoding(_) => Code::CasRequestBadEncoding,
            RequestError::BadFormat => Code::CasRequestBadFormat,
            RequestError::ProxyTicketRefused => Code::CasRequestProxyTicketRefused,
            RequestError::NotValidation(_) => Code::CasRequestNotValidation,
            RequestError::SamlBody(_) => Code::CasRequestSamlBody,
        }
    }
}

/// The parameters of one query string bonenfant cares about, each seen at most once.
struct Params<'q, const N: usize> {
    names: [&'static str; N],
    values: [Option<Cow<'q, str>>; N],
}

impl<'q, const N: usize> Params<'q, N> {
    /// Reads `query` (`a=1&b=2`, `+` is a space), keeping only `names`; a name seen
    /// twice is refused, other names are ignored.
    fn read(query: &'q str, names: [&'static str; N]) -> Result<Self, RequestError> {
        let mut values: [Option<Cow<'q, str>>; N] = std::array::from_fn(|_| None);
        for (raw_name, raw_value) in pairs(query) {
            let Ok(decoded) = decode(raw_name) else {
                continue;
            };
            let Some(i) = names.iter().position(|n| decoded == *n) else {
                continue;
            };
            let (Some(name), Some(slot)) = (names.get(i), values.get_mut(i)) else {
                continue;
            };
            if slot.is_some() {
                return Err(RequestError::DuplicateParam(name));
            }
            *slot = Some(decode(raw_value).map_err(|()| RequestError::BadEncoding(name))?);
        }
        Ok(Self { names, values })
    }

    fn take(&mut self, name: &'static str) -> Option<Cow<'q, str>> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values.get_mut(i)?.take()
    }
}

/// The `name=value` pairs of a query string, raw; a pair without `=` has an empty value.
fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// `application/x-www-form-urlencoded` decoding of one name or value; invalid UTF-8
/// after percent-decoding is refused rather than replaced. No copy for the plain names
/// and values most parameters are, one for the percent-encoded service URL.
fn decode(raw: &str) -> Result<Cow<'_, str>, ()> {
    use percent_encoding::percent_decode_str;
    if !raw.contains('+') {
        return percent_decode_str(raw).decode_utf8().map_err(|_| ());
    }
    let spaced = raw.replace('+', " ");
    let decoded = percent_decode_str(&spaced).decode_utf8().map_err(|_| ())?;
    Ok(Cow::Owned(decoded.into_owned()))
}

impl ValidationRequest {
    /// The answer format a validation asks for, before its parameters are checked: what
    /// a failure answering a malformed request (or a handler that panicked) is written
    /// in. JSON when any `format` parameter says so; only `format`'s values are decoded.
    pub fn fallback_format(endpoint: Endpoint, query: Option<&str>) -> ResponseFormat {
        match endpoint {
            Endpoint::Validate => ResponseFormat::Cas1Text,
            Endpoint::SamlValidate => ResponseFormat::Saml11,
            _ => {
                let json = pairs(query.unwrap_or("")).any(|(name, value)| {
                    decode(name).is_ok_and(|n| n == "format")
                        && decode(value).is_ok_and(|v| v.eq_ignore_ascii_case("json"))
                });
                if json {
                    ResponseFormat::Json
                } else {
                    ResponseFormat::Xml
                }
            }
        }
    }

    /// From a GET validation's query string (`/validate`, `/serviceValidate`, …) or, for
    /// `/samlValidate`, the query (`TARGET`) and the SOAP body (`AssertionArtifact`).
    pub fn parse(
        endpoint: Endpoint,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Self, RequestError> {
        if !endpoint.is_validation() {
            return Err(RequestError::NotValidation(endpoint));
        }
        let query = query.unwrap_or("");
        if endpoint == Endpoint::SamlValidate {
            let mut params = Params::read(query, ["TARGET"])?;
            let service = params
                .take("TARGET")
                .ok_or(RequestError::MissingParam("TARGET"))?;
            let ticket = saml_artifact(body)?;
            return Ok(Self {
                endpoint,
                ticket,
                service: service.into_owned(),
                format: ResponseFormat::Saml11,
                renew: false,
                pgt_url: None,
            });
        }
        let mut params = Params::read(query, ["service", "ticket", "pgtUrl", "renew", "format"])?;
        let service = params
            .take("service")
            .ok_or(RequestError::MissingParam("service"))?;
        let ticket = params
            .take("ticket")
            .ok_or(RequestError::MissingParam("ticket"))?;
        let ticket = ServiceTicket::parse(&ticket)?;
        if ticket.is_proxy_ticket() && endpoint.refuses_proxy_tickets() {
            return Err(RequestError::ProxyTicketRefused);
        }
        let format = if endpoint == Endpoint::Validate {
            ResponseFormat::Cas1Text
        } else {
            match params.take("format") {
                None => ResponseFormat::Xml,
                Some(f) if f.eq_ignore_ascii_case("XML") => ResponseFormat::Xml,
                Some(f) if f.eq_ignore_ascii_case("JSON") => ResponseFormat::Json,
                Some(_) => return Err(RequestError::BadFormat),
            }
        };
        Ok(Self {
            endpoint,
            ticket,
            service: service.into_owned(),
            format,
            // Apereo: any non-empty value sets it (CAS spec: "if this parameter is set").
            renew: params.take("renew").is_some_and(|r| !r.is_empty()),
            pgt_url: params.take("pgtUrl").map(Cow::into_owned),
        })
    }
}

/// Limits for request bodies: a SAML request or a logout request is under 2 KiB.
fn request_limits() -> ParseLimits {
    ParseLimits {
        max_bytes: 16 * 1024,
        max_depth: 8,
        max_attributes: 0,
        max_value_len: 1024,
    }
}

/// `Envelope/Body/Request/AssertionArtifact`, any prefix or the default namespace
/// (java-cas-client), with or without `RequestID`/`IssueInstant`.
fn saml_artifact(body: &[u8]) -> Result<ServiceTicket, RequestError> {
    let value = saml_artifact_text(body).map_err(RequestError::SamlBody)?;
    Ok(ServiceTicket::parse(&value)?)
}

fn saml_artifact_text(body: &[u8]) -> Result<String, ParseError> {
    let limits = request_limits();
    let mut reader = XmlReader::new(body, &limits)?;
    let envelope = reader.root()?;
    if !envelope.is(Ns::Soap, "Envelope") {
        return Err(ParseError::WrongRoot("Envelope"));
    }
    let mut artifact = None;
    while let Some(child) = reader.next_child(&envelope)? {
        if child.is(Ns::Soap, "Header") {
            reader.skip(child)?;
            continue;
        }
        if !child.is(Ns::Soap, "Body") {
            return Err(ParseError::UnexpectedElement("Envelope"));
        }
        while let Some(request) = reader.next_child(&child)? {
            if !request.is(Ns::Saml1Protocol, "Request") {
                return Err(ParseError::UnexpectedElement("Body"));
            }
            while let Some(inner) = reader.next_child(&request)? {
                if !inner.is(Ns::Saml1Protocol, "AssertionArtifact") {
                    return Err(ParseError::UnexpectedElement("Request"));
                }
                if artifact.is_some() {
                    return Err(ParseError::DuplicateElement("AssertionArtifact"));
                }
                artifact = Some(reader.text(&inner, "AssertionArtifact")?);
            }
        }
    }
    reader.finish()?;
    artifact.ok_or(ParseError::MissingAttribute("Request"))
}

/// A `/login` answer's redirect to the service with a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRedirect {
    pub ticket: ServiceTicket,
    /// The `Location` with the ticket parameter removed: the service URL as the ENT saw it.
    pub service: String,
}

/// Query parameters that carry the ticket on the way back to the service (`SAMLart`
/// for SAML 1.1 logins: `docs/domain.md`, "Endpoints and parameters").
const TICKET_PARAMS: [&str; 2] = ["ticket", "SAMLart"];

/// Reads the ticket (`ticket` or `SAMLart`) from a login redirect's `Location`.
/// `None` when the Location carries no ticket; `Some(Err)` when it carries a bad one
/// (or two). The rest of the Location is kept byte for byte.
pub fn login_redirect(location: &str) -> Option<Result<LoginRedirect, RequestError>> {
    let (before_fragment, fragment) = match location.find('#') {
        Some(i) => location.split_at(i),
        None => (location, ""),
    };
    let (base, query) = before_fragment.split_once('?')?;
    let is_ticket = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        TICKET_PARAMS.contains(&name)
    };
    let mut tickets = query.split('&').filter(|p| is_ticket(p));
    let pair = tickets.next()?;
    if tickets.next().is_some() {
        return Some(Err(RequestError::DuplicateParam("ticket")));
    }
    let raw = pair.split_once('=').map_or("", |(_, v)| v);
    let result = decode(raw)
        .map_err(|()| RequestError::BadEncoding("ticket"))
        .and_then(|t| Ok(ServiceTicket::parse(&t)?))
        .map(|ticket| {
            let rest: Vec<&str> = query.split('&').filter(|p| !is_ticket(p)).collect();
            let mut service = String::with_capacity(location.len());
            service.push_str(base);
            if !rest.is_empty() {
                service.push('?');
                service.push_str(&rest.join("&"));
            }
            service.push_str(fragment);
            LoginRedirect { ticket, service }
        });
    Some(result)
}

/// The `SessionIndex` (a ticket) of a single-logout POST: form field `logoutRequest` or a
/// raw XML body (entcore).
pub fn logout_session_index(content_type: Option<&str>, body: &[u8]) -> Option<ServiceTicket> {
    let is_form = content_type.is_some_and(|c| {
        c.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }) || body.starts_with(b"logoutRequest=");
    let value = if is_form {
        let text = std::str::from_utf8(body).ok()?;
        let mut params = Params::read(text, ["logoutRequest"]).ok()?;
        session_index_text(params.take("logoutRequest")?.as_bytes())
    } else {
        session_index_text(body)
    };
    ServiceTicket::parse(&value.ok()?).ok()
}

/// `LogoutRequest/SessionIndex` (SAML 2.0 protocol namespace, any prefix).
fn session_index_text(xml: &[u8]) -> Result<String, ParseError> {
    let limits = request_limits();
    let mut reader = XmlReader::new(xml, &limits)?;
    let root = reader.root()?;
    if !root.is(Ns::Saml2Protocol, "LogoutRequest") {
        return Err(ParseError::WrongRoot("LogoutRequest"));
    }
    let mut index = None;
    while let Some(child) = reader.next_child(&root)? {
        if child.is(Ns::Saml2Protocol, "SessionIndex") {
            if index.is_some() {
                return Err(ParseError::DuplicateElement("SessionIndex"));
            }
            index = Some(reader.text(&child, "SessionIndex")?);
        } else if child.ns == Ns::Saml2Assertion {
            // `NameID` (`@NOT_USED@`), `Issuer`: not needed.
            reader.skip(child)?;
        } else {
            return Err(ParseError::UnexpectedElement("LogoutRequest"));
        }
    }
    reader.finish()?;
    index.ok_or(ParseError::MissingAttribute("LogoutRequest"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decode_reads_plus_escapes_and_stray_percent_signs() {
        for (raw, decoded) in [
            ("", Ok("")),
            ("plain", Ok("plain")),
            ("a+b", Ok("a b")),
            ("%2B", Ok("+")),
            ("%2b+%20", Ok("+  ")),
            // A `%` not followed by two hex digits stays as it is.
            ("%", Ok("%")),
            ("%4", Ok("%4")),
            ("%zz", Ok("%zz")),
            ("50%", Ok("50%")),
            ("%%41", Ok("%A")),
            ("%C3%A9", Ok("é")),
            (
                "https%3A%2F%2F0330012a.index-education.net%2Fpronote%2F",
                Ok("https://0330012a.index-education.net/pronote/"),
            ),
            // Invalid UTF-8 once decoded: refused, not replaced.
            ("%FF", Err(())),
            ("%C3", Err(())),
            ("a+%FF", Err(())),
        ] {
            assert_eq!(decode(raw).as_deref().map_err(|_| ()), decoded, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn fallback_format_agrees_with_a_full_form_parse(
            query in "((format|fo%72mat|service|%FF)(=(json|JSON|js%6Fn|xml|%FF|a+b)?)?&?){0,4}"
        ) {
            let json = form_urlencoded::parse(query.as_bytes())
                .any(|(k, v)| k == "format" && v.eq_ignore_ascii_case("json"));
            let expected = if json { ResponseFormat::Json } else { ResponseFormat::Xml };
            let endpoint = Endpoint::ServiceValidate;
            prop_assert_eq!(ValidationRequest::fallback_format(endpoint, Some(&query)), expected);
        }
    }
}
