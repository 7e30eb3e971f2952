//! `cargo +nightly fuzz run saml11` — properties in `bonenfant::cas::fuzzing::saml11`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bonenfant::cas::fuzzing::saml11(data);
});
