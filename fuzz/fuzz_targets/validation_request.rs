//! `cargo +nightly fuzz run validation_request` — properties in `bonenfant::cas::fuzzing::validation_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bonenfant::cas::fuzzing::validation_request(data);
});
