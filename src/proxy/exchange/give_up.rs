//! The give-up page's two ways on (`GET …/give-up?choice=…`): go on to Pronote once
//! without pinning, or try another round of re-rolls. Either way the browser goes back
//! to the ENT's `/login` for a fresh ticket: the page never carries one, so it works
//! whenever it is clicked.

use std::time::Instant;

use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::{front, CasExchange, Handled};
use crate::code::Code;
use crate::events::{self, TraceEvent};
use crate::session::{SessionChange, SessionStore};

impl CasExchange {
    pub(super) async fn give_up_choice(&self, req: Request<Incoming>, started: Instant) -> Handled {
        let params: Vec<(String, String)> =
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let choice = match param("choice") {
            Some("continue") => "continue",
            Some("retry") => "retry",
            _ => {
                return self.refuse(
                    Code::PinFormMissingField.status(),
                    Code::PinFormMissingField,
                    None,
                    started,
                )
            }
        };
        let (Some(service), Some(login)) = (param("service"), param("login")) else {
            return self.refuse(
                Code::PinFormMissingField.status(),
                Code::PinFormMissingField,
                None,
                started,
            );
        };
        // Only for an allowed Pronote origin (T16): the ENT sends the browser there next.
        if self.config.service_targets.admit(service).is_err() {
            return self.refuse(
                Code::PinServiceTarget.status(),
                Code::PinServiceTarget,
                None,
                started,
            );
        }
        // Only back to the ENT's own login path: never a redirect built from input.
        let Some(login) = front::canonical_login_path(login, self.config.cas_prefix.as_deref())
        else {
            return self.refuse(
                Code::ProxyLoginPath.status(),
                Code::ProxyLoginPath,
                None,
                started,
            );
        };
        let now = self.now_ms();
        let Some(cookie) = self.cookies.open(req.headers(), now) else {
            return self.refuse(
                Code::PinNoSession.status(),
                Code::PinNoSession,
                None,
                started,
            );
        };
        // A link is a GET: the session's token makes it this parent's own click.
        if !param("csrf").is_some_and(|csrf| cookie.verify_csrf(csrf)) {
            return self.refuse(Code::PinCsrf.status(), Code::PinCsrf, None, started);
        }
        let updated = self
            .store
            .update_session(&cookie.id, |state| match state {
                Some(mut state) => {
                    if choice == "continue" {
                        state.pass_once = Some(service.to_owned());
                    }
                    state.retry = None;
                    state.updated_at_ms = now;
                    let principal = state.principal.clone();
                    (SessionChange::Put(state), principal)
                }
                None => (SessionChange::Keep, None),
            })
            .await;
        let principal = updated.ok().and_then(|u| u.output);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("service", service)
            .finish();
        Handled::new(
            super::redirect(StatusCode::SEE_OTHER, &format!("{login}?{query}")),
            TraceEvent::GiveUpChoice(events::GiveUpChoice {
                choice,
                uai_expected: self.inspector.establishment.expected(service),
                principal: self.pseudo_principal(principal.as_deref()),
                session: self.pseudo_session(Some(&cookie.id)),
            }),
        )
    }
}
