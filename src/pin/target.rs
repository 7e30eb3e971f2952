//! Where bonenfant may send a parent's browser on to Pronote (the chooser's opening
//! page, the give-up page's ways on): an allowed Pronote origin, never wherever a form
//! or a link said (threat T16, `docs/security.md`).
//!
//! A service URL is a target when its text is already the canonical form of an
//! absolute URL (no userinfo, no backslash, no control character, nothing the parser
//! would rewrite), and its origin is one the operator named (`--service-origin`), or,
//! with none named, an `https` origin the establishment pattern's own literal text
//! pins: the pattern starts with `^scheme://`, then only host literals and the `uai`
//! group up to the `/` that ends the host, and has no top-level alternative.

use url::{Host, Position, Url};

use crate::code::Code;
use crate::pupil::EstablishmentPattern;

/// Why a service URL is no target. One stable code for all: `pin.service_target`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefusal {
    #[error("service URL is not in canonical form (userinfo, backslash, control character, or rewritten by the parser)")]
    NotCanonical,
    #[error("service URL's scheme is not allowed (http needs an explicit http --service-origin)")]
    Scheme,
    #[error("service URL's origin is not an allowed Pronote origin")]
    Origin,
}

impl TargetRefusal {
    pub fn code(&self) -> Code {
        Code::PinServiceTarget
    }
}

/// An allowed Pronote origin: `scheme://host[:port]`, or `scheme://*.domain[:port]`
/// for any one label under `domain` (Pronote hosts are `<uai>.index-education.net`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceOrigin {
    scheme: String,
    host: OriginHost,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginHost {
    Exact(String),
    /// `*.domain`: the domain, without the leading dot.
    AnyLabelOf(String),
}

impl ServiceOrigin {
    /// Parses `https://host[:port]` (a trailing `/` is allowed, nothing else after the
    /// authority); the error says what is wrong, for `check-config`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?} is not scheme://host[:port]"))?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url = Url::parse(&format!("{scheme}://{rest}"))
            .map_err(|e| format!("{text:?} is not an origin: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?}: the scheme must be http or https"));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(format!(
                "{text:?} must be scheme://host[:port], without user, path, query or fragment"
            ));
        }
        let host = match (url.host(), wildcard) {
            (Some(Host::Domain(domain)), true) if domain.contains('.') => {
                OriginHost::AnyLabelOf(domain.to_owned())
            }
            (Some(_), true) => {
                return Err(format!(
                    "{text:?}: a wildcard stands for one label of a domain of at least two (*.example.net)"
                ))
            }
            (Some(host), false) => OriginHost::Exact(host.to_string()),
            (None, _) => return Err(format!("{text:?} has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{text:?} has no port"))?;
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host,
            port,
        })
    }

    fn admits(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme || url.port_or_known_default() != Some(self.port) {
            return false;
        }
        match (&self.host, url.host()) {
            (OriginHost::Exact(host), Some(theirs)) => theirs.to_string() == *host,
            (OriginHost::AnyLabelOf(domain), Some(Host::Domain(theirs))) => theirs
                .strip_suffix(domain.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
            _ => false,
        }
    }
}

/// Decides whether a service URL may be a target.
#[derive(Clone, Debug)]
pub struct ServiceTargets {
    origins: Vec<ServiceOrigin>,
    pattern: EstablishmentPattern,
    pattern_pins_host: bool,
}

impl ServiceTargets {
    pub fn new(origins: Vec<ServiceOrigin>, pattern: EstablishmentPattern) -> Self {
        let pattern_pins_host = pins_host(pattern.as_str());
        Self {
            origins,
            pattern,
            pattern_pins_host,
        }
    }

    /// Whether any service can be a target: some origin is named, or the pattern pins
    /// the host (else `serve` warns at start-up).
    pub fn any(&self) -> bool {
        !self.origins.is_empty() || self.pattern_pins_host
    }

    /// Whether `service` may be a redirect target.
    pub fn admit(&self, service: &str) -> Result<(), TargetRefusal> {
        if service
            .chars()
            .any(|c| c == '\\' || c.is_control() || c == ' ')
        {
            return Err(TargetRefusal::NotCanonical);
        }
        let url = Url::parse(service).map_err(|_| TargetRefusal::NotCanonical)?;
        // Equal to its own serialisation but for the case of scheme and host: nothing
        // (dot segments, default ports, IDNA, stray characters) was rewritten, so the
        // checked URL is the one the browser will follow.
        if !url.as_str().eq_ignore_ascii_case(service)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.cannot_be_a_base()
        {
            return Err(TargetRefusal::NotCanonical);
        }
        if !self.origins.is_empty() {
            if self.origins.iter().any(|o| o.admits(&url)) {
                return Ok(());
            }
            return Err(if self.origins.iter().any(|o| o.scheme == url.scheme()) {
                TargetRefusal::Origin
            } else {
                TargetRefusal::Scheme
            });
        }
        if url.scheme() != "https" {
            return Err(TargetRefusal::Scheme);
        }
        // The pattern's match must start the URL and cover its whole origin and the `/`
        // after it: then the host is the pattern's own literal text.
        let origin_end = url[..Position::BeforePath].len();
        match self.pattern.match_from_start(service) {
            Some(end) if self.pattern_pins_host && end > origin_end => Ok(()),
            _ => Err(TargetRefusal::Origin),
        }
    }
}

/// Whether the pattern's own text pins a service's host: an optional leading `(?i)`,
/// `^`, a scheme (`http`, `https` or `https?`) and `://`, then only host characters,
/// escaped dots and hyphens, a port and the `uai` group, up to a `/`; and no `|` outside
/// a group anywhere.
fn pins_host(pattern: &str) -> bool {
    let rest = pattern.strip_prefix("(?i)").unwrap_or(pattern);
    let Some(rest) = rest.strip_prefix('^') else {
        return false;
    };
    let Some(rest) = ["https?://", "https://", "http://"]
        .iter()
        .find_map(|scheme| rest.strip_prefix(scheme))
    else {
        return false;
    };
    host_then_slash(rest) && !top_level_alternative(pattern)
}

/// `rest` begins with host literals and the `uai` group, then `/`.
fn host_then_slash(mut rest: &str) -> bool {
    loop {
        if rest.starts_with('/') || rest.starts_with("\\/") {
            return true;
        }
        if let Some(after) = rest
            .strip_prefix("(?P<uai>")
            .or_else(|| rest.strip_prefix("(?<uai>"))
        {
            // The group's text is a UAI or nothing matches (`Uai::parse`): whatever
            // its inside, it cannot stand for another host.
            match group_end(after) {
                Some(end) => rest = &after[end..],
                None => return false,
            }
            continue;
        }
        if let Some(after) = rest
            .strip_prefix("\\.")
            .or_else(|| rest.strip_prefix("\\-"))
        {
            rest = after;
            continue;
        }
        match rest.chars().next() {
            Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == ':' => rest = &rest[1..],
            _ => return false,
        }
    }
}

/// The offset just past the `)` closing a group whose inside starts `text`.
fn group_end(text: &str) -> Option<usize> {
    regex_structure(text)
        .find(|&(_, c, depth)| c == ')' && depth == 0)
        .map(|(i, _, _)| i + 1)
}

/// Whether the pattern has a `|` outside every group and class (an alternative that
/// would not start with the pinned prefix).
fn top_level_alternative(pattern: &str) -> bool {
    regex_structure(pattern).any(|(_, c, depth)| c == '|' && depth == 0)
}

/// A regex's characters outside escapes and character classes, each with its offset
/// and the group depth before it: a `)` at depth 0 closes nothing opened in `text`.
fn regex_structure(text: &str) -> impl Iterator<Item = (usize, char, usize)> + '_ {
    let mut chars = text.char_indices();
    let (mut depth, mut in_class) = (0usize, false);
    std::iter::from_fn(move || loop {
        let (i, c) = chars.next()?;
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '(' => {
                depth += 1;
                return Some((i, c, depth - 1));
            }
            ')' => {
                let before = depth;
                depth = depth.saturating_sub(1);
                return Some((i, c, before));
            }
            _ => return Some((i, c, depth)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOSE: &str = r"(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]";

    fn targets(origins: &[&str], pattern: &str) -> ServiceTargets {
        ServiceTargets::new(
            origins
                .iter()
                .map(|o| ServiceOrigin::parse(o).unwrap())
                .collect(),
            EstablishmentPattern::new(pattern).unwrap(),
        )
    }

    #[test]
    fn the_default_pattern_pins_the_host() {
        let t = targets(&[], EstablishmentPattern::DEFAULT);
        assert!(t.any());
        assert_eq!(
            t.admit("https://0335425q.index-education.net/pronote/parent.html"),
            Ok(())
        );
        assert_eq!(
            t.admit("http://0335425q.index-education.net/pronote/"),
            Err(TargetRefusal::Scheme)
        );
        assert_eq!(
            t.admit("https://0335425q.index-education.net.evil.example/"),
            Err(TargetRefusal::Origin)
        );
    }

    #[test]
    fn a_loose_pattern_pins_nothing() {
        for pattern in [
            LOOSE,
            r"(?P<uai>\d{7}[a-z])",
            r"^https://[a-z]+\.example/(?P<uai>\d{7}[a-z])/",
            r"^https://a\.example/(?P<uai>\d{7}[a-z])/|evil",
            r"^https://a.example/(?P<uai>\d{7}[a-z])/",
        ] {
            let t = targets(&[], pattern);
            assert!(!t.any(), "{pattern}");
            assert_eq!(
                t.admit("https://evil.example/0335425q/x"),
                Err(TargetRefusal::Origin)
            );
        }
    }

    #[test]
    fn a_literal_host_with_a_port_pins_it() {
        let t = targets(&[], r"^https://pronote\.example:8443/(?P<uai>\d{7}[A-Z])/");
        assert!(t.any());
        assert_eq!(t.admit("https://pronote.example:8443/0335425Q/"), Ok(()));
        assert_eq!(
            t.admit("https://pronote.example/0335425Q/"),
            Err(TargetRefusal::Origin)
        );
    }

    #[test]
    fn tricks_are_not_canonical() {
        let t = targets(&["http://127.0.0.1:8080"], LOOSE);
        for hostile in [
            r"http://evil.example\@127.0.0.1:8080/0335425q/",
            "http://evil.example@127.0.0.1:8080/0335425q/",
            "http://127.0.0.1:8080/a/../0335425q/",
            "http://127.0.0.1:8080/0335425q/\tx",
            "HTTP://127.0.0.1:8080/0335425q/ x",
            "/0335425q/",
            "//127.0.0.1:8080/0335425q/",
            "javascript:alert(1)//0335425q/",
        ] {
            assert!(t.admit(hostile).is_err(), "{hostile}");
        }
        assert_eq!(t.admit("http://127.0.0.1:8080/0335425q/x"), Ok(()));
        assert_eq!(
            t.admit("http://127.0.0.1:8081/0335425q/x"),
            Err(TargetRefusal::Origin)
        );
        assert_eq!(
            t.admit("https://127.0.0.1:8080/0335425q/x"),
            Err(TargetRefusal::Scheme)
        );
    }

    #[test]
    fn a_wildcard_stands_for_one_label() {
        let t = targets(&["https://*.index-education.net"], LOOSE);
        assert_eq!(t.admit("https://0335425q.index-education.net/p/"), Ok(()));
        for refused in [
            "https://index-education.net/0335425q/",
            "https://a.0335425q.index-education.net/",
            "https://0335425qindex-education.net/",
            "http://0335425q.index-education.net/",
        ] {
            assert!(t.admit(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn origins_are_checked_when_given() {
        for bad in [
            "127.0.0.1:8080",
            "ftp://x.example",
            "https://x.example/path",
            "https://u@x.example",
            "https://*.net",
            "https://*.127.0.0.1",
        ] {
            assert!(ServiceOrigin::parse(bad).is_err(), "{bad}");
        }
        assert!(ServiceOrigin::parse("https://x.example/").is_ok());
    }
}
