//! Request-side parameters: validation requests, login redirects, single-logout bodies.

use super::{Endpoint, ResponseFormat, ServiceTicket, TicketError};

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("bad ticket: {0}")]
    Ticket(#[from] TicketError),
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

impl ValidationRequest {
    /// From a GET validation's query string (`/validate`, `/serviceValidate`, …) or, for
    /// `/samlValidate`, the query (`TARGET`) and the SOAP body (`AssertionArtifact`).
    pub fn parse(endpoint: Endpoint, query: Option<&str>, body: &[u8]) -> Result<Self, RequestError> {
        let _ = (endpoint, query, body);
        todo!()
    }
}

/// A `/login` answer's redirect to the service with a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRedirect {
    pub ticket: ServiceTicket,
    /// The `Location` with the ticket parameter removed: the service URL as the ENT saw it.
    pub service: String,
}

/// Reads the ticket (`ticket` or `SAMLart`) from a login redirect's `Location`.
/// `None` when the Location carries no ticket; `Some(Err)` when it carries a bad one.
pub fn login_redirect(location: &str) -> Option<Result<LoginRedirect, RequestError>> {
    let _ = location;
    todo!()
}

/// The `SessionIndex` (a ticket) of a single-logout POST: form field `logoutRequest` or a
/// raw XML body.
pub fn logout_session_index(content_type: Option<&str>, body: &[u8]) -> Option<ServiceTicket> {
    let _ = (content_type, body);
    todo!()
}
