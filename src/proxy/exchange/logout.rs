//! Logouts: the browser leaving the ENT, and the ENT's single-logout POST to a service.
//! Either way bonenfant forgets what it kept for that browser session: a shared
//! computer's next user must inherit nothing.

use std::time::Instant;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::{CasExchange, Handled};
use crate::cas::{self, Endpoint, ServiceTicket};
use crate::events::{self, LogoutKind, TraceEvent};
use crate::proxy::body::ProxyBody;
use crate::proxy::ConnInfo;
use crate::session::{SessionId, SessionStore};

impl CasExchange {
    /// The browser leaves the ENT: forward, and forget this browser's session.
    pub(super) async fn browser_logout(&self, req: Request<Incoming>, conn: ConnInfo) -> Handled {
        let cookie = self.cookies.open(req.headers(), self.now_ms());
        // Forgotten first: the person asked to leave, whether or not the ENT answers.
        let dropped = match &cookie {
            Some(cookie) => self.store.drop_session(&cookie.id).await.is_ok(),
            None => false,
        };
        let mut response = match self
            .forward_streaming(req.map(ProxyBody::from_client), &conn)
            .await
        {
            Ok(response) => self.stream_back(response),
            Err(refusal) => refusal.response,
        };
        if cookie.is_some() {
            response
                .headers_mut()
                .append(SET_COOKIE, self.cookies.clear());
        }
        Handled::new(
            response,
            TraceEvent::Logout(events::Logout {
                kind: LogoutKind::Browser,
                session: self.pseudo_session(cookie.as_ref().map(|c| &c.id)),
                dropped,
            }),
        )
    }

    /// A POST that may be a single-logout request: read it (bounded), drop the state
    /// of the ticket it names, forward it unchanged.
    pub(super) async fn single_logout(
        &self,
        endpoint: Option<Endpoint>,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Handled {
        let (parts, body) = req.into_parts();
        let body = match self.read_request_body(body).await {
            Ok(body) => body,
            Err(code) => return self.refuse(StatusCode::BAD_REQUEST, code, endpoint, started),
        };
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ticket = cas::logout_session_index(content_type.as_deref(), &body);
        let req = Request::from_parts(parts, ProxyBody::full(body));
        // The state goes whatever the client's answer: the ENT has ended the session.
        let session = match &ticket {
            Some(ticket) => self.forget(ticket).await,
            None => None,
        };
        let response = match self.forward_streaming(req, &conn).await {
            Ok(response) => self.stream_back(response),
            Err(refusal) if ticket.is_none() => return refusal.handled(endpoint, started),
            Err(refusal) => refusal.response,
        };
        match ticket {
            Some(_) => Handled::new(
                response,
                TraceEvent::Logout(events::Logout {
                    kind: LogoutKind::SingleLogout,
                    session: self.pseudo_session(session.as_ref()),
                    dropped: session.is_some(),
                }),
            ),
            None => Handled::passthrough(response, endpoint, started),
        }
    }

    async fn forget(&self, ticket: &ServiceTicket) -> Option<SessionId> {
        let session = self
            .store
            .forget_ticket(&self.store.ticket_key(ticket))
            .await
            .ok()
            .flatten()?;
        let _ = self.store.drop_session(&session).await;
        Some(session)
    }
}

/// Whether a request may be a single-logout POST worth reading: small, and form or XML.
pub(super) fn is_single_logout_candidate<B>(req: &Request<B>, max_body: usize) -> bool {
    if req.method() != Method::POST {
        return false;
    }
    let small = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len <= max_body);
    let kind = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let shaped = match kind.as_deref() {
        None => true,
        Some(t) => {
            t.starts_with("application/x-www-form-urlencoded")
                || t.starts_with("text/xml")
                || t.starts_with("application/xml")
        }
    };
    small && shaped
}
