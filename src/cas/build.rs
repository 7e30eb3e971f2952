//! Assembles an [`Assertion`] from any wire format, with the rules every format
//! shares: one principal, metadata apart from attributes, bounded counts.

use super::xml::{is_xml_char, trim_xml_whitespace};
use super::{Assertion, Attributes, AuthMeta, ParseError, ParseLimits};

/// CAS 3 metadata names (CAS spec Appendix A): these go to [`AuthMeta`].
pub(crate) const AUTHENTICATION_DATE: &str = "authenticationDate";
pub(crate) const LONG_TERM: &str = "longTermAuthenticationRequestTokenUsed";
pub(crate) const FROM_NEW_LOGIN: &str = "isFromNewLogin";

/// Whether `name` is one of the CAS 3 metadata names.
pub(crate) fn is_metadata(name: &str) -> bool {
    matches!(name, AUTHENTICATION_DATE | LONG_TERM | FROM_NEW_LOGIN)
}

/// The attribute name that would read as a second principal (T19).
const USER: &str = "user";

pub(crate) struct AssertionBuilder<'l> {
    limits: &'l ParseLimits,
    principal: Option<String>,
    attributes: Attributes,
    /// Whether an attribute is named `user` (rare): only then is it compared with
    /// the principal.
    has_user_attribute: bool,
    pgt_iou: Option<String>,
    proxies: Vec<String>,
    auth: AuthMeta,
    /// Whether attributes now come from outside `cas:attributes` (shapes B and C).
    outside: bool,
    /// Those attributes, merged at [`Self::finish`]: django-cas-server and Laclasse
    /// state every value both inside and outside `cas:attributes`, which is one value
    /// said twice, not two values.
    outside_attributes: Vec<(String, String)>,
}

// === impl AssertionBuilder ===

impl<'l> AssertionBuilder<'l> {
    pub fn new(limits: &'l ParseLimits) -> Self {
        Self {
            limits,
            principal: None,
            // Typical answers carry 5–40 values in under 2 KiB.
            attributes: Attributes::with_capacity(40, 1024),
            has_user_attribute: false,
            pgt_iou: None,
            proxies: Vec::new(),
            auth: AuthMeta::default(),
            outside: false,
            outside_attributes: Vec::new(),
        }
    }

    /// Attributes that follow come from outside `cas:attributes` (`true`) or inside.
    pub fn set_outside(&mut self, outside: bool) {
        self.outside = outside;
    }

    /// The principal; a second one is ambiguous whatever its value (T19).
    pub fn principal(&mut self, value: String) -> Result<(), ParseError> {
        if self.principal.is_some() {
            return Err(ParseError::AmbiguousPrincipal);
        }
        self.principal = Some(checked_identity(value, self.limits)?);
        Ok(())
    }

    /// One attribute value; CAS 3 metadata names are routed to [`AuthMeta`].
    /// Names are trimmed like values (a JSON key `" nom"` and an XML `name=" nom"`
    /// are the same attribute in every format).
    pub fn attribute(&mut self, name: &str, value: String) -> Result<(), ParseError> {
        let name = trim_xml_whitespace(name);
        if name.len() > self.limits.max_value_len {
            return Err(ParseError::ValueTooLong {
                limit: self.limits.max_value_len,
            });
        }
        if !name.chars().all(is_xml_char) {
            return Err(ParseError::ControlChar);
        }
        let value = trimmed(value, self.limits)?;
        self.checked_attribute(name, &value)
    }

    /// [`Self::attribute`] for a name and value the XML reader already trimmed and
    /// checked (the hot path: no second pass over the bytes, no allocation).
    pub fn checked_attribute(&mut self, name: &str, value: &str) -> Result<(), ParseError> {
        match name {
            AUTHENTICATION_DATE => set_once(
                &mut self.auth.authentication_date,
                value.to_owned(),
                AUTHENTICATION_DATE,
            ),
            LONG_TERM => set_once(&mut self.auth.long_term, parse_bool(value)?, LONG_TERM),
            FROM_NEW_LOGIN => set_once(
                &mut self.auth.from_new_login,
                parse_bool(value)?,
                FROM_NEW_LOGIN,
            ),
            "" => Err(ParseError::MissingAttribute("attribute")),
            _ => {
                if self.attributes.len() + self.outside_attributes.len()
                    >= self.limits.max_attributes
                {
                    return Err(ParseError::TooManyAttributes {
                        limit: self.limits.max_attributes,
                    });
                }
                self.has_user_attribute |= name == USER;
                if self.outside {
                    self.outside_attributes
                        .push((name.to_owned(), value.to_owned()));
                } else {
                    self.attributes.push_str(name, value);
                }
                Ok(())
            }
        }
    }

    pub fn pgt_iou(&mut self, value: String) -> Result<(), ParseError> {
        let value = checked_identity(value, self.limits)?;
        set_once(&mut self.pgt_iou, value, "proxyGrantingTicket")
    }

    pub fn proxy(&mut self, value: String) -> Result<(), ParseError> {
        if self.proxies.len() >= self.limits.max_attributes {
            return Err(ParseError::TooManyAttributes {
                limit: self.limits.max_attributes,
            });
        }
        self.proxies.push(checked_identity(value, self.limits)?);
        Ok(())
    }

    pub fn limits(&self) -> &'l ParseLimits {
        self.limits
    }

    pub fn auth_mut(&mut self) -> &mut AuthMeta {
        &mut self.auth
    }

    /// The assertion; refused without a principal, or with a `user` attribute naming
    /// someone else (another reading of the same answer would pick that one).
    pub fn finish(mut self) -> Result<Assertion, ParseError> {
        self.merge_outside();
        let principal = self.principal.ok_or(ParseError::MissingPrincipal)?;
        if self.has_user_attribute
            && self
                .attributes
                .iter()
                .any(|(n, v)| n == USER && v != principal)
        {
            return Err(ParseError::AmbiguousPrincipal);
        }
        Ok(Assertion {
            principal,
            attributes: self.attributes,
            pgt_iou: self.pgt_iou,
            proxies: self.proxies,
            auth: self.auth,
        })
    }
}

impl AssertionBuilder<'_> {
    /// Each (name, value) stated outside `cas:attributes` that repeats one stated inside
    /// is that same value (each inside value absorbs one repeat); the others are
    /// attributes of their own, kept in document order after the inside ones.
    fn merge_outside(&mut self) {
        if self.outside_attributes.is_empty() {
            return;
        }
        let mut absorbed = vec![false; self.attributes.len()];
        let inside: Vec<(String, String)> = self
            .attributes
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for (name, value) in std::mem::take(&mut self.outside_attributes) {
            let repeat = inside
                .iter()
                .zip(absorbed.iter_mut())
                .find(|((n, v), used)| !**used && *n == name && *v == value);
            match repeat {
                Some((_, used)) => *used = true,
                None => self.attributes.push_str(&name, &value),
            }
        }
    }
}

/// Sets a single-valued field; the same value twice is fine (django-cas-server
/// repeats metadata in two attribute shapes), a different one is refused.
pub(crate) fn set_once<T: PartialEq>(
    slot: &mut Option<T>,
    value: T,
    what: &'static str,
) -> Result<(), ParseError> {
    match slot {
        Some(existing) if *existing != value => Err(ParseError::DuplicateElement(what)),
        Some(_) => Ok(()),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// `xs:boolean`.
pub(crate) fn parse_bool(value: &str) -> Result<bool, ParseError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ParseError::BadBoolean),
    }
}

/// Trims XML whitespace, bounds the length and refuses characters XML cannot carry
/// (XML values already obey this; JSON values get the same rule so every format
/// yields the same model, and every model can be written back as XML).
pub(crate) fn trimmed(value: String, limits: &ParseLimits) -> Result<String, ParseError> {
    if value.len() > limits.max_value_len {
        return Err(ParseError::ValueTooLong {
            limit: limits.max_value_len,
        });
    }
    if !value.chars().all(is_xml_char) {
        return Err(ParseError::ControlChar);
    }
    let t = trim_xml_whitespace(&value);
    Ok(if t.len() == value.len() {
        value
    } else {
        t.to_owned()
    })
}

/// An identity-bearing value (principal, PGT IOU, proxy, SAML subject): trimmed,
/// non-empty, no control character inside (T27: no case folding, no normalisation).
pub(crate) fn checked_identity(value: String, limits: &ParseLimits) -> Result<String, ParseError> {
    let value = trimmed(value, limits)?;
    if value.is_empty() {
        return Err(ParseError::MissingPrincipal);
    }
    if value.chars().any(char::is_control) {
        return Err(ParseError::ControlChar);
    }
    Ok(value)
}
