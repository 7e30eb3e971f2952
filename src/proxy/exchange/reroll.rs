//! The browser's cookies at the ENT, as a server-side re-roll carries them: the
//! `Cookie` header the browser sent, updated by every `Set-Cookie` the ENT answered
//! since (right after the credentials POST, the single sign-on cookie exists only
//! there). bonenfant keeps them for the length of one login and never stores them.

use http::HeaderValue;

/// An ordered cookie jar for one host (the ENT's: paths and domains are the ENT's
/// own, and a re-roll asks the very path the browser asked).
#[derive(Clone, Debug, Default)]
pub(super) struct EntCookies {
    cookies: Vec<(String, String)>,
}

impl EntCookies {
    /// The cookies of a request's `Cookie` header (`a=1; b=2`).
    pub fn from_request(header: Option<&str>) -> Self {
        let cookies = header
            .into_iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
            })
            .collect();
        Self { cookies }
    }

    /// Applies the ENT's `Set-Cookie`s, in order: set, replace, or remove (empty value,
    /// `Max-Age` ≤ 0, or an `Expires` in the past).
    pub fn absorb(&mut self, set_cookies: &[HeaderValue]) {
        for header in set_cookies {
            let Some(parsed) = header
                .to_str()
                .ok()
                .and_then(|text| cookie::Cookie::parse(text.to_owned()).ok())
            else {
                continue;
            };
            let expired = parsed.value().is_empty()
                || parsed
                    .max_age()
                    .is_some_and(|age| age <= cookie::time::Duration::ZERO)
                || parsed
                    .expires_datetime()
                    .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
            self.cookies.retain(|(name, _)| name != parsed.name());
            if !expired {
                self.cookies
                    .push((parsed.name().to_owned(), parsed.value().to_owned()));
            }
        }
    }

    /// The `Cookie` header to send, if any cookie is left.
    pub fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let text = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> Vec<HeaderValue> {
        values
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect()
    }

    #[test]
    fn the_ents_new_sso_cookie_replaces_the_old_one_and_others_stay() {
        let mut jar = EntCookies::from_request(Some("__Host-bonenfant=abc; TGC=old; lang=fr"));
        jar.absorb(&set(&["TGC=new; Path=/cas; HttpOnly; Secure"]));
        assert_eq!(
            jar.header().unwrap(),
            "__Host-bonenfant=abc; lang=fr; TGC=new"
        );
    }

    #[test]
    fn a_cleared_cookie_is_no_longer_sent() {
        let mut jar = EntCookies::from_request(Some("TGC=old; JSESSIONID=1"));
        jar.absorb(&set(&[
            "TGC=; Max-Age=0",
            "JSESSIONID=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ]));
        assert!(jar.header().is_none());
    }

    #[test]
    fn cookies_set_after_a_login_without_any_are_carried() {
        let mut jar = EntCookies::from_request(None);
        jar.absorb(&set(&["CASTGC=TGT-1; Path=/cas", "garbage-without-equals"]));
        assert_eq!(jar.header().unwrap(), "CASTGC=TGT-1");
    }
}
