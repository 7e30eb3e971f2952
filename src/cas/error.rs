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
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::TooLarge { .. } => "cas.parse.too_large",
            ParseError::NotUtf8 => "cas.parse.not_utf8",
            ParseError::Encoding => "cas.parse.encoding",
            ParseError::Doctype => "cas.parse.doctype",
            ParseError::Entity => "cas.parse.entity",
            ParseError::CharRef => "cas.parse.char_ref",
            ParseError::ControlChar => "cas.parse.control_char",
            ParseError::Malformed(_) => "cas.parse.malformed",
            ParseError::Unclosed => "cas.parse.unclosed",
            ParseError::Empty => "cas.parse.empty",
            ParseError::TwoRoots => "cas.parse.two_roots",
            ParseError::TrailingContent => "cas.parse.trailing_content",
            ParseError::UnboundPrefix => "cas.parse.unbound_prefix",
            ParseError::WrongNamespace(_) => "cas.parse.wrong_namespace",
            ParseError::WrongRoot(_) => "cas.parse.wrong_root",
            ParseError::NotOneOutcome => "cas.parse.not_one_outcome",
            ParseError::AmbiguousPrincipal => "cas.parse.ambiguous_principal",
            ParseError::MissingPrincipal => "cas.parse.missing_principal",
            ParseError::SplitText => "cas.parse.split_text",
            ParseError::UnexpectedText => "cas.parse.unexpected_text",
            ParseError::UnexpectedElement(_) => "cas.parse.unexpected_element",
            ParseError::DuplicateElement(_) => "cas.parse.duplicate_element",
            ParseError::DuplicateAttribute => "cas.parse.duplicate_attribute",
            ParseError::MissingAttribute(_) => "cas.parse.missing_attribute",
            ParseError::TooDeep { .. } => "cas.parse.too_deep",
            ParseError::TooManyAttributes { .. } => "cas.parse.too_many_attributes",
            ParseError::ValueTooLong { .. } => "cas.parse.value_too_long",
            ParseError::BadBoolean => "cas.parse.bad_boolean",
            ParseError::Cas1Format => "cas.parse.cas1_format",
            ParseError::Json(_) => "cas.parse.json",
            ParseError::JsonDuplicateKey => "cas.parse.json_duplicate_key",
            ParseError::SamlSubject => "cas.parse.saml_subject",
            ParseError::SamlStatus => "cas.parse.saml_status",
            ParseError::SamlAssertionCount => "cas.parse.saml_assertion_count",
            ParseError::SamlExpired => "cas.parse.saml_expired",
            ParseError::SamlTime => "cas.parse.saml_time",
            ParseError::SamlAudience => "cas.parse.saml_audience",
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
