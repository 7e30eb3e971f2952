//! The CAS protocol, pure and I/O-free: endpoints, tickets, request parameters,
//! a strict parse of every validation answer and a canonical serialisation.
//!
//! Nothing here touches a socket or a clock, so all of it is tested by properties and
//! fuzzed (`fuzz/`).
//!
//! # Layout
//!
//! * `endpoint`, `ticket`, `request`: which endpoint a path names, the ticket gate,
//!   validation parameters, login redirects and single-logout bodies.
//! * `model`: the one typed model ([`Outcome`]) every format is read into.
//! * `xml`: the strict reader every XML format goes through (well-formedness, one
//!   root, namespaces, references, limits) and the escaping the writers share.
//! * `cas_xml`, `json`, `saml`, `text`: one module per answer format (CAS 2/3 XML,
//!   JSON, SAML 1.1, CAS 1.0), each with its schema walk and its canonical writer.
//! * `build`: the rules every format shares when it assembles an [`Assertion`].
//! * `error`: [`ParseError`] and its stable codes (`cas.parse.*`).
//! * `fuzzing`: the properties the fuzz targets and the seed replay check.

mod build;
mod cas_xml;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod model;
mod request;
mod saml;
mod text;
mod ticket;
mod xml;

pub use endpoint::{classify, Endpoint};
pub use error::ParseError;
pub use model::{Assertion, Attributes, AuthMeta, Failure, Outcome, ResponseFormat};
pub use request::{
    login_redirect, logout_session_index, LoginRedirect, RequestError, ValidationRequest,
};
pub use ticket::{ServiceTicket, TicketError};

/// Bounds on what the parser accepts (invariant I5; `docs/security.md`, T25).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Whole answer, in bytes. CAS answers are a few KiB.
    pub max_bytes: usize,
    /// Element nesting depth.
    pub max_depth: usize,
    /// Attribute (name, value) pairs in one assertion.
    pub max_attributes: usize,
    /// Bytes in one text or attribute value.
    pub max_value_len: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 32,
            max_attributes: 256,
            max_value_len: 4096,
        }
    }
}

/// What the parser needs besides the bytes. Pure: the caller supplies the clock.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions<'a> {
    pub limits: ParseLimits,
    /// Unix seconds, for SAML `Conditions` (`NotBefore`/`NotOnOrAfter`); `None` skips
    /// the check (tests, offline tools).
    pub now_unix: Option<u64>,
    /// The service the ticket was validated for, checked against SAML `Audience`;
    /// `None` skips the check.
    pub service: Option<&'a str>,
}

/// What a serialised answer needs besides the outcome (SAML carries a recipient, an
/// audience and a validity window).
#[derive(Clone, Copy, Debug)]
pub struct AnswerContext<'a> {
    pub service: &'a str,
    /// Unix seconds.
    pub now_unix: u64,
}

/// Strictly parses a validation answer in `format` (`docs/domain.md` for the formats,
/// `docs/security.md` for the rules). For `Xml` and `Json` the body decides (servers
/// ignore `format=JSON`).
pub fn parse_response(
    format: ResponseFormat,
    body: &[u8],
    options: &ParseOptions<'_>,
) -> Result<Outcome, ParseError> {
    match format {
        ResponseFormat::Cas1Text => text::parse(body, options),
        ResponseFormat::Saml11 => saml::parse(body, options),
        ResponseFormat::Xml | ResponseFormat::Json => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'{') {
                json::parse(body, options)
            } else {
                cas_xml::parse(body, options)
            }
        }
    }
}

/// Writes the canonical form of `outcome` in `format`: fixed `cas` prefix, no comments,
/// escaped text, attributes as `cas:attributes` children in model order.
/// `parse_response(f, &serialize(x, f, ctx), …) == Ok(x)` for every `x` the format carries.
pub fn serialize(
    outcome: &Outcome,
    format: ResponseFormat,
    context: &AnswerContext<'_>,
) -> Vec<u8> {
    match format {
        ResponseFormat::Cas1Text => text::serialize(outcome),
        ResponseFormat::Xml => cas_xml::serialize(outcome),
        ResponseFormat::Json => json::serialize(outcome),
        ResponseFormat::Saml11 => saml::serialize(outcome, context),
    }
}
