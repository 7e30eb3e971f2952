//! The guarded rewrite (invariant I1b) and its gentler form, reorder.
//!
//! Both produce an assertion whose **principal and authentication metadata are the
//! current ticket's own**; only pupil-designating attributes change, and only:
//! * reorder: values the current assertion already carries, moved so the intended
//!   child's comes first;
//! * rewrite: allow-listed attributes of an earlier assertion for the same principal,
//!   same service, same browser session, younger than a bound.

use crate::cas::Assertion;
use crate::code::Code;
use crate::pupil::{FrEduVecteur, PupilKey};
use crate::session::ObservedAssertion;

/// Why a rewrite was refused: the guard that failed, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteRefusal {
    #[error("no browser session ties this ticket to an earlier assertion")]
    NoSession,
    #[error("no earlier assertion designating the intended pupil")]
    NoSource,
    #[error("the earlier assertion is for another principal")]
    OtherPrincipal,
    #[error("the earlier assertion is for another service")]
    OtherService,
    #[error("the earlier assertion is too old")]
    Stale,
    #[error("the earlier assertion carries no allow-listed attribute")]
    NothingAllowed,
}

impl RewriteRefusal {
    pub fn code(self) -> Code {
        match self {
            RewriteRefusal::NoSession => Code::PinRewriteNoSession,
            RewriteRefusal::NoSource => Code::PinRewriteNoSource,
            RewriteRefusal::OtherPrincipal => Code::PinRewriteOtherPrincipal,
            RewriteRefusal::OtherService => Code::PinRewriteOtherService,
            RewriteRefusal::Stale => Code::PinRewriteStale,
            RewriteRefusal::NothingAllowed => Code::PinRewriteNothingAllowed,
        }
    }
}

/// The guard's parameters.
#[derive(Clone, Copy, Debug)]
pub struct RewriteGuard<'a> {
    /// The service of the current ticket (decoded).
    pub service: &'a str,
    /// Whether the current ticket was correlated with a browser session; the source
    /// must come from that session's own state.
    pub has_session: bool,
    pub now_ms: u64,
    pub max_age_ms: u64,
    pub allow: &'a [String],
}

/// Replaces the allow-listed attributes of `current` with those of `source`, if every
/// guard holds. `source` must come from the current browser session's state.
pub fn rewrite(
    current: &Assertion,
    source: Option<&ObservedAssertion>,
    guard: &RewriteGuard<'_>,
) -> Result<Assertion, RewriteRefusal> {
    if !guard.has_session {
        return Err(RewriteRefusal::NoSession);
    }
    let source = source.ok_or(RewriteRefusal::NoSource)?;
    // Byte-exact: no case folding, no normalisation (I1a).
    if source.principal != current.principal {
        return Err(RewriteRefusal::OtherPrincipal);
    }
    if source.service != guard.service {
        return Err(RewriteRefusal::OtherService);
    }
    if guard.now_ms.saturating_sub(source.at_ms) > guard.max_age_ms || source.at_ms > guard.now_ms {
        return Err(RewriteRefusal::Stale);
    }
    let taken: Vec<(&str, &str)> = source
        .attributes
        .iter()
        .filter(|(name, _)| is_allowed(guard.allow, name))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if taken.is_empty() {
        return Err(RewriteRefusal::NothingAllowed);
    }
    let mut rewritten = current.clone();
    // Every spelling of an allow-listed name goes: a wrong child's value left under
    // `FREDUVECTEUR` would still come first and still designate the wrong child.
    rewritten.attributes = current
        .attributes
        .iter()
        .filter(|(name, _)| !is_allowed(guard.allow, name))
        .chain(taken)
        .collect();
    Ok(rewritten)
}

/// Whether `name` is on the allow-list. Case-insensitive, as pupil-key extraction reads
/// names (the académie chain upper-cases them).
fn is_allowed(allow: &[String], name: &str) -> bool {
    allow.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Keeps what an assertion may later lend to a rewrite: the allow-listed attributes.
pub fn observe(
    assertion: &Assertion,
    service: &str,
    now_ms: u64,
    allow: &[String],
) -> ObservedAssertion {
    ObservedAssertion {
        principal: assertion.principal.clone(),
        service: service.to_owned(),
        at_ms: now_ms,
        attributes: assertion
            .attributes
            .iter()
            .filter(|(name, _)| is_allowed(allow, name))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// Attributes that designate one record (one establishment) of the parent. Their
/// values cannot be reordered to match another child: an assertion carrying one is
/// not reordered (retry or rewrite take over), or it would contradict itself.
const RECORD_DESIGNATORS: [&str; 6] = [
    "ENTPersonJointure",
    "ENTEleveStructRattachId",
    "ENTPersonStructRattachRNE",
    "ESCOUAICourant",
    "uai",
    "rne",
];

/// Moves the intended child's FrEduVecteur value first, when the current assertion
/// carries it but not first. `None` when there is nothing to move (absent or already
/// first), or when another attribute designates a record of its own (a jointure, a
/// UAI) that moving the value would contradict, or when the value cannot move without
/// making a pair the ENT did not assert: values move only among the values of one
/// allow-listed attribute, never from one attribute name to another. Values packed
/// with `;` in one attribute are reordered inside it.
pub fn reorder(current: &Assertion, intended: &PupilKey, allow: &[String]) -> Option<Assertion> {
    if current.attributes.iter().any(|(name, _)| {
        RECORD_DESIGNATORS
            .iter()
            .any(|d| d.eq_ignore_ascii_case(name))
    }) {
        return None;
    }
    let designates = |value: &str| {
        FrEduVecteur::parse(value.trim())
            .is_some_and(|v| v.eleve_id == intended.eleve_id && v.uai == intended.uai.as_str())
    };
    let is_vector = |value: &str| {
        value
            .split(';')
            .any(|p| FrEduVecteur::parse(p.trim()).is_some())
    };
    let mut entries: Vec<(String, String)> = current
        .attributes
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let first = entries.iter().position(|(_, v)| is_vector(v))?;
    let first_name = entries.get(first)?.0.clone();
    if !is_allowed(allow, &first_name) {
        return None;
    }
    let holder = entries
        .iter()
        .position(|(n, v)| *n == first_name && v.split(';').any(designates))?;
    if holder == first {
        // Same attribute value: reorder inside a `;`-packed value, if needed.
        let parts: Vec<&str> = entries[first].1.split(';').collect();
        let at = parts.iter().position(|p| designates(p))?;
        let leading_vector = parts
            .iter()
            .position(|p| FrEduVecteur::parse(p.trim()).is_some())?;
        if at == leading_vector {
            return None;
        }
        let mut reordered = parts.clone();
        let moved = reordered.remove(at);
        reordered.insert(leading_vector, moved);
        entries[first].1 = reordered.join(";");
    } else {
        // Swap the two values: same attribute names keep their multiplicity.
        let intended_value = entries[holder].1.clone();
        let displaced = std::mem::replace(&mut entries[first].1, intended_value);
        entries[holder].1 = displaced;
    }
    let mut reordered = current.clone();
    reordered.attributes = entries.into_iter().collect();
    Some(reordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::Attributes;
    use crate::pupil::Uai;

    fn assertion(principal: &str, vectors: &[&str]) -> Assertion {
        let mut attributes = Attributes::new();
        attributes.push("nom", "MARTIN");
        for v in vectors {
            attributes.push("FrEduVecteur", *v);
        }
        Assertion {
            principal: principal.to_owned(),
            attributes,
            ..Assertion::default()
        }
    }

    fn key(id: &str, uai: &str) -> PupilKey {
        PupilKey {
            uai: Uai::parse(uai).unwrap(),
            eleve_id: id.to_owned(),
        }
    }

    const A: &str = "2|MARTIN|Léa|1001|0330012A";
    const B: &str = "2|MARTIN|Hugo|1002|0330013B";

    fn allow() -> Vec<String> {
        vec!["FrEduVecteur".to_owned()]
    }

    fn guard<'a>(allow: &'a [String]) -> RewriteGuard<'a> {
        RewriteGuard {
            service: "https://0330012a.index-education.net/pronote/parent.html",
            has_session: true,
            now_ms: 10_000,
            max_age_ms: 5_000,
            allow,
        }
    }

    #[test]
    fn rewrite_takes_only_allow_listed_attributes_and_keeps_principal_and_metadata() {
        let allow = allow();
        let g = guard(&allow);
        let mut current = assertion("parent.martin", &[B]);
        current.auth.from_new_login = Some(false);
        let mut source = observe(&assertion("parent.martin", &[A]), g.service, 8_000, &allow);
        source.attributes.push(("isAdmin".into(), "true".into()));
        let out = rewrite(&current, Some(&source), &g).unwrap();
        assert_eq!(out.principal, "parent.martin");
        assert_eq!(out.auth, current.auth);
        assert_eq!(
            out.attributes.values("FrEduVecteur").collect::<Vec<_>>(),
            vec![A]
        );
        assert_eq!(out.attributes.first("isAdmin"), None);
        assert_eq!(out.attributes.first("nom"), Some("MARTIN"));
    }

    #[test]
    fn rewrite_refuses_each_failed_guard() {
        let allow = allow();
        let g = guard(&allow);
        let current = assertion("parent.martin", &[B]);
        let good = observe(&assertion("parent.martin", &[A]), g.service, 8_000, &allow);

        let no_session = RewriteGuard {
            has_session: false,
            ..g
        };
        assert_eq!(
            rewrite(&current, Some(&good), &no_session),
            Err(RewriteRefusal::NoSession)
        );
        assert_eq!(rewrite(&current, None, &g), Err(RewriteRefusal::NoSource));

        let other_principal = ObservedAssertion {
            principal: "Parent.martin".into(),
            ..good.clone()
        };
        assert_eq!(
            rewrite(&current, Some(&other_principal), &g),
            Err(RewriteRefusal::OtherPrincipal)
        );

        let other_service = ObservedAssertion {
            service: "https://0330013b.index-education.net/pronote/parent.html".into(),
            ..good.clone()
        };
        assert_eq!(
            rewrite(&current, Some(&other_service), &g),
            Err(RewriteRefusal::OtherService)
        );

        let stale = ObservedAssertion {
            at_ms: 4_000,
            ..good.clone()
        };
        assert_eq!(
            rewrite(&current, Some(&stale), &g),
            Err(RewriteRefusal::Stale)
        );

        let from_future = ObservedAssertion {
            at_ms: 20_000,
            ..good.clone()
        };
        assert_eq!(
            rewrite(&current, Some(&from_future), &g),
            Err(RewriteRefusal::Stale)
        );

        let empty = ObservedAssertion {
            attributes: vec![("nom".into(), "X".into())],
            ..good
        };
        assert_eq!(
            rewrite(&current, Some(&empty), &g),
            Err(RewriteRefusal::NothingAllowed)
        );
    }

    #[test]
    fn reorder_moves_the_intended_value_first() {
        let current = assertion("p", &[B, A]);
        let allow = allow();
        let out = reorder(&current, &key("1001", "0330012A"), &allow).unwrap();
        assert_eq!(
            out.attributes.values("FrEduVecteur").collect::<Vec<_>>(),
            vec![A, B]
        );
        assert_eq!(out.principal, "p");
        assert_eq!(
            reorder(&out, &key("1001", "0330012A"), &allow),
            None,
            "already first"
        );
        assert_eq!(
            reorder(&current, &key("9999", "0330012A"), &allow),
            None,
            "absent"
        );
    }

    /// Interop found a reordered assertion whose FrEduVecteur named one establishment
    /// and whose `ENTPersonJointure` the parent's record in another.
    #[test]
    fn reorder_refuses_an_assertion_with_a_record_jointure() {
        let mut current = assertion("p", &[B, A]);
        current.attributes.push("ENTPersonJointure", "1353694");
        assert_eq!(reorder(&current, &key("1001", "0330012A"), &allow()), None);
    }

    #[test]
    fn reorder_inside_a_packed_value() {
        let packed = format!("{B};{A}");
        let current = assertion("p", &[&packed]);
        let out = reorder(&current, &key("1001", "0330012A"), &allow()).unwrap();
        assert_eq!(
            out.attributes.first("FrEduVecteur"),
            Some(format!("{A};{B}").as_str())
        );
    }

    #[test]
    fn rewrite_replaces_allow_listed_attributes_whatever_their_case() {
        let allow = allow();
        let g = guard(&allow);
        let mut current = assertion("parent.martin", &[]);
        current.attributes.push("FREDUVECTEUR", B);
        let mut earlier = assertion("parent.martin", &[]);
        earlier.attributes.push("FREDUVECTEUR", A);
        let source = observe(&earlier, g.service, 8_000, &allow);
        assert_eq!(source.attributes, vec![("FREDUVECTEUR".into(), A.into())]);
        let out = rewrite(&current, Some(&source), &g).unwrap();
        assert_eq!(
            out.attributes
                .iter()
                .filter(|(_, v)| v.contains('|'))
                .collect::<Vec<_>>(),
            vec![("FREDUVECTEUR", A)],
            "the wrong child's value is gone"
        );
        assert_eq!(out.attributes.first("nom"), Some("MARTIN"));
    }

    #[test]
    fn reorder_never_moves_a_value_to_another_attribute_name() {
        let mut current = assertion("p", &[B]);
        current.attributes.push("ENTAutreVecteur", A);
        let intended = key("1001", "0330012A");
        assert_eq!(reorder(&current, &intended, &allow()), None);
        let mut upper = assertion("p", &[]);
        upper.attributes.push("FREDUVECTEUR", B);
        upper.attributes.push("FREDUVECTEUR", A);
        let out = reorder(&upper, &intended, &allow()).unwrap();
        assert_eq!(
            out.attributes.values("FREDUVECTEUR").collect::<Vec<_>>(),
            vec![A, B],
            "allow-list names match whatever their case"
        );
        assert_eq!(
            reorder(&upper, &intended, &["nom".to_owned()]),
            None,
            "only allow-listed attributes move"
        );
    }
}
