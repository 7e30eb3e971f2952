//! `cargo +nightly fuzz run login_redirect` — properties in `bonenfant::cas::fuzzing::login_redirect`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bonenfant::cas::fuzzing::login_redirect(data);
});
