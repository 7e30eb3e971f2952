//! The compact wire form of every stored value, and the digests that stand for tickets,
//! sessions and caller keys in store keys.
//!
//! Why a wire form apart from the domain types: the memory store keeps encoded bytes
//! (one allocation per entry instead of one per string, which is what keeps a session
//! under 1 KiB, `docs/performance.md`), Redis needs bytes anyway, and both stores share
//! one codec so a value written by one instance reads the same on another. JSON with
//! one-letter field names: compact, tolerant of added fields (`serde(default)`),
//! readable by an operator who has the right to look.
//!
//! Why digests: a ticket is a bearer credential and a session id nearly one; neither is
//! kept in clear as a key (invariant I4; `docs/security.md`, T45). The digests are keyed
//! by the store key (`seal`), so nobody without it can tell where a ticket's entry is,
//! nor plant one for a ticket of their choosing (T56).

use serde::{Deserialize, Serialize};

use super::{
    KnownChild, ObservedAssertion, RetryProgress, SessionId, SessionState, StashedValidation,
    StoreError, StoreKeys, TicketBinding,
};
use crate::cas::{Assertion, Attributes, AuthMeta, Failure, Outcome, ServiceTicket};
use crate::events::PinOutcome;
use crate::pupil::{PupilKey, Uai};

pub(crate) use super::seal::Digest;

/// A ticket as the store names it: its keyed digests under every accepted store key,
/// current first. A validation asks the store about one ticket up to four times (the
/// stash, the binding, the claim and its take); each digest is an HMAC-SHA256, so the
/// caller computes them once ([`super::SessionStore::ticket_key`]) and passes this to
/// every call about that ticket. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct TicketKey {
    /// Never empty: there is at least the current key.
    digests: Vec<Digest>,
}

impl TicketKey {
    /// The digests of `ticket` under `keys`.
    pub(crate) fn new(keys: &StoreKeys, ticket: &ServiceTicket) -> Self {
        let (domain, input) = Subject::ticket_parts(ticket);
        Self {
            digests: keys.digests(domain, input),
        }
    }
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(<redacted>)")
    }
}

/// What an entry is about, as its store key stands for it: a domain and the secret
/// bytes, digested under the store key.
#[derive(Clone, Copy)]
pub(crate) enum Subject<'a> {
    /// Digested already, by [`TicketKey::new`].
    Ticket(&'a TicketKey),
    Session(&'a SessionId),
    /// A caller-built key (last-pupil map): fixed length whatever the caller passes.
    CallerKey(&'a str),
}

impl Subject<'_> {
    fn ticket_parts(ticket: &ServiceTicket) -> (&'static [u8], &[u8]) {
        (b"bonenfant.ticket", ticket.expose().as_bytes())
    }

    /// What digesting this subject starts from.
    fn parts(&self) -> Parts<'_> {
        match self {
            Subject::Ticket(key) => Parts::Digested(key),
            Subject::Session(id) => Parts::Secret(b"bonenfant.session", &id.0),
            Subject::CallerKey(key) => Parts::Secret(b"bonenfant.last_pupil", key.as_bytes()),
        }
    }

    /// The digest under the current key: where a new entry goes.
    pub(crate) fn digest(&self, keys: &StoreKeys) -> Digest {
        match self.parts() {
            // `TicketKey::new` never leaves the list empty (`StoreKeys` is never empty).
            Parts::Digested(ticket) => ticket.digests[0],
            Parts::Secret(domain, input) => keys.digest(domain, input),
        }
    }

    /// The digests under every accepted key, current first: where an entry may be.
    pub(crate) fn digests(&self, keys: &StoreKeys) -> Vec<Digest> {
        match self.parts() {
            Parts::Digested(ticket) => ticket.digests.clone(),
            Parts::Secret(domain, input) => keys.digests(domain, input),
        }
    }
}

/// A subject's digests computed already (a ticket's, once per request), or its domain
/// and the secret bytes to digest under it.
enum Parts<'a> {
    Digested(&'a TicketKey),
    Secret(&'static [u8], &'a [u8]),
}

/// `value` if it is within `max` bytes, else `TooLarge`.
pub(crate) fn within_bound(value: Vec<u8>, max: usize) -> Result<Vec<u8>, StoreError> {
    if value.len() > max {
        return Err(StoreError::TooLarge {
            bytes: value.len(),
            limit: max,
        });
    }
    Ok(value)
}

/// Serialises a value through its wire form.
pub(crate) fn encode<W: Serialize>(wire: &W) -> Vec<u8> {
    // Serialising plain structs of strings, integers and vectors to a Vec cannot fail.
    serde_json::to_vec(wire).unwrap_or_default()
}

/// Parses bytes written by [`encode`]; anything else is `Corrupt` (the message names
/// the kind of value, never its content).
pub(crate) fn decode<'a, W: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<W, StoreError> {
    serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt(format!("undecodable {what}")))
}

// === wire types ===

/// A pupil key as `["0330012A","701294"]`.
#[derive(Serialize, Deserialize)]
pub(crate) struct WirePupil(String, String);

#[derive(Serialize, Deserialize)]
pub(crate) struct WireBinding {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(rename = "v")]
    service: String,
    #[serde(rename = "t")]
    issued_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireStash {
    #[serde(rename = "v")]
    service: String,
    /// The assertion, for a success…
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    assertion: Option<WireAssertion>,
    /// …or (code, message), for a failure.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    failure: Option<(String, String)>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(rename = "t")]
    stored_at_ms: u64,
    #[serde(rename = "p")]
    pin: String,
    #[serde(rename = "r", default)]
    retries: u32,
    #[serde(rename = "n", default)]
    primary: bool,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    ent_answer: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireAssertion {
    #[serde(rename = "u")]
    principal: String,
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<(String, String)>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pgt_iou: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    proxies: Vec<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    authentication_date: Option<String>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    long_term: Option<bool>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    from_new_login: Option<bool>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
}

/// A known child: (pupil, first name, class); values written before classes were kept
/// have no class.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireKnown {
    Labelled(WirePupil, Option<String>, Option<String>),
    Named(WirePupil, Option<String>),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireState {
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pin: Option<WirePupil>,
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    landed: Vec<WirePupil>,
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    known: Vec<WireKnown>,
    #[serde(rename = "o", default, skip_serializing_if = "Vec::is_empty")]
    observed: Vec<WireObserved>,
    /// (service, retries, started at).
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    retry: Option<(String, u32, u64)>,
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    renew_for: Option<String>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pass_once: Option<String>,
    #[serde(rename = "t", default)]
    updated_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct WireObserved {
    #[serde(rename = "u")]
    principal: String,
    #[serde(rename = "v")]
    service: String,
    #[serde(rename = "t")]
    at_ms: u64,
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<(String, String)>,
}

/// The last pupil of a (principal, establishment) pair and when it was asserted.
#[derive(Serialize, Deserialize)]
pub(crate) struct WireLastPupil(WirePupil, u64);

// === conversions ===

fn session_to_wire(id: &SessionId) -> String {
    hex::encode(id.0)
}

fn session_from_wire(text: &str) -> Result<SessionId, StoreError> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(text, &mut id)
        .map_err(|_| StoreError::Corrupt("undecodable session id".to_owned()))?;
    Ok(SessionId(id))
}

impl From<&PupilKey> for WirePupil {
    fn from(key: &PupilKey) -> Self {
        Self(key.uai.as_str().to_owned(), key.eleve_id.clone())
    }
}

impl TryFrom<WirePupil> for PupilKey {
    type Error = StoreError;

    fn try_from(wire: WirePupil) -> Result<Self, StoreError> {
        let uai = Uai::parse(&wire.0).ok_or_else(|| {
            StoreError::Corrupt("stored pupil key has a malformed UAI".to_owned())
        })?;
        Ok(PupilKey {
            uai,
            eleve_id: wire.1,
        })
    }
}

impl From<&TicketBinding> for WireBinding {
    fn from(binding: &TicketBinding) -> Self {
        Self {
            session: binding.session.as_ref().map(session_to_wire),
            service: binding.service.clone(),
            issued_at_ms: binding.issued_at_ms,
        }
    }
}

impl TryFrom<WireBinding> for TicketBinding {
    type Error = StoreError;

    fn try_from(wire: WireBinding) -> Result<Self, StoreError> {
        Ok(TicketBinding {
            session: wire.session.as_deref().map(session_from_wire).transpose()?,
            service: wire.service,
            issued_at_ms: wire.issued_at_ms,
        })
    }
}

impl From<&Assertion> for WireAssertion {
    fn from(assertion: &Assertion) -> Self {
        Self {
            principal: assertion.principal.clone(),
            attributes: assertion
                .attributes
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            pgt_iou: assertion.pgt_iou.clone(),
            proxies: assertion.proxies.clone(),
            authentication_date: assertion.auth.authentication_date.clone(),
            long_term: assertion.auth.long_term,
            from_new_login: assertion.auth.from_new_login,
            method: assertion.auth.method.clone(),
        }
    }
}

impl From<WireAssertion> for Assertion {
    fn from(wire: WireAssertion) -> Self {
        Assertion {
            principal: wire.principal,
            attributes: wire.attributes.into_iter().collect::<Attributes>(),
            pgt_iou: wire.pgt_iou,
            proxies: wire.proxies,
            auth: AuthMeta {
                authentication_date: wire.authentication_date,
                long_term: wire.long_term,
                from_new_login: wire.from_new_login,
                method: wire.method,
            },
        }
    }
}

impl From<&StashedValidation> for WireStash {
    fn from(entry: &StashedValidation) -> Self {
        let (assertion, failure) = match &entry.outcome {
            Outcome::Success(assertion) => (Some(WireAssertion::from(assertion)), None),
            Outcome::Failure(f) => (None, Some((f.code.clone(), f.message.clone()))),
        };
        Self {
            service: entry.service.clone(),
            assertion,
            failure,
            session: entry.session.as_ref().map(session_to_wire),
            stored_at_ms: entry.stored_at_ms,
            pin: entry.pin.as_str().to_owned(),
            retries: entry.retries,
            primary: entry.primary,
            ent_answer: entry.ent_answer.clone(),
        }
    }
}

impl TryFrom<WireStash> for StashedValidation {
    type Error = StoreError;

    fn try_from(wire: WireStash) -> Result<Self, StoreError> {
        let outcome = match (wire.assertion, wire.failure) {
            (Some(assertion), None) => Outcome::Success(assertion.into()),
            (None, Some((code, message))) => Outcome::Failure(Failure::new(code, message)),
            _ => {
                return Err(StoreError::Corrupt(
                    "stash entry is neither a success nor a failure".to_owned(),
                ))
            }
        };
        Ok(StashedValidation {
            service: wire.service,
            outcome,
            session: wire.session.as_deref().map(session_from_wire).transpose()?,
            stored_at_ms: wire.stored_at_ms,
            pin: PinOutcome::parse(&wire.pin).ok_or_else(|| {
                StoreError::Corrupt("stash entry has an unknown pin outcome".to_owned())
            })?,
            retries: wire.retries,
            primary: wire.primary,
            ent_answer: wire.ent_answer,
        })
    }
}

impl From<&SessionState> for WireState {
    fn from(state: &SessionState) -> Self {
        Self {
            principal: state.principal.clone(),
            pin: state.pin.as_ref().map(WirePupil::from),
            landed: state.landed.iter().map(WirePupil::from).collect(),
            known: state
                .known
                .iter()
                .map(|k| {
                    WireKnown::Labelled(
                        WirePupil::from(&k.key),
                        k.first_name.clone(),
                        k.class.clone(),
                    )
                })
                .collect(),
            observed: state
                .observed
                .iter()
                .map(|o| WireObserved {
                    principal: o.principal.clone(),
                    service: o.service.clone(),
                    at_ms: o.at_ms,
                    attributes: o.attributes.clone(),
                })
                .collect(),
            retry: state
                .retry
                .as_ref()
                .map(|r| (r.service.clone(), r.retries, r.started_ms)),
            renew_for: state.renew_for.clone(),
            pass_once: state.pass_once.clone(),
            updated_at_ms: state.updated_at_ms,
        }
    }
}

impl TryFrom<WireState> for SessionState {
    type Error = StoreError;

    fn try_from(wire: WireState) -> Result<Self, StoreError> {
        Ok(SessionState {
            principal: wire.principal,
            pin: wire.pin.map(PupilKey::try_from).transpose()?,
            landed: wire
                .landed
                .into_iter()
                .map(PupilKey::try_from)
                .collect::<Result<_, _>>()?,
            known: wire
                .known
                .into_iter()
                .map(|known| {
                    let (key, first_name, class) = match known {
                        WireKnown::Labelled(key, name, class) => (key, name, class),
                        WireKnown::Named(key, name) => (key, name, None),
                    };
                    Ok(KnownChild {
                        key: PupilKey::try_from(key)?,
                        first_name,
                        class,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            observed: wire
                .observed
                .into_iter()
                .map(|o| ObservedAssertion {
                    principal: o.principal,
                    service: o.service,
                    at_ms: o.at_ms,
                    attributes: o.attributes,
                })
                .collect(),
            retry: wire
                .retry
                .map(|(service, retries, started_ms)| RetryProgress {
                    service,
                    retries,
                    started_ms,
                }),
            renew_for: wire.renew_for,
            pass_once: wire.pass_once,
            updated_at_ms: wire.updated_at_ms,
        })
    }
}

// === typed helpers used by both stores ===

pub(crate) fn encode_binding(binding: &TicketBinding) -> Vec<u8> {
    encode(&WireBinding::from(binding))
}

pub(crate) fn decode_binding(bytes: &[u8]) -> Result<TicketBinding, StoreError> {
    decode::<WireBinding>(bytes, "ticket binding")?.try_into()
}

pub(crate) fn encode_stash(entry: &StashedValidation) -> Vec<u8> {
    encode(&WireStash::from(entry))
}

pub(crate) fn decode_stash(bytes: &[u8]) -> Result<StashedValidation, StoreError> {
    decode::<WireStash>(bytes, "stashed validation")?.try_into()
}

pub(crate) fn encode_state(state: &SessionState) -> Vec<u8> {
    encode(&WireState::from(state))
}

pub(crate) fn decode_state(bytes: &[u8]) -> Result<SessionState, StoreError> {
    decode::<WireState>(bytes, "session state")?.try_into()
}

/// A bare session id is stored as its 16 raw bytes (the validated-ticket map holds one
/// per validation: every byte counts).
pub(crate) fn encode_session_id(id: &SessionId) -> Vec<u8> {
    id.0.to_vec()
}

pub(crate) fn decode_session_id(bytes: &[u8]) -> Result<SessionId, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map(SessionId)
        .map_err(|_| StoreError::Corrupt("undecodable session id".to_owned()))
}

pub(crate) fn encode_last_pupil(pupil: &PupilKey, at_ms: u64) -> Vec<u8> {
    encode(&WireLastPupil(WirePupil::from(pupil), at_ms))
}

pub(crate) fn decode_last_pupil(bytes: &[u8]) -> Result<(PupilKey, u64), StoreError> {
    let WireLastPupil(pupil, at_ms) = decode(bytes, "last pupil")?;
    Ok((pupil.try_into()?, at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pupil(uai: &str, id: &str) -> PupilKey {
        PupilKey {
            uai: Uai::parse(uai).unwrap(),
            eleve_id: id.to_owned(),
        }
    }

    #[test]
    fn session_state_round_trips() {
        let state = SessionState {
            principal: Some("AC-BORDEAUX$1234567".to_owned()),
            pin: Some(pupil("0330012A", "701294")),
            landed: vec![pupil("0330012A", "701294")],
            known: vec![
                KnownChild {
                    key: pupil("0330012A", "701294"),
                    first_name: Some("Léa".to_owned()),
                    class: Some("4B".to_owned()),
                },
                KnownChild::new(pupil("0330099B", "701295")),
            ],
            observed: vec![ObservedAssertion {
                principal: "AC-BORDEAUX$1234567".to_owned(),
                service: "https://0330012a.index-education.net/pronote/parent.html".to_owned(),
                at_ms: 42,
                attributes: vec![(
                    "FrEduVecteur".to_owned(),
                    "2|D|L|701294|0330012A".to_owned(),
                )],
            }],
            retry: Some(RetryProgress {
                service: "https://0330012a.index-education.net/pronote/parent.html".to_owned(),
                retries: 2,
                started_ms: 40,
            }),
            renew_for: Some("https://0330012a.index-education.net/pronote/parent.html".to_owned()),
            pass_once: Some("https://0330012a.index-education.net/pronote/parent.html".to_owned()),
            updated_at_ms: 43,
        };
        assert_eq!(decode_state(&encode_state(&state)).unwrap(), state);
    }

    #[test]
    fn stash_round_trips_with_attribute_order() {
        let mut attributes = Attributes::new();
        attributes.push("FrEduVecteur", "2|D|L|701294|0330012A");
        attributes.push("FrEduVecteur", "2|D|T|701295|0330099B");
        let entry = StashedValidation {
            service: "https://s/".to_owned(),
            outcome: Outcome::Success(Assertion {
                principal: "p".to_owned(),
                attributes,
                pgt_iou: Some("PGTIOU-1".to_owned()),
                proxies: vec!["https://proxy/".to_owned()],
                auth: AuthMeta {
                    authentication_date: Some("2026-01-01T00:00:00Z".to_owned()),
                    long_term: Some(false),
                    from_new_login: Some(true),
                    method: None,
                },
            }),
            session: Some(SessionId([7; 16])),
            stored_at_ms: 9,
            pin: PinOutcome::Retry,
            retries: 3,
            primary: true,
            ent_answer: Some("<cas:serviceResponse/>".to_owned()),
        };
        assert_eq!(decode_stash(&encode_stash(&entry)).unwrap(), entry);
        let failed = StashedValidation {
            outcome: Outcome::Failure(Failure::new("INVALID_TICKET", "spent")),
            pin: PinOutcome::None,
            ent_answer: None,
            ..entry
        };
        assert_eq!(decode_stash(&encode_stash(&failed)).unwrap(), failed);
    }

    #[test]
    fn rejects_garbage_and_malformed_uai_as_corrupt() {
        assert!(matches!(
            decode_state(b"\xff{"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_last_pupil(br#"[["nope","1"],5]"#),
            Err(StoreError::Corrupt(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_state(&bytes);
            let _ = decode_stash(&bytes);
            let _ = decode_binding(&bytes);
            let _ = decode_last_pupil(&bytes);
            let _ = decode_session_id(&bytes);
        }

        #[test]
        fn bindings_round_trip_whatever_their_strings(service in ".*", at in proptest::prelude::any::<u64>(), id in proptest::prelude::any::<Option<[u8; 16]>>()) {
            let binding = TicketBinding { session: id.map(SessionId), service, issued_at_ms: at };
            proptest::prop_assert_eq!(decode_binding(&encode_binding(&binding)).unwrap(), binding);
        }
    }

    #[test]
    fn digests_are_domain_separated() {
        let keys = StoreKeys::new([[3u8; 32]]).unwrap();
        let ticket = ServiceTicket::parse("ST-00000000000000000000").unwrap();
        let session = SessionId([0; 16]);
        let digests = [
            Subject::Ticket(&TicketKey::new(&keys, &ticket)).digest(&keys),
            Subject::Session(&session).digest(&keys),
            Subject::CallerKey("ST-00000000000000000000").digest(&keys),
        ];
        assert_ne!(digests[0], digests[1]);
        assert_ne!(digests[0], digests[2]);
    }
}
