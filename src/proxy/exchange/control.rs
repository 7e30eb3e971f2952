//! bonenfant's own pages under the control prefix: the chooser (`GET …/choose`), where a
//! parent says which child they mean, and the pin it posts (`POST …/choose`). Only a
//! child already known for the session's principal can be pinned (`pin::chooser`).

use std::time::Instant;

use http::header::HOST;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{login_service, CasExchange, Handled};
use crate::cas::Endpoint;
use crate::code::Code;
use crate::events::{self, Pseudonym, TraceEvent};
use crate::pages;
use crate::pin::chooser::{self, ChooserError};
use crate::proxy::body::ProxyBody;
use crate::proxy::error;
use crate::pupil::{DirectoryIndex, PupilKey, Uai};
use crate::session::cookie::SessionCookie;
use crate::session::{SessionChange, SessionState, SessionStore, SessionUpdate};

/// What the pages show of one child.
pub(super) struct Label<'a> {
    pub(super) first_name: Option<&'a str>,
    class: Option<&'a str>,
    establishment: Option<&'a str>,
}

impl<'a> Label<'a> {
    /// First name and class from the directory, else what the ENT asserted in this
    /// session; the establishment's name from the directory.
    pub(super) fn of(
        index: Option<&'a DirectoryIndex>,
        state: Option<&'a SessionState>,
        key: &PupilKey,
    ) -> Self {
        let listed = index.and_then(|i| i.label(key));
        let asserted = state
            .into_iter()
            .flat_map(|s| &s.known)
            .find(|k| &k.key == key);
        Label {
            first_name: listed
                .map(|l| l.first_name.as_str())
                .or_else(|| asserted.and_then(|k| k.first_name.as_deref())),
            class: listed
                .and_then(|l| l.class.as_deref())
                .or_else(|| asserted.and_then(|k| k.class.as_deref())),
            establishment: index.and_then(|i| i.establishment_name(&key.uai)),
        }
    }
}

/// A refused pin request: why, and whose (as far as known).
struct PinRefusal {
    error: ChooserError,
    principal: Option<Pseudonym>,
    session: Option<Pseudonym>,
}

impl CasExchange {
    pub(super) async fn control(&self, req: Request<Incoming>, started: Instant) -> Handled {
        let path = &req.uri().path()[self.config.control_prefix.len()..];
        if path == "/give-up" {
            return self.give_up_choice(req, started).await;
        }
        if path != "/choose" {
            return self.refuse(StatusCode::NOT_FOUND, Code::ProxyNotFound, None, started);
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
                self.error_page(refused.error.status(), refused.error.code()),
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
    pub(super) fn known_children(&self, state: &SessionState) -> Vec<PupilKey> {
        match &state.principal {
            Some(principal) => self.inspector.known_children(principal, [], Some(state)),
            None => state.known.iter().map(|k| k.key.clone()).collect(),
        }
    }

    /// The error page for a browser, in the ENT's colours.
    pub(super) fn error_page(&self, status: StatusCode, code: Code) -> Response<ProxyBody> {
        error::branded_page(&self.config.brand, status, code)
    }

    /// Refuses a request with the error page for `code` and its `rejected` summary.
    pub(super) fn refuse(
        &self,
        status: StatusCode,
        code: Code,
        endpoint: Option<Endpoint>,
        started: Instant,
    ) -> Handled {
        Handled::rejected(self.error_page(status, code), code, endpoint, started)
    }

    /// The chooser page for a session, listing the known children of the service's
    /// establishment (all of them when the service names none), and how many it lists.
    /// Children come in a stable order: by first name, then unnamed ones by key.
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
        let mut children: Vec<chooser::ChooserChild<'_>> = known
            .iter()
            .map(|key| {
                let label = Label::of(index.as_deref(), state, key);
                chooser::ChooserChild {
                    key,
                    first_name: label.first_name,
                    class: label.class,
                    establishment: label.establishment,
                    pinned: pinned == Some(key),
                }
            })
            .collect();
        children.sort_by_cached_key(|c| {
            (
                c.first_name.is_none(),
                c.first_name.map(str::to_lowercase),
                c.key.clone(),
            )
        });
        let csrf = cookie.map(SessionCookie::csrf_token).unwrap_or_default();
        let action = format!("{}/choose", self.config.control_prefix);
        let count = u32::try_from(children.len()).unwrap_or(u32::MAX);
        let html = chooser::render(&self.config.brand, &children, service, &csrf, &action);
        (html, count)
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
        chooser::same_origin(req.headers(), self.config.public_scheme.as_str(), &host)
            .map_err(|e| refuse(e, None))?;
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
        // The parent goes on to Pronote only at an allowed Pronote origin naming an
        // establishment (no open redirect, T16); else the pin is only noted.
        let admitted = self.config.service_targets.admit(&form.service);
        let target = match &admitted {
            Ok(()) => self
                .inspector
                .establishment
                .expected(&form.service)
                .map(|_| form.service.as_str()),
            Err(_) => None,
        };
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
        let brand = &self.config.brand;
        let page = match target {
            Some(service) => {
                let index = self.inspector.index.load();
                let child = Label::of(index.as_deref(), Some(&state), &chosen).first_name;
                pages::opening(brand, child, service)
            }
            None => pages::pin_noted(brand),
        };
        let response = error::html(StatusCode::OK, page);
        Ok(Handled::new(
            response,
            TraceEvent::PinSet(events::PinSet {
                uai: chosen.uai.clone(),
                pupil: self.trace.pseudonyms().pupil(&chosen),
                principal,
                session: self.trace.pseudonyms().session(&cookie.id),
                code: admitted.err().map(|refusal| refusal.code()),
            }),
        ))
    }
}
