//! Header and framing rules at both doors of the proxy.
//!
//! hyper already refuses the framing attacks (CL+TE, differing Content-Lengths,
//! obfuscated Transfer-Encoding, obs-fold: `docs/security.md`, T31). What
//! it accepts and a proxy must not is checked here:
//!
//! * **Front door** ([`check_front_door`]): exactly one `Host` (RFC 9112 §3.2: hyper
//!   accepts two, or none), a parseable one, and an absolute-form target or HTTP/2
//!   `:authority` that agrees with it; origin-form targets only (no `CONNECT`, no `*`).
//! * **Towards the upstream** ([`ForwardPolicy::upstream_request`]): the URI is the
//!   upstream's scheme and authority with the upstream base path joined before the
//!   client's path, the query kept byte for byte; hop-by-hop headers are removed, with
//!   every name `Connection` lists (RFC 9110 §7.6.1); header names with an underscore are
//!   dropped, as nginx does by default, because PHP-style upstreams read `X_Forwarded_For`
//!   as `X-Forwarded-For`; `X-Forwarded-For/-Proto/-Host` are rebuilt from the real peer
//!   and only extended when the peer is a trusted proxy. The `Host` header is the
//!   client's by default ([`HostPolicy::Keep`], full-front deployment: the ENT sees its
//!   own public name).
//! * **Towards the client** ([`downstream_response`]): hop-by-hop headers removed;
//!   and for every answer, whoever built it, a `Content-Length` that agrees with the
//!   body ([`align_content_length`], applied by the server).
//! * **Bodies to inspect** ([`read_body`]): read whole, capped and within a deadline.
//!
//! The headers the proxy adds are added after stripping, so a client cannot make the
//! proxy drop them with `Connection: X-Forwarded-For`.

use crate::code::Code;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, COOKIE, EXPECT, FORWARDED, HOST,
    PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use ipnet::IpNet;
use url::Url;

use super::body::ProxyBody;
use super::error::{page, ProxyError};
use super::ConnInfo;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the de-facto `Keep-Alive`,
/// `Proxy-Connection` and the proxy-auth pair), pre-built so that removal does not parse
/// and hash a string on every request.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
];

/// Forwarding headers a client outside the trusted ranges may not set.
const FORWARDING: [HeaderName; 5] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_REAL_IP,
    FORWARDED,
];

/// A request refused at the front door, before anything reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrontDoorError {
    #[error("no Host header and no authority in the target")]
    HostMissing,
    #[error("more than one Host header")]
    HostDuplicate,
    #[error("the Host header is not a valid authority")]
    HostInvalid,
    #[error("the request target's authority differs from the Host header")]
    HostMismatch,
    #[error("the request target is not a path (origin-form)")]
    TargetForm,
    #[error("CONNECT is not served")]
    MethodConnect,
    #[error("the request body is larger than the proxy reads")]
    BodyTooLarge,
    #[error("the request body ended early or was malformed")]
    BodyInvalid,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
}

// === impl FrontDoorError ===

impl FrontDoorError {
    /// Stable code for pages, headers and logs.
    pub fn code(&self) -> Code {
        match self {
            FrontDoorError::HostMissing => Code::ProxyHostMissing,
            FrontDoorError::HostDuplicate => Code::ProxyHostDuplicate,
            FrontDoorError::HostInvalid => Code::ProxyHostInvalid,
            FrontDoorError::HostMismatch => Code::ProxyHostMismatch,
            FrontDoorError::TargetForm => Code::ProxyTargetForm,
            FrontDoorError::MethodConnect => Code::ProxyMethodConnect,
            FrontDoorError::BodyTooLarge => Code::ProxyRequestBodyTooLarge,
            FrontDoorError::BodyInvalid => Code::ProxyRequestBodyInvalid,
            FrontDoorError::BodyTimeout => Code::ProxyRequestBodyTimeout,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            FrontDoorError::MethodConnect => StatusCode::METHOD_NOT_ALLOWED,
            FrontDoorError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FrontDoorError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The error page; it closes the connection, since a client that sends such
    /// requests may be trying to desynchronise it.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let mut response = page(self.status(), self.code());
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Checks what hyper does not: one valid `Host`, agreeing with the target's authority,
/// and an origin-form target.
pub fn check_front_door<B>(req: &Request<B>) -> Result<(), FrontDoorError> {
    if req.method() == Method::CONNECT {
        return Err(FrontDoorError::MethodConnect);
    }
    if !req.uri().path().starts_with('/') {
        return Err(FrontDoorError::TargetForm);
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(FrontDoorError::HostDuplicate),
        (Some(value), None) => Some(parse_authority(value)?),
        (None, _) => None,
    };
    match (host, req.uri().authority()) {
        (None, None) => Err(FrontDoorError::HostMissing),
        (None, Some(_)) if req.version() < Version::HTTP_2 => Err(FrontDoorError::HostMissing),
        (Some(host), Some(target)) if !same_authority(&host, target, req.uri().scheme()) => {
            Err(FrontDoorError::HostMismatch)
        }
        _ => Ok(()),
    }
}

fn parse_authority(value: &HeaderValue) -> Result<Authority, FrontDoorError> {
    let authority =
        Authority::try_from(value.as_bytes()).map_err(|_| FrontDoorError::HostInvalid)?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(FrontDoorError::HostInvalid);
    }
    Ok(authority)
}

/// Same host (case-insensitive) and same port, a missing port meaning the scheme's.
fn same_authority(host: &Authority, target: &Authority, scheme: Option<&Scheme>) -> bool {
    let default_port = match scheme {
        Some(s) if *s == Scheme::HTTPS => 443,
        _ => 80,
    };
    host.host().eq_ignore_ascii_case(target.host())
        && host.port_u16().unwrap_or(default_port) == target.port_u16().unwrap_or(default_port)
}

/// Which `Host` the upstream receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostPolicy {
    /// The client's `Host` (or HTTP/2 `:authority`), unchanged: the full-front
    /// deployment, where the ENT expects its own public host name.
    #[default]
    Keep,
    /// The upstream URL's authority: for an upstream that only answers to its own name.
    Upstream,
}

/// How requests are rewritten for the upstream; computed once from the configuration.
#[derive(Clone, Debug)]
pub struct ForwardPolicy {
    /// The upstream's scheme (`http` or `https`).
    scheme: Scheme,
    /// The upstream's `host[:port]`, without user info.
    authority: Authority,
    /// The upstream URL's path without its trailing `/` (`""` for a root URL), put
    /// before every request path.
    base_path: String,
    /// Peers whose forwarding headers are believed.
    trusted: Vec<IpNet>,
    host: HostPolicy,
}

// === impl ForwardPolicy ===

impl ForwardPolicy {
    pub fn new(upstream: &Url, trusted: &[IpNet], host: HostPolicy) -> Result<Self, ProxyError> {
        let setup = |what: &str| ProxyError::UpstreamSetup(format!("upstream URL: {what}"));
        let scheme = match upstream.scheme() {
            "http" => Scheme::HTTP,
            "https" => Scheme::HTTPS,
            _ => return Err(setup("scheme must be http or https")),
        };
        let authority = &upstream[url::Position::BeforeHost..url::Position::AfterPort];
        let authority = Authority::try_from(authority).map_err(|_| setup("invalid authority"))?;
        Ok(ForwardPolicy {
            scheme,
            authority,
            base_path: upstream.path().trim_end_matches('/').to_owned(),
            trusted: trusted.to_vec(),
            host,
        })
    }

    /// The policy for a validated configuration (`Host` kept).
    pub fn from_config(config: &crate::config::Config) -> Result<Self, ProxyError> {
        ForwardPolicy::new(&config.upstream, &config.trusted_proxies, HostPolicy::Keep)
    }

    /// The upstream URI for a client's path and query: `http://ent:8080/base` and
    /// `/cas/login?x` give `http://ent:8080/base/cas/login?x`, the query byte for byte.
    pub fn upstream_uri(
        &self,
        path_and_query: Option<&PathAndQuery>,
    ) -> Result<Uri, FrontDoorError> {
        let path_and_query = match path_and_query {
            Some(pq) if self.base_path.is_empty() => pq.clone(),
            Some(pq) => {
                let mut joined = BytesMut::with_capacity(self.base_path.len() + pq.as_str().len());
                joined.put_slice(self.base_path.as_bytes());
                joined.put_slice(pq.as_str().as_bytes());
                PathAndQuery::from_maybe_shared(joined.freeze())
                    .map_err(|_| FrontDoorError::TargetForm)?
            }
            None if self.base_path.is_empty() => PathAndQuery::from_static("/"),
            None => PathAndQuery::try_from(self.base_path.as_str())
                .map_err(|_| FrontDoorError::TargetForm)?,
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| FrontDoorError::TargetForm)
    }

    /// Whether forwarding headers from this peer are believed.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// Rewrites a request that passed [`check_front_door`] for the upstream. The body
    /// is untouched; the version becomes HTTP/1.1 (the upstream client speaks HTTP/1.1).
    pub fn upstream_request<B>(
        &self,
        req: Request<B>,
        conn: &ConnInfo,
    ) -> Result<Request<B>, FrontDoorError> {
        let (mut parts, body) = req.into_parts();
        let client_host = match parts.headers.get(HOST) {
            Some(host) => host.clone(),
            None => {
                let authority = parts.uri.authority().ok_or(FrontDoorError::HostMissing)?;
                HeaderValue::from_str(authority.as_str())
                    .map_err(|_| FrontDoorError::HostInvalid)?
            }
        };
        parts.uri = self.upstream_uri(parts.uri.path_and_query())?;
        parts.version = Version::HTTP_11;

        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        headers.remove(EXPECT);
        drop_underscore_names(headers);
        join_cookies(headers);
        self.set_forwarding(headers, conn, &client_host);
        let host = match self.host {
            HostPolicy::Keep => client_host,
            HostPolicy::Upstream => HeaderValue::from_str(self.authority.as_str())
                .map_err(|_| FrontDoorError::HostInvalid)?,
        };
        headers.insert(HOST, host);
        Ok(Request::from_parts(parts, body))
    }

    fn set_forwarding(&self, headers: &mut HeaderMap, conn: &ConnInfo, client_host: &HeaderValue) {
        let mut text = [0; MAX_IP_TEXT];
        let peer = ip_text_into(conn.peer.ip().to_canonical(), &mut text);
        let proto = HeaderValue::from_static(if conn.tls { "https" } else { "http" });
        if self.is_trusted(conn.peer.ip()) {
            let chain = joined(headers, &X_FORWARDED_FOR, b", ");
            let value = match chain {
                Some(chain) if !chain.is_empty() => {
                    HeaderValue::from_maybe_shared(Bytes::from([&chain[..], b", ", peer].concat()))
                }
                _ => HeaderValue::from_bytes(peer),
            };
            if let Ok(value) = value {
                headers.insert(X_FORWARDED_FOR, value);
            }
            if !headers.contains_key(X_FORWARDED_PROTO) {
                headers.insert(X_FORWARDED_PROTO, proto);
            }
            if !headers.contains_key(X_FORWARDED_HOST) {
                headers.insert(X_FORWARDED_HOST, client_host.clone());
            }
        } else {
            remove_all(headers, &FORWARDING);
            if let Ok(value) = HeaderValue::from_bytes(peer) {
                headers.insert(X_FORWARDED_FOR, value);
            }
            headers.insert(X_FORWARDED_PROTO, proto);
            headers.insert(X_FORWARDED_HOST, client_host.clone());
        }
    }
}

/// The longest text of an IP address (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const MAX_IP_TEXT: usize = 45;

/// `ip`'s usual text, written into `text` on the stack: `to_string`'s String, then a
/// copy into `Bytes`, were two allocations per request for X-Forwarded-For.
fn ip_text_into(ip: IpAddr, text: &mut [u8; MAX_IP_TEXT]) -> &[u8] {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    // Always fits: no address's text is longer than MAX_IP_TEXT.
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    text.get(..len).unwrap_or_default()
}

/// Reads a whole request body that must be inspected (samlValidate, logout requests):
/// at most `max` bytes (a declared larger `Content-Length` is refused before reading),
/// within `timeout`.
pub async fn read_body<B>(body: B, max: usize, timeout: Duration) -> Result<Bytes, FrontDoorError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<super::BoxError>,
{
    if body.size_hint().lower() > max as u64 {
        return Err(FrontDoorError::BodyTooLarge);
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, max).collect())
        .await
        .map_err(|_| FrontDoorError::BodyTimeout)?
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                FrontDoorError::BodyTooLarge
            } else {
                FrontDoorError::BodyInvalid
            }
        })?;
    Ok(collected.to_bytes())
}

/// Makes `Content-Length` agree with a body of known length. hyper writes the header
/// as given and then the body as it is: a handler that replaced a body but kept the
/// upstream's length would desynchronise the client connection. Answers that carry no
/// body (to HEAD, 1xx, 204, 304) keep their header: there it describes the resource.
pub fn align_content_length<B: http_body::Body>(
    response: &mut Response<B>,
    request_method: &Method,
) {
    let Some(exact) = response.body().size_hint().exact() else {
        return;
    };
    let status = response.status();
    if *request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return;
    }
    let headers = response.headers_mut();
    let declared = headers.get(CONTENT_LENGTH);
    let agrees =
        |v: &HeaderValue| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()) == Some(exact);
    if declared.is_some_and(|v| !agrees(v)) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(exact));
    }
}

/// Removes hop-by-hop headers from the upstream's answer; the answer is HTTP/1.1 (hyper
/// re-frames it for the client's protocol).
pub fn downstream_response<B>(mut response: Response<B>) -> Response<B> {
    strip_hop_by_hop(response.headers_mut());
    *response.version_mut() = Version::HTTP_11;
    response
}

/// Removes `Connection`, every header it names, and the fixed hop-by-hop set.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        // A listed name of the fixed set goes with it below: no name of its own to
        // build (`keep-alive`, on nearly every answer of the ENT).
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(|value| value.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|name| {
                !HOP_BY_HOP
                    .iter()
                    .any(|fixed| fixed.as_str().as_bytes().eq_ignore_ascii_case(name))
            })
            .filter_map(|name| HeaderName::from_bytes(name).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    remove_all(headers, &HOP_BY_HOP);
}

/// Removes every header named in `names`. Most requests carry none of them: one pass
/// over the names present (comparisons, no hashing) finds that out, where a `remove`
/// per name hashes each.
fn remove_all(headers: &mut HeaderMap, names: &[HeaderName]) {
    if headers.keys().any(|present| names.contains(present)) {
        for name in names {
            headers.remove(name);
        }
    }
}

/// Drops headers whose name has an underscore (nginx's `underscores_in_headers off`).
fn drop_underscore_names(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// HTTP/2 clients send one `cookie` field per cookie; an HTTP/1.1 upstream expects
/// one header, joined with `; ` (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(COOKIE).iter().nth(1).is_none() {
        return;
    }
    if let Some(value) = joined(headers, &COOKIE, b"; ") {
        if let Ok(value) = HeaderValue::from_maybe_shared(value) {
            headers.insert(COOKIE, value);
        }
    }
}

/// All values of `name` joined by `separator`, or `None` when absent.
fn joined(headers: &HeaderMap, name: &HeaderName, separator: &[u8]) -> Option<Bytes> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut out = BytesMut::from(first.as_bytes());
    for value in values {
        out.put_slice(separator);
        out.put_slice(value.as_bytes());
    }
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    proptest::proptest! {
        #[test]
        fn ip_text_is_what_to_string_writes(v4: u32, v6: u128) {
            for ip in [IpAddr::from(std::net::Ipv4Addr::from(v4)), IpAddr::from(std::net::Ipv6Addr::from(v6))] {
                let mut text = [0; MAX_IP_TEXT];
                let expected = ip.to_string();
                proptest::prop_assert_eq!(ip_text_into(ip, &mut text), expected.as_bytes());
            }
        }
    }

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            peer: peer.parse().unwrap(),
            local: "127.0.0.1:443".parse::<SocketAddr>().unwrap(),
            tls: true,
            version: Version::HTTP_11,
        }
    }

    fn policy(upstream: &str, trusted: &[&str]) -> ForwardPolicy {
        let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
        ForwardPolicy::new(&Url::parse(upstream).unwrap(), &trusted, HostPolicy::Keep).unwrap()
    }

    fn get(target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn joins_base_path_and_keeps_query_bytes() {
        let root = policy("http://ent:8080/", &[]);
        let pq = PathAndQuery::from_static("/cas/login?service=https%3A%2F%2Fx&a=%zz");
        assert_eq!(
            root.upstream_uri(Some(&pq)).unwrap().to_string(),
            "http://ent:8080/cas/login?service=https%3A%2F%2Fx&a=%zz"
        );
        let based = policy("https://ent.example/ent/", &[]);
        assert_eq!(
            based.upstream_uri(Some(&pq)).unwrap().to_string(),
            "https://ent.example/ent/cas/login?service=https%3A%2F%2Fx&a=%zz"
        );
    }

    #[test]
    fn refuses_two_hosts_and_missing_host() {
        let two = get("/", &[("host", "a"), ("host", "b")]);
        assert_eq!(check_front_door(&two), Err(FrontDoorError::HostDuplicate));
        assert_eq!(
            check_front_door(&get("/", &[])),
            Err(FrontDoorError::HostMissing)
        );
    }

    #[test]
    fn absolute_target_must_match_host() {
        let evil = get("http://evil.example/x", &[("host", "good.example")]);
        assert_eq!(check_front_door(&evil), Err(FrontDoorError::HostMismatch));
        let same = get("http://GOOD.example:80/x", &[("host", "good.example")]);
        assert_eq!(check_front_door(&same), Ok(()));
    }

    #[test]
    fn refuses_asterisk_and_invalid_host() {
        let star = Request::options("*").header("host", "a").body(()).unwrap();
        assert_eq!(check_front_door(&star), Err(FrontDoorError::TargetForm));
        let userinfo = get("/", &[("host", "user@a")]);
        assert_eq!(
            check_front_door(&userinfo),
            Err(FrontDoorError::HostInvalid)
        );
    }

    #[test]
    fn strips_hop_by_hop_and_listed_names() {
        let req = get(
            "/x",
            &[
                ("host", "cas.example"),
                ("connection", "X-Forwarded-For, , cookie,X-Secret"),
                ("connection", "keep-alive"),
                ("keep-alive", "timeout=5"),
                ("te", "trailers"),
                ("upgrade", "h2c"),
                ("proxy-connection", "keep-alive"),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-secret", "1"),
                ("cookie", "a=1"),
                ("x_forwarded_for", "6.6.6.6"),
                ("expect", "100-continue"),
            ],
        );
        let out = policy("http://ent/", &[])
            .upstream_request(req, &conn("127.0.0.1:5000"))
            .unwrap();
        let h = out.headers();
        for gone in [
            "connection",
            "keep-alive",
            "te",
            "upgrade",
            "proxy-connection",
            "x-secret",
            "cookie",
            "x_forwarded_for",
            "expect",
        ] {
            assert!(!h.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(h[X_FORWARDED_FOR], "127.0.0.1");
        assert_eq!(h[HOST], "cas.example");
    }

    #[test]
    fn forwarding_headers_trusted_only_from_trusted_peers() {
        let headers = [
            ("host", "cas.example"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil"),
        ];
        let p = policy("http://ent/", &["10.0.0.0/8"]);
        let untrusted = p
            .upstream_request(get("/", &headers), &conn("192.0.2.1:1"))
            .unwrap();
        assert_eq!(untrusted.headers()[X_FORWARDED_FOR], "192.0.2.1");
        assert_eq!(untrusted.headers()[X_FORWARDED_PROTO], "https");
        assert_eq!(untrusted.headers()[X_FORWARDED_HOST], "cas.example");
        let trusted = p
            .upstream_request(get("/", &headers), &conn("10.1.2.3:1"))
            .unwrap();
        assert_eq!(trusted.headers()[X_FORWARDED_FOR], "1.2.3.4, 10.1.2.3");
        assert_eq!(trusted.headers()[X_FORWARDED_PROTO], "http");
        assert_eq!(trusted.headers()[X_FORWARDED_HOST], "evil");
    }

    #[test]
    fn host_policy_upstream_sends_upstream_authority() {
        let p = ForwardPolicy::new(
            &Url::parse("http://ent:8080/").unwrap(),
            &[],
            HostPolicy::Upstream,
        )
        .unwrap();
        let out = p
            .upstream_request(get("/", &[("host", "cas.example")]), &conn("127.0.0.1:1"))
            .unwrap();
        assert_eq!(out.headers()[HOST], "ent:8080");
    }

    #[test]
    fn http2_cookies_joined_and_authority_becomes_host() {
        let req = Request::get("https://cas.example/login")
            .version(Version::HTTP_2)
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(())
            .unwrap();
        assert_eq!(check_front_door(&req), Ok(()));
        let out = policy("http://ent/", &[])
            .upstream_request(req, &conn("127.0.0.1:1"))
            .unwrap();
        assert_eq!(out.headers()[COOKIE], "a=1; b=2");
        assert_eq!(out.headers()[HOST], "cas.example");
        assert_eq!(out.version(), Version::HTTP_11);
    }

    #[test]
    fn replaced_body_gets_its_own_content_length() {
        let mut response = Response::builder()
            .header("content-length", "1234")
            .body(ProxyBody::full("short"))
            .unwrap();
        align_content_length(&mut response, &Method::GET);
        assert_eq!(response.headers()[CONTENT_LENGTH], "5");
        let mut head = Response::builder()
            .header("content-length", "1234")
            .body(ProxyBody::empty())
            .unwrap();
        align_content_length(&mut head, &Method::HEAD);
        assert_eq!(head.headers()[CONTENT_LENGTH], "1234");
    }

    #[tokio::test]
    async fn inspected_request_body_is_capped() {
        let limit = Duration::from_secs(5);
        let small = read_body(ProxyBody::full("abc"), 3, limit).await;
        assert_eq!(small.unwrap(), Bytes::from_static(b"abc"));
        let big = read_body(ProxyBody::full("abcd"), 3, limit).await;
        assert_eq!(big, Err(FrontDoorError::BodyTooLarge));
        let chunks = futures_util::stream::iter(
            [&b"ab"[..], &b"cd"[..]]
                .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from_static(c)))),
        );
        let streamed = read_body(http_body_util::StreamBody::new(chunks), 3, limit).await;
        assert_eq!(streamed, Err(FrontDoorError::BodyTooLarge));
    }

    #[test]
    fn response_loses_hop_by_hop() {
        let response = Response::builder()
            .header("connection", "x-internal")
            .header("x-internal", "1")
            .header("transfer-encoding", "chunked")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(())
            .unwrap();
        let out = downstream_response(response);
        assert!(!out.headers().contains_key("x-internal"));
        assert!(!out.headers().contains_key("transfer-encoding"));
        assert_eq!(out.headers().get_all("set-cookie").iter().count(), 2);
    }
}
