//! bonenfant's own pages under the control prefix: the chooser (`GET …/choose`), where a
//! parent says which child they mean, and the pin it posts (`POST …/choose`). Only a
//! child already known for the session's principal can be pinned (`pin::chooser`).

use crate::code::Code;
use std::time::Instant;

use http::header::HOST;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::{login_service, CasExchange, Handled};
use crate::events::{self, Pseudonym, TraceEvent};
use crate::pages;
use crate::pin::chooser::{self, ChooserError};
use crate::proxy::error;
use crate::pupil::{PupilKey, PupilLabel, Uai};
use crate::session::cookie::SessionCookie;
use crate::session::{SessionChange, SessionState, SessionStore, SessionUpdate};

/// A refused pin request: why, and whose (as far as known).
struct PinRefusal {
    error: ChooserError,
    principal: Option<Pseudonym>,
    session: Option<Pseudonym>,
}

impl CasExchange {
    pub(super) async fn control(&self, req: Request<Incoming>, started: Instant) -> Handled {
        let path = &req.uri().path()[self.config.control_prefix.len()..];
        if path != "/choose" {
            let page = error::page(StatusCode::NOT_FOUND, Code::ProxyNotFound);
            return Handled::rejected(page, Code::ProxyNotFound, None, started);
        }
        let result = match *req.method() {
            Method::GET | Method::HEAD => Ok(self.chooser_page(&req).await),
            Method::POST => self.pin_post(req).await,
            _ => Err(PinRefusal {
                error: ChooserError::Method,
                principal: None,
                session: None,
            }),
        };
        result.unwrap_or_else(|refused| {
            Handled::new(
                error::page(refused.error.status(), refused.error.code()),
                TraceEvent::PinRefused(events::PinRefused {
                    code: refused.error.code(),
                    principal: refused.principal,
                    session: refused.session,
                }),
            )
        })
    }

    async fn chooser_page(&self, req: &Request<Incoming>) -> Handled {
        let now = self.now_ms();
        let service = login_service(req.uri().query()).unwrap_or_default();
        let cookie = self.cookies.open(req.headers(), now);
        let state = match &cookie {
            Some(c) => self.store.session(&c.id).await.ok().flatten(),
            None => None,
        };
        let expected = self.inspector.establishment.expected(&service);
        let (html, children) =
            self.chooser_html(state.as_ref(), cookie.as_ref(), &service, expected.as_ref());
        let principal = state.as_ref().and_then(|s| s.principal.as_deref());
        Handled::new(
            error::html(StatusCode::OK, html),
            TraceEvent::Chooser(events::Chooser {
                uai_expected: expected,
                children,
                principal: self.pseudo_principal(principal),
                session: self.pseudo_session(cookie.as_ref().map(|c| &c.id)),
            }),
        )
    }

    /// Every child known for the session's principal: what the ENT asserted in this
    /// session, and what the directory index says.
    fn known_children(&self, state: &SessionState) -> Vec<PupilKey> {
        match &state.principal {
            Some(principal) => self.inspector.known_children(principal, [], Some(state)),
            None => state.known.iter().map(|(k, _)| k.clone()).collect(),
        }
    }

    /// The chooser page for a session, listing the known children of the service's
    /// establishment (all of them when the service names none), and how many it lists.
    pub(super) fn chooser_html(
        &self,
        state: Option<&SessionState>,
        cookie: Option<&SessionCookie>,
        service: &str,
        expected: Option<&Uai>,
    ) -> (String, u32) {
        let known: Vec<PupilKey> = state
            .map(|s| self.known_children(s))
            .unwrap_or_default()
            .into_iter()
            .filter(|k| expected.map_or(true, |e| &k.uai == e))
            .collect();
        let pinned = state.and_then(|s| s.pin.as_ref());
        let index = self.inspector.index.load();
        let labels: Vec<Option<&PupilLabel>> = known
            .iter()
            .map(|k| index.as_deref().and_then(|i| i.label(k)))
            .collect();
        let children: Vec<chooser::ChooserChild<'_>> = known
            .iter()
            .zip(&labels)
            .map(|(key, label)| chooser::ChooserChild {
                key,
                first_name: label.map(|l| l.first_name.as_str()),
                class: label.and_then(|l| l.class.as_deref()),
                pinned: pinned == Some(key),
            })
            .collect();
        let csrf = cookie.map(SessionCookie::csrf_token).unwrap_or_default();
        let action = format!("{}/choose", self.config.control_prefix);
        let count = u32::try_from(children.len()).unwrap_or(u32::MAX);
        (chooser::render(&children, service, &csrf, &action), count)
    }

    async fn pin_post(&self, req: Request<Incoming>) -> Result<Handled, PinRefusal> {
        let now = self.now_ms();
        let cookie = self.cookies.open(req.headers(), now);
        let session = self.pseudo_session(cookie.as_ref().map(|c| &c.id));
        let refuse = |error, principal: Option<Pseudonym>| PinRefusal {
            error,
            principal,
            session: session.clone(),
        };
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        chooser::same_origin(req.headers(), &host).map_err(|e| refuse(e, None))?;
        let Some(cookie) = cookie else {
            return Err(refuse(ChooserError::NoSession, None));
        };
        let body = self
            .read_request_body(req.into_body())
            .await
            .map_err(|_| refuse(ChooserError::MissingField("child"), None))?;
        let form = chooser::parse_form(&body).map_err(|e| refuse(e, None))?;
        if !cookie.verify_csrf(&form.csrf) {
            return Err(refuse(ChooserError::Csrf, None));
        }
        let state = self
            .store
            .session(&cookie.id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| refuse(ChooserError::NoSession, None))?;
        let principal = self.pseudo_principal(state.principal.as_deref());
        let csrf = cookie.csrf_token();
        let chosen = self
            .known_children(&state)
            .into_iter()
            .find(|k| chooser::child_token(&csrf, k) == form.child)
            .ok_or_else(|| refuse(ChooserError::UnknownChild, principal.clone()))?;
        // The parent goes on to Pronote; only a service the establishment pattern
        // recognises is a redirect target (no open redirect, T16).
        let target = self
            .inspector
            .establishment
            .expected(&form.service)
            .map(|_| form.service.clone());
        // The pin lands on the session as it is now: what a validation on another
        // instance taught it meanwhile is kept.
        let pinned = self
            .store
            .update_session(&cookie.id, |state| match state {
                Some(mut state) => {
                    state.pin = Some(chosen.clone());
                    state.updated_at_ms = now;
                    (SessionChange::Put(state), true)
                }
                None => (SessionChange::Keep, false),
            })
            .await;
        if !matches!(pinned, Ok(SessionUpdate { output: true, .. })) {
            return Err(refuse(ChooserError::NoSession, principal));
        }
        let response = match target {
            Some(service) => super::redirect(StatusCode::SEE_OTHER, &service),
            None => error::html(StatusCode::OK, pages::pin_noted()),
        };
        Ok(Handled::new(
            response,
            TraceEvent::PinSet(events::PinSet {
                uai: chosen.uai.clone(),
                pupil: self.trace.pseudonyms().pupil(&chosen),
                principal,
                session: self.trace.pseudonyms().session(&cookie.id),
            }),
        ))
    }
}
