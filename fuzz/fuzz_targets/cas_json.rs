//! `cargo +nightly fuzz run cas_json` — properties in `bonenfant::cas::fuzzing::cas_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bonenfant::cas::fuzzing::cas_json(data);
});
