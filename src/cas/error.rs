//! Why an answer was refused. Every variant has a stable code (`cas.parse.…`) naming
//! the rule it broke; messages never quote the answer's content (it may carry a
//! principal, a ticket or a minor's identifiers).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("answer is not valid UTF-8")]
    NotUtf8,
    #[error("answer declares an encoding other than UTF-8")]
    Encoding,
    #[error("answer contains a DOCTYPE")]
    Doctype,
    #[error("answer references an entity other than the five predefined ones")]
    Entity,
    #[error("answer contains an invalid character reference")]
    CharRef,
    #[error("answer contains a character XML or an identity field does not allow")]
    ControlChar,
    #[error("answer is not well-formed XML: {0}")]
    Malformed(&'static str),
    #[error("answer ends inside its root element")]
    Unclosed,
    #[error("answer has no root element")]
    Empty,
    #[error("answer has a second root element")]
    TwoRoots,
    #[error("answer has text outside its root element")]
    TrailingContent,
    #[error("answer uses a namespace prefix that is not declared")]
    UnboundPrefix,
    #[error("element <{0}> is not in the namespace the protocol requires")]
    WrongNamespace(&'static str),
    #[error("root element is not <{0}>")]
    WrongRoot(&'static str),
    #[error("answer does not hold exactly one success or failure")]
    NotOneOutcome,
    #[error("answer names more than one principal")]
    AmbiguousPrincipal,
    #[error("answer names no principal")]
    MissingPrincipal,
    #[error("a comment, processing instruction or CDATA section splits a text value")]
    SplitText,
    #[error("unexpected text in element-only content")]
    UnexpectedText,
    #[error("unexpected element inside <{0}>")]
    UnexpectedElement(&'static str),
    #[error("element <{0}> appears more than once")]
    DuplicateElement(&'static str),
    #[error("an XML attribute appears twice on one element")]
    DuplicateAttribute,
    #[error("element <{0}> lacks a required XML attribute")]
    MissingAttribute(&'static str),
    #[error("elements are nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("a value is longer than {limit} bytes")]
    ValueTooLong { limit: usize },
    #[error("a boolean is neither true nor false")]
    BadBoolean,
    #[error("CAS 1.0 answer is neither `yes\\n<user>\\n` nor `no\\n`")]
    Cas1Format,
    #[error("JSON answer does not match the CAS schema: {0}")]
    Json(&'static str),
    #[error("JSON answer repeats a key")]
    JsonDuplicateKey,
    #[error("SAML subjects are missing or differ")]
    SamlSubject,
    #[error("SAML status code is not a resolvable SAML 1.0 QName")]
    SamlStatus,
    #[error("SAML answer does not hold exactly one assertion with one authentication statement")]
    SamlAssertionCount,
    #[error("SAML assertion is outside its validity window")]
    SamlExpired,
    #[error("SAML time is not an RFC 3339 date-time")]
    SamlTime,
    #[error("SAML audience is not the service")]
    SamlAudience,
}

impl ParseError {
    /// Stable code, logged and documented in `docs/events.md`.
    pub fn code(&self) -> Code {
        match self {
            ParseError::TooLarge { .. } => Code::CasParseTooLarge,
            ParseError::NotUtf8 => Code::CasParseNotUtf8,
            ParseError::Encoding => Code::CasParseEncoding,
            ParseError::Doctype => Code::CasParseDoctype,
            ParseError::Entity => Code::CasParseEntity,
            ParseError::CharRef => Code::CasParseCharRef,
            ParseError::ControlChar => Code::CasParseControlChar,
            ParseError::Malformed(_) => Code::CasParseMalformed,
            ParseError::Unclosed => Code::CasParseUnclosed,
            ParseError::Empty => Code::CasParseEmpty,
            ParseError::TwoRoots => Code::CasParseTwoRoots,
            ParseError::TrailingContent => Code::CasParseTrailingContent,
            ParseError::UnboundPrefix => Code::CasParseUnboundPrefix,
            ParseError::WrongNamespace(_) => Code::CasParseWrongNamespace,
            ParseError::WrongRoot(_) => Code::CasParseWrongRoot,
            ParseError::NotOneOutcome => Code::CasParseNotOneOutcome,
            ParseError::AmbiguousPrincipal => Code::CasParseAmbiguousPrincipal,
            ParseError::MissingPrincipal => Code::CasParseMissingPrincipal,
            ParseError::SplitText => Code::CasParseSplitText,
            ParseError::UnexpectedText => Code::CasParseUnexpectedText,
            ParseError::UnexpectedElement(_) => Code::CasParseUnexpectedElement,
            ParseError::DuplicateElement(_) => Code::CasParseDuplicateElement,
            ParseError::DuplicateAttribute => Code::CasParseDuplicateAttribute,
            ParseError::MissingAttribute(_) => Code::CasParseMissingAttribute,
            ParseError::TooDeep { .. } => Code::CasParseTooDeep,
            ParseError::TooManyAttributes { .. } => Code::CasParseTooManyAttributes,
            ParseError::ValueTooLong { .. } => Code::CasParseValueTooLong,
            ParseError::BadBoolean => Code::CasParseBadBoolean,
            ParseError::Cas1Format => Code::CasParseCas1Format,
            ParseError::Json(_) => Code::CasParseJson,
            ParseError::JsonDuplicateKey => Code::CasParseJsonDuplicateKey,
            ParseError::SamlSubject => Code::CasParseSamlSubject,
            ParseError::SamlStatus => Code::CasParseSamlStatus,
            ParseError::SamlAssertionCount => Code::CasParseSamlAssertionCount,
            ParseError::SamlExpired => Code::CasParseSamlExpired,
            ParseError::SamlTime => Code::CasParseSamlTime,
            ParseError::SamlAudience => Code::CasParseSamlAudience,
        }
    }

    /// Every code, for documentation and for the test that each one is exercised.
    pub const CODES: &'static [&'static str] = &[
        "cas.parse.too_large",
        "cas.parse.not_utf8",
        "cas.parse.encoding",
        "cas.parse.doctype",
        "cas.parse.entity",
        "cas.parse.char_ref",
        "cas.parse.control_char",
        "cas.parse.malformed",
        "cas.parse.unclosed",
        "cas.parse.empty",
        "cas.parse.two_roots",
        "cas.parse.trailing_content",
        "cas.parse.unbound_prefix",
        "cas.parse.wrong_namespace",
        "cas.parse.wrong_root",
        "cas.parse.not_one_outcome",
        "cas.parse.ambiguous_principal",
        "cas.parse.missing_principal",
        "cas.parse.split_text",
        "cas.parse.unexpected_text",
        "cas.parse.unexpected_element",
        "cas.parse.duplicate_element",
        "cas.parse.duplicate_attribute",
        "cas.parse.missing_attribute",
        "cas.parse.too_deep",
        "cas.parse.too_many_attributes",
        "cas.parse.value_too_long",
        "cas.parse.bad_boolean",
        "cas.parse.cas1_format",
        "cas.parse.json",
        "cas.parse.json_duplicate_key",
        "cas.parse.saml_subject",
        "cas.parse.saml_status",
        "cas.parse.saml_assertion_count",
        "cas.parse.saml_expired",
        "cas.parse.saml_time",
        "cas.parse.saml_audience",
    ];
}
use crate::code::Code;
