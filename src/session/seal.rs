//! The store key: keyed digests for store keys, and sealed (authenticated, encrypted)
//! store values (`docs/security.md`, T56–T58).
//!
//! Whoever can write to a shared Redis must not be able to plant or rewrite what an
//! instance reads back, and whoever can read it must learn nothing about parents and
//! pupils. So every Redis value is sealed with XChaCha20-Poly1305 under a key all
//! instances share (`--store-key-file`), with a random 192-bit nonce per value (random
//! nonces of that size never repeat in practice, so no counter has to be shared between
//! instances). The associated data is the map's name and the value's key digest: a value
//! only opens under the key it was written for, so it cannot be moved to another ticket,
//! session or map.
//!
//! Store keys are HMAC-SHA256 digests under a key derived from the same secret, so
//! nobody without it can compute where a ticket's entry lives.
//!
//! Rotation: the key file lists keys, the first current (it seals, and names new
//! entries), the others still accepted (values they sealed open, and entries named
//! under them are still found), as `--cookie-key-file` does.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the shortest store key accepted: 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// Leading byte of a sealed value. JSON (the format before values were sealed) starts
/// with `{` or `[` and a tombstone is empty, so neither is ever taken for a sealed value.
const SEALED_V1: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// Bytes a sealed value adds to its plain text.
pub(crate) const SEAL_OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;

/// What a digest stands for: 128 bits of an HMAC-SHA256, enough that neither a collision
/// nor a guess is within reach, at half the memory of a full digest in every key (1 KiB
/// per session, `docs/performance.md`).
pub(crate) type Digest = [u8; 16];

/// Why store keys were refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreKeyError {
    #[error("no store key given")]
    Empty,
    #[error("store key {number} is {bytes} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort { number: usize, bytes: usize },
}

/// The store keys, current first. Cheap to clone; `Debug` shows only how many there are.
#[derive(Clone)]
pub struct StoreKeys {
    keys: Arc<[DerivedKey]>,
}

/// What one secret gives: a sealing key, a digest key, and a fingerprint that tells two
/// key lists apart without comparing secrets.
#[derive(Clone)]
struct DerivedKey {
    aead: XChaCha20Poly1305,
    /// HMAC-SHA256 keyed once; cloned per digest.
    digest: Hmac<Sha256>,
    fingerprint: [u8; 16],
}

impl StoreKeys {
    /// Keys from their secrets, current first; each at least [`MIN_KEY_BYTES`] long.
    pub fn new<K: AsRef<[u8]>>(
        secrets: impl IntoIterator<Item = K>,
    ) -> Result<Self, StoreKeyError> {
        let keys = secrets
            .into_iter()
            .enumerate()
            .map(|(index, secret)| {
                let secret = secret.as_ref();
                if secret.len() < MIN_KEY_BYTES {
                    return Err(StoreKeyError::TooShort {
                        number: index + 1,
                        bytes: secret.len(),
                    });
                }
                Ok(DerivedKey::new(secret))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(StoreKeyError::Empty);
        }
        Ok(Self { keys: keys.into() })
    }

    /// A random key for this process only: enough for a store no other process reads
    /// (the memory store), never for one shared between instances.
    pub fn random() -> Self {
        let secret: [u8; 32] = rand::random();
        Self {
            keys: vec![DerivedKey::new(&secret)].into(),
        }
    }

    /// How many keys are accepted (the current one included).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: there is at least the current key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn current(&self) -> &DerivedKey {
        // `new` and `random` never build an empty list.
        &self.keys[0]
    }

    /// The digest of `input` in `domain` under the current key: where a new entry goes.
    pub(crate) fn digest(&self, domain: &[u8], input: &[u8]) -> Digest {
        self.current().digest(domain, input)
    }

    /// The digests of `input` under every key, current first, each once: where an entry
    /// written by an instance with another current key may be.
    pub(crate) fn digests(&self, domain: &[u8], input: &[u8]) -> Vec<Digest> {
        let mut digests: Vec<Digest> = Vec::with_capacity(self.keys.len());
        for key in self.keys.iter() {
            let digest = key.digest(domain, input);
            if !digests.contains(&digest) {
                digests.push(digest);
            }
        }
        digests
    }

    /// Seals `plain` for the entry `digest` of `map`, under the current key.
    pub(crate) fn seal(
        &self,
        map: &str,
        digest: &Digest,
        plain: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let aad = associated_data(map, digest);
        let sealed = self
            .current()
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError)?;
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plain.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value read from the entry `digest` of `map`, under any accepted key.
    /// `None` for anything this store did not seal for that very entry: forged,
    /// altered, truncated, moved from another entry or map, in the old unsealed format,
    /// or sealed under a key no longer (or never) accepted.
    pub(crate) fn open(&self, map: &str, digest: &Digest, value: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = value.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_BYTES + TAG_BYTES {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let aad = associated_data(map, digest);
        self.keys.iter().find_map(|key| {
            key.aead
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .ok()
        })
    }
}

impl PartialEq for StoreKeys {
    /// Same keys in the same order (by fingerprint: no secret is compared).
    fn eq(&self, other: &Self) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(other.keys.iter())
                .all(|(a, b)| a.fingerprint == b.fingerprint)
    }
}

impl Eq for StoreKeys {}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKeys(<{} masked>)", self.keys.len())
    }
}

/// A value could not be sealed (only a plain text beyond the cipher's limit, about
/// 256 GiB, can cause it).
#[derive(Debug, thiserror::Error)]
#[error("a store value could not be sealed")]
pub(crate) struct SealError;

impl DerivedKey {
    /// Each use gets its own key, derived with a label (HMAC-SHA256 of the label under
    /// the secret, HKDF-Expand's single block), so no two uses ever share one.
    fn new(secret: &[u8]) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            // HMAC takes a key of any length: this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let aead_key = derive(b"bonenfant store v1: value sealing\x01");
        let digest_key = derive(b"bonenfant store v1: key digests\x01");
        let id = derive(b"bonenfant store v1: key fingerprint\x01");
        let mut fingerprint = [0u8; 16];
        fingerprint.copy_from_slice(&id[..16]);
        Self {
            aead: XChaCha20Poly1305::new(&aead_key.into()),
            digest: <Hmac<Sha256> as Mac>::new_from_slice(&digest_key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
            fingerprint,
        }
    }

    /// HMAC-SHA256 of `domain`, a zero byte and `input`, truncated to 128 bits.
    fn digest(&self, domain: &[u8], input: &[u8]) -> Digest {
        let mut mac = self.digest.clone();
        mac.update(domain);
        mac.update(&[0]);
        mac.update(input);
        let full = mac.finalize().into_bytes();
        let mut truncated = [0u8; 16];
        truncated.copy_from_slice(&full[..16]);
        truncated
    }
}

/// What a sealed value is bound to: the format, the map and the entry.
fn associated_data(map: &str, digest: &Digest) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + map.len() + digest.len());
    aad.extend_from_slice(b"bonenfant store v1\0");
    aad.extend_from_slice(map.as_bytes());
    aad.push(0);
    aad.extend_from_slice(digest);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: u8) -> StoreKeys {
        StoreKeys::new([[secret; 32]]).unwrap()
    }

    #[test]
    fn refuses_short_keys_and_an_empty_list() {
        assert!(matches!(
            StoreKeys::new([[0u8; 31]]),
            Err(StoreKeyError::TooShort {
                number: 1,
                bytes: 31
            })
        ));
        assert!(matches!(
            StoreKeys::new([vec![1u8; 32], vec![2u8; 8]]),
            Err(StoreKeyError::TooShort { number: 2, .. })
        ));
        assert!(matches!(
            StoreKeys::new(Vec::<Vec<u8>>::new()),
            Err(StoreKeyError::Empty)
        ));
    }

    #[test]
    fn debug_hides_the_keys() {
        let text = format!("{:?}", StoreKeys::new([[0x41u8; 32]]).unwrap());
        assert_eq!(text, "StoreKeys(<1 masked>)");
    }

    #[test]
    fn digests_are_keyed_and_domain_separated() {
        let (a, b) = (keys(1), keys(2));
        assert_ne!(a.digest(b"t", b"ST-1"), b.digest(b"t", b"ST-1"));
        assert_ne!(a.digest(b"t", b"ST-1"), a.digest(b"s", b"ST-1"));
        assert_eq!(a.digest(b"t", b"ST-1"), a.digest(b"t", b"ST-1"));
    }

    #[test]
    fn a_value_opens_only_for_its_map_and_entry() {
        let keys = keys(1);
        let (d1, d2) = (keys.digest(b"t", b"1"), keys.digest(b"t", b"2"));
        let sealed = keys.seal("stash", &d1, b"secret").unwrap();
        assert_eq!(
            keys.open("stash", &d1, &sealed).as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(keys.open("stash", &d2, &sealed), None);
        assert_eq!(keys.open("tickets", &d1, &sealed), None);
        assert_eq!(keys.open("stash", &d1, b"{\"v\":1}"), None);
        assert_eq!(keys.open("stash", &d1, b""), None);
    }

    #[test]
    fn sealing_twice_gives_different_bytes() {
        let keys = keys(1);
        let d = keys.digest(b"t", b"1");
        assert_ne!(
            keys.seal("stash", &d, b"x").unwrap(),
            keys.seal("stash", &d, b"x").unwrap()
        );
    }

    #[test]
    fn equality_compares_fingerprints_in_order() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(
            StoreKeys::new([a, b]).unwrap(),
            StoreKeys::new([a, b]).unwrap()
        );
        assert_ne!(
            StoreKeys::new([a, b]).unwrap(),
            StoreKeys::new([b, a]).unwrap()
        );
        assert_ne!(StoreKeys::random(), StoreKeys::random());
    }

    #[test]
    fn values_sealed_under_the_old_key_open_while_it_is_second_in_the_list() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let before = StoreKeys::new([old]).unwrap();
        let during = StoreKeys::new([new, old]).unwrap();
        let after = StoreKeys::new([new]).unwrap();
        // The entry's digest under the old key is where the rotating store looks too.
        let d_old = before.digest(b"t", b"ST-1");
        assert_eq!(during.digests(b"t", b"ST-1")[1], d_old);
        let sealed = before.seal("stash", &d_old, b"plain").unwrap();
        assert_eq!(
            during.open("stash", &d_old, &sealed).as_deref(),
            Some(&b"plain"[..])
        );
        assert_eq!(after.open("stash", &d_old, &sealed), None);
        // New values are sealed under the new key, which the old list cannot open.
        let d_new = during.digest(b"t", b"ST-1");
        assert_eq!(d_new, after.digest(b"t", b"ST-1"));
        let resealed = during.seal("stash", &d_new, b"plain").unwrap();
        assert_eq!(before.open("stash", &d_new, &resealed), None);
        assert!(after.open("stash", &d_new, &resealed).is_some());
    }

    proptest::proptest! {
        #[test]
        fn seal_then_open_gives_the_value_back(
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let keys = keys(7);
            let digest = keys.digest(b"t", &input);
            let sealed = keys.seal("sessions", &digest, &plain).unwrap();
            proptest::prop_assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
            proptest::prop_assert_eq!(keys.open("sessions", &digest, &sealed), Some(plain));
        }

        #[test]
        fn any_bit_flip_fails_to_open(
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            bit in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let keys = keys(7);
            let digest = keys.digest(b"t", b"ST-1");
            let mut sealed = keys.seal("stash", &digest, &plain).unwrap();
            let bit = bit.index(sealed.len() * 8);
            sealed[bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert_eq!(keys.open("stash", &digest, &sealed), None);
        }

        #[test]
        fn any_truncation_or_extension_fails_to_open(
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..8),
        ) {
            let keys = keys(7);
            let digest = keys.digest(b"t", b"ST-1");
            let sealed = keys.seal("stash", &digest, &plain).unwrap();
            let truncated = &sealed[..cut.index(sealed.len())];
            proptest::prop_assert_eq!(keys.open("stash", &digest, truncated), None);
            let mut extended = sealed.clone();
            extended.extend_from_slice(&extra);
            proptest::prop_assert_eq!(keys.open("stash", &digest, &extended), None);
        }

        #[test]
        fn arbitrary_bytes_never_open_and_never_panic(
            value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let keys = keys(7);
            let digest = keys.digest(b"t", b"ST-1");
            proptest::prop_assert_eq!(keys.open("stash", &digest, &value), None);
        }
    }
}
