//! The stable error codes: one closed list, each code with the side that failed, the
//! HTTP status of the answer bonenfant sends with it and the CAS failure code Pronote
//! gets for it. Every error type's `code()` returns a [`Code`]; events carry it; the
//! metrics' `side` label and the answers are derived from it, never guessed from the
//! code's text. `docs/events.md` ("Stable error codes") lists the same codes, and a test
//! keeps the two in step.

use http::StatusCode;
use serde::Serialize;

/// Which side of the exchange failed: what the DSI needs to know to call the right
/// people (a browser or Pronote sent something wrong; the ENT failed; the session store
/// failed; bonenfant itself failed or was set up wrong).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The browser, Pronote or whoever sent the request.
    Client,
    /// The ENT (the upstream CAS server).
    Ent,
    /// The session store (Redis).
    Store,
    /// bonenfant: a bug, a refused guard, its own set-up.
    Bonenfant,
}

impl Side {
    pub const ALL: [Side; 4] = [Side::Client, Side::Ent, Side::Store, Side::Bonenfant];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Ent => "ent",
            Side::Store => "store",
            Side::Bonenfant => "bonenfant",
        }
    }
}

/// The CAS failure code a validation answer carries for a [`Code`].
const INVALID_REQUEST: &str = "INVALID_REQUEST";
const INVALID_TICKET: &str = "INVALID_TICKET";
const INVALID_SERVICE: &str = "INVALID_SERVICE";
const INTERNAL_ERROR: &str = "INTERNAL_ERROR";

macro_rules! codes {
    ($( $variant:ident = $text:literal, $side:ident, $status:literal, $cas:expr; )*) => {
        /// A stable error code (`area.kind[.detail]`), serialised as its text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $variant, )*
        }

        impl Code {
            /// Every code, in the order of `docs/events.md`.
            pub const ALL: &'static [Code] = &[$( Code::$variant, )*];

            /// The code as it appears in the trace, pages, headers and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Code::$variant => $text, )*
                }
            }

            /// Which side failed.
            pub fn side(self) -> Side {
                match self {
                    $( Code::$variant => Side::$side, )*
                }
            }

            /// The HTTP status of the answer bonenfant sends with this code: a browser's
            /// page, or 200 for a CAS validation answer (CAS answers failures with 200).
            pub fn status(self) -> StatusCode {
                let status: u16 = match self {
                    $( Code::$variant => $status, )*
                };
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            /// The CAS failure code Pronote gets with this code.
            pub fn cas_failure(self) -> &'static str {
                match self {
                    $( Code::$variant => $cas, )*
                }
            }
        }
    };
}

codes! {
    // A request bonenfant had to read was refused (validations: CAS answers).
    CasTicketEmpty = "cas.ticket.empty", Client, 200, INVALID_TICKET;
    CasTicketEmptyBody = "cas.ticket.empty_body", Client, 200, INVALID_TICKET;
    CasTicketPrefix = "cas.ticket.prefix", Client, 200, INVALID_TICKET;
    CasTicketCharset = "cas.ticket.charset", Client, 200, INVALID_TICKET;
    CasTicketTooLong = "cas.ticket.too_long", Client, 200, INVALID_TICKET;
    CasRequestMissingParam = "cas.request.missing_param", Client, 200, INVALID_REQUEST;
    CasRequestDuplicateParam = "cas.request.duplicate_param", Client, 200, INVALID_REQUEST;
    CasRequestBadEncoding = "cas.request.bad_encoding", Client, 200, INVALID_REQUEST;
    CasRequestBadFormat = "cas.request.bad_format", Client, 200, INVALID_REQUEST;
    CasRequestNotValidation = "cas.request.not_validation", Client, 200, INVALID_REQUEST;
    CasRequestProxyTicketRefused = "cas.request.proxy_ticket_refused", Client, 200, INVALID_REQUEST;
    CasRequestSamlBody = "cas.request.saml_body", Client, 200, INVALID_REQUEST;
    // The ENT answered `authenticationFailure` (its own code passes on to Pronote).
    CasFailureInvalidRequest = "cas.failure.invalid_request", Ent, 200, "INVALID_REQUEST";
    CasFailureInvalidTicketSpec = "cas.failure.invalid_ticket_spec", Ent, 200, "INVALID_TICKET_SPEC";
    CasFailureUnauthorizedServiceProxy = "cas.failure.unauthorized_service_proxy", Ent, 200, "UNAUTHORIZED_SERVICE_PROXY";
    CasFailureInvalidProxyCallback = "cas.failure.invalid_proxy_callback", Ent, 200, "INVALID_PROXY_CALLBACK";
    CasFailureInvalidTicket = "cas.failure.invalid_ticket", Ent, 200, "INVALID_TICKET";
    CasFailureInvalidService = "cas.failure.invalid_service", Ent, 200, "INVALID_SERVICE";
    CasFailureInternalError = "cas.failure.internal_error", Ent, 200, "INTERNAL_ERROR";
    CasFailureRequestDenied = "cas.failure.request_denied", Ent, 200, "RequestDenied";
    CasFailureOther = "cas.failure.other", Ent, 200, INTERNAL_ERROR;
    // The ENT's answer was refused by the strict parser.
    CasParseTooLarge = "cas.parse.too_large", Ent, 200, INTERNAL_ERROR;
    CasParseTooDeep = "cas.parse.too_deep", Ent, 200, INTERNAL_ERROR;
    CasParseTooManyAttributes = "cas.parse.too_many_attributes", Ent, 200, INTERNAL_ERROR;
    CasParseValueTooLong = "cas.parse.value_too_long", Ent, 200, INTERNAL_ERROR;
    CasParseDoctype = "cas.parse.doctype", Ent, 200, INTERNAL_ERROR;
    CasParseEntity = "cas.parse.entity", Ent, 200, INTERNAL_ERROR;
    CasParseCharRef = "cas.parse.char_ref", Ent, 200, INTERNAL_ERROR;
    CasParseControlChar = "cas.parse.control_char", Ent, 200, INTERNAL_ERROR;
    CasParseEncoding = "cas.parse.encoding", Ent, 200, INTERNAL_ERROR;
    CasParseMalformed = "cas.parse.malformed", Ent, 200, INTERNAL_ERROR;
    CasParseUnclosed = "cas.parse.unclosed", Ent, 200, INTERNAL_ERROR;
    CasParseTwoRoots = "cas.parse.two_roots", Ent, 200, INTERNAL_ERROR;
    CasParseTrailingContent = "cas.parse.trailing_content", Ent, 200, INTERNAL_ERROR;
    CasParseWrongRoot = "cas.parse.wrong_root", Ent, 200, INTERNAL_ERROR;
    CasParseWrongNamespace = "cas.parse.wrong_namespace", Ent, 200, INTERNAL_ERROR;
    CasParseUnboundPrefix = "cas.parse.unbound_prefix", Ent, 200, INTERNAL_ERROR;
    CasParseUnexpectedElement = "cas.parse.unexpected_element", Ent, 200, INTERNAL_ERROR;
    CasParseUnexpectedText = "cas.parse.unexpected_text", Ent, 200, INTERNAL_ERROR;
    CasParseSplitText = "cas.parse.split_text", Ent, 200, INTERNAL_ERROR;
    CasParseDuplicateElement = "cas.parse.duplicate_element", Ent, 200, INTERNAL_ERROR;
    CasParseDuplicateAttribute = "cas.parse.duplicate_attribute", Ent, 200, INTERNAL_ERROR;
    CasParseMissingAttribute = "cas.parse.missing_attribute", Ent, 200, INTERNAL_ERROR;
    CasParseMissingPrincipal = "cas.parse.missing_principal", Ent, 200, INTERNAL_ERROR;
    CasParseAmbiguousPrincipal = "cas.parse.ambiguous_principal", Ent, 200, INTERNAL_ERROR;
    CasParseNotOneOutcome = "cas.parse.not_one_outcome", Ent, 200, INTERNAL_ERROR;
    CasParseBadBoolean = "cas.parse.bad_boolean", Ent, 200, INTERNAL_ERROR;
    CasParseEmpty = "cas.parse.empty", Ent, 200, INTERNAL_ERROR;
    CasParseNotUtf8 = "cas.parse.not_utf8", Ent, 200, INTERNAL_ERROR;
    CasParseCas1Format = "cas.parse.cas1_format", Ent, 200, INTERNAL_ERROR;
    CasParseJson = "cas.parse.json", Ent, 200, INTERNAL_ERROR;
    CasParseJsonDuplicateKey = "cas.parse.json_duplicate_key", Ent, 200, INTERNAL_ERROR;
    CasParseSamlStatus = "cas.parse.saml_status", Ent, 200, INTERNAL_ERROR;
    CasParseSamlAssertionCount = "cas.parse.saml_assertion_count", Ent, 200, INTERNAL_ERROR;
    CasParseSamlSubject = "cas.parse.saml_subject", Ent, 200, INTERNAL_ERROR;
    CasParseSamlAudience = "cas.parse.saml_audience", Ent, 200, INTERNAL_ERROR;
    CasParseSamlTime = "cas.parse.saml_time", Ent, 200, INTERNAL_ERROR;
    CasParseSamlExpired = "cas.parse.saml_expired", Ent, 200, INTERNAL_ERROR;
    // The ENT could not be used.
    ProxyUpstreamConnect = "proxy.upstream_connect", Ent, 502, INTERNAL_ERROR;
    ProxyUpstreamTimeout = "proxy.upstream_timeout", Ent, 504, INTERNAL_ERROR;
    ProxyUpstreamTls = "proxy.upstream_tls", Ent, 502, INTERNAL_ERROR;
    ProxyUpstreamProtocol = "proxy.upstream_protocol", Ent, 502, INTERNAL_ERROR;
    ProxyUpstreamBodyTooLarge = "proxy.upstream_body_too_large", Ent, 502, INTERNAL_ERROR;
    ProxyUpstreamStatus = "proxy.upstream_status", Ent, 200, INTERNAL_ERROR;
    // bonenfant could not set itself up or failed.
    ProxyUpstreamSetup = "proxy.upstream_setup", Bonenfant, 500, INTERNAL_ERROR;
    ProxyListen = "proxy.listen", Bonenfant, 500, INTERNAL_ERROR;
    ProxyPem = "proxy.pem", Bonenfant, 500, INTERNAL_ERROR;
    ProxyTlsConfig = "proxy.tls_config", Bonenfant, 500, INTERNAL_ERROR;
    ProxyInternal = "proxy.internal", Bonenfant, 500, INTERNAL_ERROR;
    ConfigCookieKey = "config.cookie_key", Bonenfant, 500, INTERNAL_ERROR;
    CookieKeyTooShort = "cookie.key_too_short", Bonenfant, 500, INTERNAL_ERROR;
    CookieNoKey = "cookie.no_key", Bonenfant, 500, INTERNAL_ERROR;
    // The client sent something bonenfant refuses.
    ProxyOverloaded = "proxy.overloaded", Client, 503, INTERNAL_ERROR;
    ProxyRequestBodyTooLarge = "proxy.request_body_too_large", Client, 413, INVALID_REQUEST;
    ProxyRequestBodyBroken = "proxy.request_body_broken", Client, 400, INVALID_REQUEST;
    ProxyRequestBodyInvalid = "proxy.request_body_invalid", Client, 400, INVALID_REQUEST;
    ProxyRequestBodyTimeout = "proxy.request_body_timeout", Client, 408, INVALID_REQUEST;
    ProxyTicketReplayed = "proxy.ticket_replayed", Client, 200, INVALID_TICKET;
    ProxyUncorrelatedTicket = "proxy.uncorrelated_ticket", Client, 200, INVALID_TICKET;
    ProxyStashServiceMismatch = "proxy.stash_service_mismatch", Client, 200, INVALID_SERVICE;
    ProxyRenewNotPrimary = "proxy.renew_not_primary", Client, 200, INVALID_TICKET;
    ProxyNotFound = "proxy.not_found", Client, 404, INVALID_REQUEST;
    ProxyLoginPath = "proxy.login_path", Client, 400, INVALID_REQUEST;
    ProxyHostMissing = "proxy.host_missing", Client, 400, INVALID_REQUEST;
    ProxyHostInvalid = "proxy.host_invalid", Client, 400, INVALID_REQUEST;
    ProxyHostDuplicate = "proxy.host_duplicate", Client, 400, INVALID_REQUEST;
    ProxyHostMismatch = "proxy.host_mismatch", Client, 400, INVALID_REQUEST;
    ProxyMethodConnect = "proxy.method_connect", Client, 405, INVALID_REQUEST;
    ProxyTargetForm = "proxy.target_form", Client, 400, INVALID_REQUEST;
    // The chooser refused a pin.
    PinCsrf = "pin.csrf", Client, 403, INVALID_REQUEST;
    PinOrigin = "pin.origin", Client, 403, INVALID_REQUEST;
    PinMethod = "pin.method", Client, 405, INVALID_REQUEST;
    PinNoSession = "pin.no_session", Client, 400, INVALID_REQUEST;
    PinUnknownChild = "pin.unknown_child", Client, 403, INVALID_REQUEST;
    PinFormMissingField = "pin.form_missing_field", Client, 400, INVALID_REQUEST;
    PinFormRepeatedField = "pin.form_repeated_field", Client, 400, INVALID_REQUEST;
    PinServiceTarget = "pin.service_target", Client, 400, INVALID_REQUEST;
    // A rewrite guard refused (the answer passes unchanged).
    PinRewriteNoSession = "pin.rewrite.no_session", Bonenfant, 200, INTERNAL_ERROR;
    PinRewriteNoSource = "pin.rewrite.no_source", Bonenfant, 200, INTERNAL_ERROR;
    PinRewriteStale = "pin.rewrite.stale", Bonenfant, 200, INTERNAL_ERROR;
    PinRewriteOtherPrincipal = "pin.rewrite.other_principal", Bonenfant, 200, INTERNAL_ERROR;
    PinRewriteOtherService = "pin.rewrite.other_service", Bonenfant, 200, INTERNAL_ERROR;
    PinRewriteNothingAllowed = "pin.rewrite.nothing_allowed", Bonenfant, 200, INTERNAL_ERROR;
    // The session store.
    StoreUnavailable = "store.unavailable", Store, 503, INTERNAL_ERROR;
    StoreCorrupt = "store.corrupt", Store, 500, INTERNAL_ERROR;
    StoreTooLarge = "store.too_large", Store, 500, INTERNAL_ERROR;
    StoreContention = "store.contention", Store, 503, INTERNAL_ERROR;
    StoreUnauthentic = "store.unauthentic", Store, 500, INTERNAL_ERROR;
    StoreInvalidUrl = "store.invalid_url", Bonenfant, 500, INTERNAL_ERROR;
    StoreSetup = "store.setup", Bonenfant, 500, INTERNAL_ERROR;
    // The trace log and the report tool.
    EventsOpen = "events.open", Bonenfant, 500, INTERNAL_ERROR;
    EventsKeyTooShort = "events.key_too_short", Bonenfant, 500, INTERNAL_ERROR;
    ReportRead = "report.read", Bonenfant, 500, INTERNAL_ERROR;
    ReportWrite = "report.write", Bonenfant, 500, INTERNAL_ERROR;
}

impl Code {
    /// The code of a CAS `authenticationFailure` the ENT answered: the CAS spec's codes
    /// (and SAML's `RequestDenied`) by name, anything else `cas.failure.other`, so a
    /// misbehaving ENT cannot grow the list of codes.
    pub fn of_cas_failure(cas_code: &str) -> Code {
        match cas_code.trim() {
            "INVALID_REQUEST" => Code::CasFailureInvalidRequest,
            "INVALID_TICKET_SPEC" => Code::CasFailureInvalidTicketSpec,
            "UNAUTHORIZED_SERVICE_PROXY" => Code::CasFailureUnauthorizedServiceProxy,
            "INVALID_PROXY_CALLBACK" => Code::CasFailureInvalidProxyCallback,
            "INVALID_TICKET" => Code::CasFailureInvalidTicket,
            "INVALID_SERVICE" => Code::CasFailureInvalidService,
            "INTERNAL_ERROR" => Code::CasFailureInternalError,
            "RequestDenied" => Code::CasFailureRequestDenied,
            _ => Code::CasFailureOther,
        }
    }

    /// The code with this text, if it is one.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The "Stable error codes" table of `docs/events.md`: (codes of a row, its side).
    fn documented() -> Vec<(Vec<String>, String)> {
        let doc = include_str!("../docs/events.md");
        let section = doc
            .split("## Stable error codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the section exists");
        section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let (codes, side, meaning) = (cells[1], cells[2], cells[3]);
                let mut names: Vec<String> = codes
                    .split(", ")
                    .map(|c| c.trim_matches('`').to_owned())
                    .collect();
                // `cas.parse.*` lists its kinds in the meaning column.
                if names == ["cas.parse.*"] {
                    let kinds = meaning.split(": ").nth(1).expect("kinds listed");
                    names = kinds
                        .split(", ")
                        .map(|k| format!("cas.parse.{}", k.trim_matches('`')))
                        .collect();
                }
                (names, side.to_owned())
            })
            .collect()
    }

    #[test]
    fn docs_list_every_code_with_its_side_and_nothing_else() {
        let mut seen = BTreeSet::new();
        for (names, side) in documented() {
            for name in names {
                let code = Code::parse(&name)
                    .unwrap_or_else(|| panic!("docs/events.md lists {name}, not a Code"));
                assert_eq!(
                    code.side().as_str(),
                    side.split(' ').next().unwrap_or_default(),
                    "side of {name} in docs/events.md"
                );
                assert!(seen.insert(code), "{name} listed twice");
            }
        }
        let missing: Vec<&str> = Code::ALL
            .iter()
            .filter(|c| !seen.contains(c))
            .map(|c| c.as_str())
            .collect();
        assert!(missing.is_empty(), "not in docs/events.md: {missing:?}");
    }

    #[test]
    fn codes_are_unique_and_name_their_area() {
        let texts: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), Code::ALL.len());
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
            assert!(code.as_str().contains('.'), "{code}: area.kind");
        }
    }

    #[test]
    fn cas_failure_codes_are_a_closed_list() {
        assert_eq!(
            Code::of_cas_failure("INVALID_TICKET"),
            Code::CasFailureInvalidTicket
        );
        assert_eq!(
            Code::of_cas_failure(" INVALID_SERVICE\n"),
            Code::CasFailureInvalidService
        );
        assert_eq!(
            Code::of_cas_failure("ST-123-evil\n{}"),
            Code::CasFailureOther
        );
    }

    #[test]
    fn a_clients_error_is_never_counted_against_the_ent() {
        for code in [
            Code::ProxyRequestBodyBroken,
            Code::ProxyRequestBodyTimeout,
            Code::CasTicketPrefix,
            Code::PinCsrf,
        ] {
            assert_eq!(code.side(), Side::Client, "{code}");
        }
    }
}
