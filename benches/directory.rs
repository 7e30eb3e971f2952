//! Loading a whole département's AAF exports (`--directory`, and every SIGHUP reload):
//! load time and the index's memory. Figures go to `docs/performance.md`.
//!
//! The set is generated first (`DirectoryParams::departement()`: 113 collèges, about
//! 65,000 pupils and 120,000 parent records, written as the académie writes them), or
//! read from `BONENFANT_AAF_DIR` when set (a real export, or one kept from a previous
//! run). Each measurement runs in a fresh child process, so that the resident-set
//! growth is the load's alone, not memory the generator freed and the allocator kept.
//!
//! `cargo bench --bench directory`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark prints its figures

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bonenfant::pupil::directory::{self, Directory};
use bonenfant::sim::{write_aaf, AafOptions, DirectoryParams, Synthetic as _};

/// Loads timed in the child (the first also measures memory).
const RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--measure") {
        let folder = PathBuf::from(&args[at + 1]);
        measure(&folder);
        return;
    }
    let (folder, _keep) = match std::env::var_os("BONENFANT_AAF_DIR") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let started = Instant::now();
            let generated = Directory::generate(&DirectoryParams::departement(), 1);
            let files = write_aaf(&generated, dir.path(), &AafOptions::default())
                .expect("writing the AAF files");
            println!(
                "generated {} files ({} establishments, {} pupils, {} parents) in {:.1} s",
                files.len(),
                generated.establishments().len(),
                generated.pupils().len(),
                generated.parents().len(),
                started.elapsed().as_secs_f64()
            );
            (dir.path().to_owned(), Some(dir))
        }
    };
    println!("export: {:.0} MiB of XML", mib(folder_bytes(&folder)));
    let exe = std::env::current_exe().expect("this bench");
    let status = Command::new(exe)
        .arg("--measure")
        .arg(&folder)
        .status()
        .expect("measuring in a child process");
    assert!(status.success());
}

/// In the fresh child: load `RUNS` times; resident memory before, after the first load
/// (index kept, temporaries freed), and at its peak; the index's own estimate.
fn measure(folder: &Path) {
    let paths = [folder.to_owned()];
    let before = status_kib("VmRSS");
    let mut times = Vec::new();
    let mut kept = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let (index, report) = directory::load_index(&paths).expect("the export loads");
        times.push(started.elapsed().as_secs_f64());
        if kept.is_none() {
            let after = status_kib("VmRSS");
            let peak = status_kib("VmHWM");
            println!("{}", report.summary());
            println!(
                "index: {} pupils, {} principals; estimate {:.1} MiB",
                index.pupil_count(),
                index.principal_count(),
                mib(index.heap_bytes() as u64)
            );
            println!(
                "resident memory: {:.1} MiB before, {:.1} MiB with the index (+{:.1} MiB), peak while loading {:.1} MiB",
                before / 1024.0,
                after / 1024.0,
                (after - before) / 1024.0,
                peak / 1024.0
            );
            kept = Some(index);
        }
    }
    // A reload holds the old index while it builds the new one.
    println!(
        "peak with a reload beside the kept index: {:.1} MiB",
        status_kib("VmHWM") / 1024.0
    );
    times.sort_by(f64::total_cmp);
    println!(
        "load time over {RUNS} runs: min {:.2} s, median {:.2} s, max {:.2} s",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

fn folder_bytes(folder: &Path) -> u64 {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
