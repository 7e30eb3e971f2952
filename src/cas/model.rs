//! The typed model every CAS answer is parsed into and serialised from.
//!
//! One model for every wire format (CAS 1 text, CAS 2/3 XML, JSON, SAML 1.1), so the
//! rest of bonenfant never looks at bytes: it reasons about an [`Outcome`].

/// Attributes as an ordered multimap keyed by **local name** (no prefix, no namespace).
///
/// Why a list and not a map: real ENTs repeat names for multi-valued attributes and the
/// order of values carries meaning (Pronote and SACoche take the *first* FrEduVecteur
/// value), so order and duplicates must survive a parse/serialise round trip.
///
/// Why one text buffer: an answer carries 5–40 values; keeping every name and value in
/// one `String` (entries are byte ranges into it) makes a parse a handful of
/// allocations instead of two per value, which the parse budget needs
/// (`docs/performance.md`).
#[derive(Clone, Default)]
pub struct Attributes {
    /// Every name and value, back to back.
    text: String,
    /// `(name end, value end)` in `text`; each entry starts where the previous ended.
    entries: Vec<(usize, usize)>,
}

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for about `values` values of `bytes` bytes in all.
    pub fn with_capacity(values: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            entries: Vec::with_capacity(values),
        }
    }

    /// Appends one value; an existing name gets one more value.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.push_str(&name.into(), &value.into());
    }

    /// [`Self::push`] without taking ownership (no allocation per value).
    pub fn push_str(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push_str(value);
        self.entries.push((name_end, self.text.len()));
    }

    /// All values of `name`, in document order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every (name, value) pair, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.entries.iter().map(move |&(name_end, value_end)| {
            let name = self.text.get(start..name_end).unwrap_or_default();
            let value = self.text.get(name_end..value_end).unwrap_or_default();
            start = value_end;
            (name, value)
        })
    }

    /// The (name, value) pairs whose value holds the byte `needle`, in document order:
    /// one vectorised scan of the whole buffer instead of one scan per value (pupil rule
    /// 1 looks for the `|` few values hold, and a scan's setup cost as much as a short
    /// value's bytes).
    pub fn with_value_holding(&self, needle: u8) -> impl Iterator<Item = (&str, &str)> {
        let text = self.text.as_bytes();
        let find = move |from: usize| Some(from + memchr::memchr(needle, text.get(from..)?)?);
        // The first `needle` at or after the current entry's start.
        let mut hit = find(0);
        let mut start = 0;
        self.entries
            .iter()
            .filter_map(move |&(name_end, value_end)| {
                let entry_start = std::mem::replace(&mut start, value_end);
                // A `needle` in the name says nothing of the value: look again after it.
                if hit.is_some_and(|at| at < name_end) {
                    hit = find(name_end);
                }
                hit.filter(|&at| at < value_end)?;
                hit = find(value_end);
                Some((
                    self.text.get(entry_start..name_end)?,
                    self.text.get(name_end..value_end)?,
                ))
            })
    }

    /// Number of (name, value) pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Distinct names, in order of first appearance.
    pub fn names(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for (n, _) in self.iter() {
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        seen
    }

    /// Removes every value of `name` and returns them in order.
    pub fn remove(&mut self, name: &str) -> Vec<String> {
        let mut kept = Attributes::with_capacity(self.len(), self.text.len());
        let mut removed = Vec::new();
        for (n, v) in self.iter() {
            if n == name {
                removed.push(v.to_owned());
            } else {
                kept.push_str(n, v);
            }
        }
        *self = kept;
        removed
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Attributes {}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, String)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut attributes = Attributes::new();
        for (name, value) in iter {
            attributes.push_str(&name, &value);
        }
        attributes
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut attributes = Attributes::new();
        for (name, value) in iter {
            attributes.push_str(name, value);
        }
        attributes
    }
}

/// Authentication metadata. Kept apart from the attributes because the rewrite guard
/// (invariant I1b) must always take it from the *current* assertion, never a stored one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthMeta {
    /// CAS 3 `authenticationDate` or SAML `AuthenticationInstant`, verbatim.
    pub authentication_date: Option<String>,
    /// CAS 3 `longTermAuthenticationRequestTokenUsed` (remember-me).
    pub long_term: Option<bool>,
    /// CAS 3 `isFromNewLogin`.
    pub from_new_login: Option<bool>,
    /// SAML `AuthenticationMethod`, verbatim.
    pub method: Option<String>,
}

/// A successful validation: who the ENT says this ticket belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assertion {
    /// `cas:user` (or SAML `NameIdentifier`), XML whitespace trimmed, otherwise byte-exact.
    pub principal: String,
    /// Every released attribute except the authentication metadata.
    pub attributes: Attributes,
    /// `cas:proxyGrantingTicket`: the PGT IOU, never the PGT itself.
    pub pgt_iou: Option<String>,
    /// `cas:proxies`, most recent first.
    pub proxies: Vec<String>,
    pub auth: AuthMeta,
}

/// A failed validation, as the ENT (or bonenfant, failing closed) states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// CAS error code (`INVALID_TICKET`, `INTERNAL_ERROR`, …) or SAML status local name.
    pub code: String,
    /// Free text, trimmed.
    pub message: String,
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The failure bonenfant answers when it cannot vouch for the ENT's answer (I1c).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("INTERNAL_ERROR", message)
    }
}

/// What a validation answer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success(Assertion),
    Failure(Failure),
}

/// The wire format of a validation answer, fixed by the endpoint and `format` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseFormat {
    /// `/validate`: `yes\nuser\n` / `no\n`.
    Cas1Text,
    /// `/serviceValidate`, `/proxyValidate`, `/p3/…`: `cas:serviceResponse` XML.
    Xml,
    /// The same endpoints with `format=JSON`.
    Json,
    /// `/samlValidate`: SAML 1.1 in a SOAP envelope.
    Saml11,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_holding_a_needle_are_those_a_scan_per_value_finds() {
        let pairs: &[(&str, &str)] = &[
            ("a|b", "plain"),
            ("name", "1|x"),
            ("n|", "|"),
            ("", ""),
            ("x", "no"),
            ("é|", "é|é"),
            ("last", "tail|"),
        ];
        for len in 0..=pairs.len() {
            for skip in 0..len {
                let mut attributes = Attributes::new();
                for &(n, v) in pairs.iter().skip(skip).take(len - skip) {
                    attributes.push_str(n, v);
                }
                let expected: Vec<_> = attributes.iter().filter(|(_, v)| v.contains('|')).collect();
                let found: Vec<_> = attributes.with_value_holding(b'|').collect();
                assert_eq!(found, expected, "{attributes:?}");
            }
        }
    }
}
