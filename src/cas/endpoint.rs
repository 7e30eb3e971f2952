//! Which CAS endpoint a request path names, under any base path.

/// A CAS endpoint, recognised by the path suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Login,
    Logout,
    Validate,
    ServiceValidate,
    ProxyValidate,
    Proxy,
    P3ServiceValidate,
    P3ProxyValidate,
    SamlValidate,
}

/// Suffixes, longest first within each family, so `/p3/serviceValidate` is never read
/// as `/serviceValidate`. Matching is on whole path segments, so `/proxy` never matches
/// `/proxyValidate` and `/xlogin` is not `/login`.
const SUFFIXES: [(&str, Endpoint); 9] = [
    ("/p3/serviceValidate", Endpoint::P3ServiceValidate),
    ("/p3/proxyValidate", Endpoint::P3ProxyValidate),
    ("/serviceValidate", Endpoint::ServiceValidate),
    ("/proxyValidate", Endpoint::ProxyValidate),
    ("/samlValidate", Endpoint::SamlValidate),
    ("/validate", Endpoint::Validate),
    ("/proxy", Endpoint::Proxy),
    ("/login", Endpoint::Login),
    ("/logout", Endpoint::Logout),
];

impl Endpoint {
    /// Stable name used in trace events (`serviceValidate`, `p3/serviceValidate`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::Logout => "logout",
            Endpoint::Validate => "validate",
            Endpoint::ServiceValidate => "serviceValidate",
            Endpoint::ProxyValidate => "proxyValidate",
            Endpoint::Proxy => "proxy",
            Endpoint::P3ServiceValidate => "p3/serviceValidate",
            Endpoint::P3ProxyValidate => "p3/proxyValidate",
            Endpoint::SamlValidate => "samlValidate",
        }
    }

    /// Whether Pronote validates tickets here (the back channel).
    pub fn is_validation(self) -> bool {
        matches!(
            self,
            Endpoint::Validate
                | Endpoint::ServiceValidate
                | Endpoint::ProxyValidate
                | Endpoint::P3ServiceValidate
                | Endpoint::P3ProxyValidate
                | Endpoint::SamlValidate
        )
    }

    /// Whether the endpoint must refuse proxy tickets (CAS spec §2.5: `serviceValidate`
    /// MUST NOT succeed for a PT).
    pub fn refuses_proxy_tickets(self) -> bool {
        matches!(
            self,
            Endpoint::Validate | Endpoint::ServiceValidate | Endpoint::P3ServiceValidate
        )
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies `path` (no query) by its suffix: `/cas/p3/serviceValidate`, `/serviceValidate`, …
/// Returns `None` for every non-CAS path. One trailing slash is tolerated
/// (`/cas/login/`), as servlet containers route it to the same handler.
pub fn classify(path: &str) -> Option<Endpoint> {
    let path = path.strip_suffix('/').unwrap_or(path);
    SUFFIXES
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|&(_, endpoint)| endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_under_any_base_path() {
        for (path, want) in [
            ("/cas/login", Some(Endpoint::Login)),
            ("/login", Some(Endpoint::Login)),
            ("/cas/logout", Some(Endpoint::Logout)),
            (
                "/esup-cas/p3/serviceValidate",
                Some(Endpoint::P3ServiceValidate),
            ),
            ("/cas/p3/proxyValidate", Some(Endpoint::P3ProxyValidate)),
            ("/serviceValidate", Some(Endpoint::ServiceValidate)),
            ("/cas/proxyValidate", Some(Endpoint::ProxyValidate)),
            ("/cas/proxy", Some(Endpoint::Proxy)),
            ("/cas/validate", Some(Endpoint::Validate)),
            ("/cas/samlValidate", Some(Endpoint::SamlValidate)),
            ("/cas/login/", Some(Endpoint::Login)),
            ("/cas/xlogin", None),
            ("/cas/proxyValidatex", None),
            ("/cas/serviceValidate/extra", None),
            ("/pronote/parent.html", None),
            ("", None),
            ("/", None),
        ] {
            assert_eq!(classify(path), want, "{path}");
        }
    }

    #[test]
    fn names_round_trip_through_classify() {
        for (_, e) in SUFFIXES {
            assert_eq!(classify(&format!("/cas/{}", e.as_str())), Some(e));
        }
    }
}
