//! Replays the committed fuzz seed corpus (`fuzz/seeds/<target>/`) through the same
//! property functions the libFuzzer targets call, so stable `cargo test` covers it.

use bonenfant::cas::fuzzing;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = format!("{}/fuzz/seeds/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "seed {} broke {target}", path.display());
        count += 1;
    }
    assert!(count > 0, "no seeds in {dir}");
}

#[test]
fn cas_xml_seeds_hold() {
    replay("cas_xml", fuzzing::cas_xml);
}

#[test]
fn cas_json_seeds_hold() {
    replay("cas_json", fuzzing::cas_json);
}

#[test]
fn saml11_seeds_hold() {
    replay("saml11", fuzzing::saml11);
}

#[test]
fn validation_request_seeds_hold() {
    replay("validation_request", fuzzing::validation_request);
}

#[test]
fn login_redirect_seeds_hold() {
    replay("login_redirect", fuzzing::login_redirect);
}

/// Every seed of every parser target, also fed to the other parsers: a corpus is
/// cheap extra coverage for its neighbours.
#[test]
fn every_seed_through_every_parser() {
    let root = format!("{}/fuzz/seeds", env!("CARGO_MANIFEST_DIR"));
    let checks: [fn(&[u8]); 5] = [
        fuzzing::cas_xml,
        fuzzing::cas_json,
        fuzzing::saml11,
        fuzzing::validation_request,
        fuzzing::login_redirect,
    ];
    for dir in std::fs::read_dir(&root).unwrap() {
        for entry in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            for check in checks {
                check(&data);
            }
        }
    }
}

mod mutated {
    use super::fuzzing;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let root = format!("{}/fuzz/seeds", env!("CARGO_MANIFEST_DIR"));
        let mut all = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            for entry in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                all.push(std::fs::read(entry.unwrap().path()).unwrap());
            }
        }
        all.sort();
        all
    }

    /// A seed with a few bytes replaced, inserted or removed, or a splice of two.
    fn mutate(seeds: &[Vec<u8>], pick: usize, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut data = seeds[pick % seeds.len()].clone();
        for &(at, byte, op) in edits {
            let at = if data.is_empty() { 0 } else { at % data.len() };
            match op % 4 {
                0 if !data.is_empty() => data[at] = byte,
                1 => data.insert(at, byte),
                2 if !data.is_empty() => {
                    data.remove(at);
                }
                _ => {
                    let other = &seeds[(pick + at) % seeds.len()];
                    data.truncate(at);
                    data.extend_from_slice(&other[at.min(other.len())..]);
                }
            }
        }
        data
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fuzz properties hold on mutated seeds too (a short, stable-toolchain
        /// stand-in for a libFuzzer run).
        #[test]
        fn mutated_seeds_hold(pick in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
            let data = mutate(&seeds(), pick, &edits);
            fuzzing::cas_xml(&data);
            fuzzing::cas_json(&data);
            fuzzing::saml11(&data);
            fuzzing::validation_request(&data);
            fuzzing::login_redirect(&data);
        }
    }
}
