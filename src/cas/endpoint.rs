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

impl Endpoint {
    /// Stable name used in trace events (`serviceValidate`, `p3/serviceValidate`, …).
    pub fn as_str(self) -> &'static str {
        todo!()
    }

    /// Whether Pronote validates tickets here (the back channel).
    pub fn is_validation(self) -> bool {
        todo!()
    }
}

/// Classifies `path` (no query) by its suffix: `/cas/p3/serviceValidate`, `/serviceValidate`, …
/// Returns `None` for every non-CAS path.
pub fn classify(path: &str) -> Option<Endpoint> {
    let _ = path;
    todo!()
}
