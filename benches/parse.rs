//! Parse + pupil key of a ~2.4 KB OSE-like `serviceValidate` answer, against a bare
//! quick-xml tokenisation loop over the same bytes (target ≤ 2×: `docs/performance.md`).
//!
//! `cargo bench --bench parse` runs both under criterion, then times both again with
//! a plain interleaved loop and prints the ratio (recorded in `docs/performance.md`).
#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::hint::black_box;
use std::time::{Duration, Instant};

use bonenfant::cas::{parse_response, Outcome, ParseOptions, ResponseFormat};
use bonenfant::pupil::{designations, ExtractionRules};
use criterion::{criterion_group, Criterion, Throughput};
use quick_xml::events::Event;
use quick_xml::Reader;

// The allocator `bonenfant serve` runs with (src/main.rs): the parse allocates its
// assertion, and is measured as the proxy runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ANSWER: &[u8] = include_bytes!("../tests/fixtures/cas/xml/ose-parent.xml");

/// The work the proxy does per validation: strict parse, then the pupil key.
fn parse_and_designate(body: &[u8], options: &ParseOptions<'_>, rules: &ExtractionRules) -> usize {
    match parse_response(ResponseFormat::Xml, body, options) {
        Ok(Outcome::Success(assertion)) => designations(&assertion, rules, None).0.len(),
        _ => usize::MAX,
    }
}

/// The floor: every event of the document, nothing checked, nothing kept.
fn tokenise(body: &[u8]) -> usize {
    let mut reader = Reader::from_reader(body);
    let mut events = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return events,
            Ok(event) => {
                black_box(&event);
                events += 1;
            }
        }
    }
}

fn criterion_benches(c: &mut Criterion) {
    let options = ParseOptions::default();
    let rules = ExtractionRules::default();
    assert_eq!(
        parse_and_designate(ANSWER, &options, &rules),
        1,
        "fixture must designate one pupil"
    );
    let mut group = c.benchmark_group("serviceValidate_2k");
    group.throughput(Throughput::Bytes(ANSWER.len() as u64));
    group.bench_function("parse_and_designate", |b| {
        b.iter(|| parse_and_designate(black_box(ANSWER), &options, &rules))
    });
    group.bench_function("quick_xml_tokenise", |b| {
        b.iter(|| tokenise(black_box(ANSWER)))
    });
    group.finish();
}

criterion_group!(benches, criterion_benches);

/// Fastest of `rounds` timings of `iterations` calls, in nanoseconds per call: on a
/// shared machine noise only ever adds time, so the minimum is the steadiest figure.
fn min_ns(rounds: usize, iterations: u32, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[0].as_nanos() as f64 / f64::from(iterations)
}

fn main() {
    // `BONENFANT_BENCH_LOOP=parse|tokenise perf stat -e instructions:u target/release/deps/parse-…`
    // runs one side alone: instruction counts compare without the machine's noise.
    if let Ok(side) = std::env::var("BONENFANT_BENCH_LOOP") {
        let options = ParseOptions::default();
        let rules = ExtractionRules::default();
        for _ in 0..100_000 {
            match side.as_str() {
                "parse" => black_box(parse_and_designate(black_box(ANSWER), &options, &rules)),
                _ => black_box(tokenise(black_box(ANSWER))),
            };
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();

    let options = ParseOptions::default();
    let rules = ExtractionRules::default();
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    // Interleaved so both see the same machine noise.
    for _ in 0..15 {
        ours.push(min_ns(5, 2_000, || {
            black_box(parse_and_designate(black_box(ANSWER), &options, &rules));
        }));
        floor.push(min_ns(5, 2_000, || {
            black_box(tokenise(black_box(ANSWER)));
        }));
    }
    let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (ours, floor) = (fastest(&ours), fastest(&floor));
    println!(
        "parse+designate {:.0} ns, quick-xml tokenise {:.0} ns, ratio {:.2}x ({} bytes)",
        ours,
        floor,
        ours / floor,
        ANSWER.len()
    );
}
