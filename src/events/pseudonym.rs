//! Keyed pseudonyms for the identifiers a trace event may name (`docs/events.md`,
//! "Identifiers: pseudonyms only"; T46): `HMAC-SHA256(key, "v1|" kind "|" value)`,
//! truncated to 128 bits, hex.
//!
//! Keyed, because principals and SIECLE ids are low-entropy: an unkeyed hash is undone
//! by enumeration. Domain-separated, so the same string as a principal and as a pupil
//! gives unrelated pseudonyms and one cannot be joined with the other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::code::Code;
use crate::pupil::PupilKey;
use crate::session::SessionId;

/// Bytes of the MAC kept: 128 bits, as the EDPB's pseudonymisation guidance asks;
/// collisions are out of reach at any academy's scale.
const PSEUDONYM_BYTES: usize = 16;

/// An identifier after pseudonymisation: 32 lower-case hex digits. Only a
/// [`Pseudonymizer`] makes one, so a raw identifier cannot be put where an event
/// expects a pseudonym.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym(String);

impl Pseudonym {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Pseudonym {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The kinds of identifier, each its own pseudonym domain.
#[derive(Clone, Copy, Debug)]
enum Domain {
    Principal,
    Pupil,
    Session,
}

impl Domain {
    fn label(self) -> &'static [u8] {
        match self {
            Domain::Principal => b"principal",
            Domain::Pupil => b"pupil",
            Domain::Session => b"session",
        }
    }
}

/// The pseudonym key is too short to resist a dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pseudonym key is {len} bytes; at least {min} are needed", min = Pseudonymizer::MIN_KEY_LEN)]
pub struct KeyTooShort {
    pub len: usize,
}

impl KeyTooShort {
    pub fn code(&self) -> Code {
        Code::EventsKeyTooShort
    }
}

/// Turns identifiers into pseudonyms with one secret key (`--pseudonym-key-file`,
/// loaded by `config`). The same key gives the same pseudonyms across restarts and
/// instances, so the DSI can follow a family over months without knowing who it is.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// HMAC state already keyed: each pseudonym clones it instead of re-deriving the key.
    mac: Hmac<Sha256>,
    /// Whether the key was generated for this run (pseudonyms do not survive a restart).
    ephemeral: bool,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("key", &"<redacted>")
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

impl Pseudonymizer {
    /// 256 bits: the HMAC-SHA256 block of entropy; shorter keys are refused.
    pub const MIN_KEY_LEN: usize = 32;

    pub fn new(key: &[u8]) -> Result<Self, KeyTooShort> {
        let too_short = KeyTooShort { len: key.len() };
        if key.len() < Self::MIN_KEY_LEN {
            return Err(too_short);
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| too_short)?;
        Ok(Self {
            mac,
            ephemeral: false,
        })
    }

    /// A key for this run only, with a warning: pseudonyms change at every restart, so
    /// a trace log cannot be aggregated across runs.
    pub fn random() -> Self {
        tracing::warn!(
            "no pseudonym key file: using a random key, trace pseudonyms will change at restart"
        );
        // A full HMAC block of randomness (64 bytes): the infallible constructor.
        let key: [u8; 64] = std::array::from_fn(|_| rand::random());
        Self {
            mac: <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key.into()),
            ephemeral: true,
        }
    }

    /// Whether the key was generated at random for this run.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// The principal (`cas:user`), compared byte-exact as CAS does.
    pub fn principal(&self, principal: &str) -> Pseudonym {
        self.pseudonym(Domain::Principal, &[principal.as_bytes()])
    }

    /// A pupil key, as `UAI|ELEVE_ID`.
    pub fn pupil(&self, pupil: &PupilKey) -> Pseudonym {
        self.pseudonym(
            Domain::Pupil,
            &[
                pupil.uai.as_str().as_bytes(),
                b"|",
                pupil.eleve_id.as_bytes(),
            ],
        )
    }

    /// The proxy's browser-session id.
    pub fn session(&self, session: &SessionId) -> Pseudonym {
        self.pseudonym(Domain::Session, &[&session.0])
    }

    fn pseudonym(&self, domain: Domain, value: &[&[u8]]) -> Pseudonym {
        let mut mac = self.mac.clone();
        mac.update(b"v1|");
        mac.update(domain.label());
        mac.update(b"|");
        for part in value {
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let kept = digest.get(..PSEUDONYM_BYTES).unwrap_or(&digest);
        Pseudonym(lower_hex(kept))
    }
}

/// Lower-case hex, written into one buffer of the right size (`hex::encode` collects
/// one `char` at a time).
fn lower_hex(bytes: &[u8]) -> String {
    let mut text = vec![0; bytes.len() * 2];
    // Twice the input's length, and hex digits are ASCII: neither step can fail.
    match hex::encode_to_slice(bytes, &mut text) {
        Ok(()) => String::from_utf8(text).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    proptest::proptest! {
        #[test]
        fn lower_hex_is_hex_encode(bytes: Vec<u8>) {
            proptest::prop_assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        }
    }

    fn key(byte: u8) -> Vec<u8> {
        vec![byte; 32]
    }

    #[test]
    fn refuses_short_keys() {
        assert_eq!(
            Pseudonymizer::new(&[7; 31]).unwrap_err(),
            KeyTooShort { len: 31 }
        );
        assert!(Pseudonymizer::new(&[7; 32]).is_ok());
    }

    #[test]
    fn same_key_same_pseudonym() {
        let a = Pseudonymizer::new(&key(1)).unwrap();
        let b = Pseudonymizer::new(&key(1)).unwrap();
        assert_eq!(a.principal("jdupont"), b.principal("jdupont"));
        assert_eq!(a.principal("jdupont").as_str().len(), 32);
        assert!(a
            .principal("jdupont")
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn pseudonyms_differ_across_keys() {
        let a = Pseudonymizer::new(&key(1)).unwrap();
        let b = Pseudonymizer::new(&key(2)).unwrap();
        assert_ne!(a.principal("jdupont"), b.principal("jdupont"));
    }

    #[test]
    fn pseudonyms_differ_across_domains() {
        let p = Pseudonymizer::new(&key(1)).unwrap();
        let raw = [0x41u8; 16];
        let as_text = std::str::from_utf8(&raw).unwrap();
        assert_ne!(p.principal(as_text), p.session(&SessionId(raw)));
        let pupil = PupilKey {
            uai: crate::pupil::Uai::parse("0330012A").unwrap(),
            eleve_id: "701294".into(),
        };
        assert_ne!(p.pupil(&pupil), p.principal("0330012A|701294"));
    }

    #[test]
    fn unkeyed_dictionary_finds_nothing() {
        // T46: a SHA-256 dictionary over plausible SIECLE ids never hits a pseudonym.
        let p = Pseudonymizer::new(&key(9)).unwrap();
        let uai = crate::pupil::Uai::parse("0330012A").unwrap();
        let target = p
            .pupil(&PupilKey {
                uai: uai.clone(),
                eleve_id: "700123".into(),
            })
            .0;
        for id in 700_000..701_000u32 {
            for input in [format!("0330012A|{id}"), format!("v1|pupil|0330012A|{id}")] {
                let digest = hex::encode(sha2::Sha256::digest(input.as_bytes()));
                assert!(!digest.starts_with(&target));
            }
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let p = Pseudonymizer::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert!(!format!("{p:?}").contains("0123456789abcdef"));
    }
}
