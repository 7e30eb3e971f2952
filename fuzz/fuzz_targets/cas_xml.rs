//! `cargo +nightly fuzz run cas_xml` — properties in `bonenfant::cas::fuzzing::cas_xml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bonenfant::cas::fuzzing::cas_xml(data);
});
