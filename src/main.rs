//! The `bonenfant` command line. Thin on purpose: it turns flags into the library's
//! types and calls the library; errors are reported here, with `anyhow`, and nowhere
//! else.
// The command line is where output belongs: the library never prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use bonenfant::config::{Config, RawConfig};
use bonenfant::events::{self, TraceLog};
use bonenfant::pupil::aaf::LoadReport;
use bonenfant::pupil::directory::{self, Directory, DirectoryError};
use bonenfant::sim::{self, Synthetic as _};

// mimalloc: about 5 % fewer instructions per proxied request than glibc's allocator, and
// no more resident memory per session (docs/performance.md, third round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "bonenfant",
    version,
    about = "Detects, logs and pins wrong-child sessions between an ENT's CAS and Pronote"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy in front of an ENT's CAS.
    Serve {
        /// TOML file; every flag below is also a key of it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        flags: RawConfig,
    },
    /// Validate a configuration file and print the effective configuration, secrets masked.
    CheckConfig {
        file: PathBuf,
        #[command(flatten)]
        flags: RawConfig,
    },
    /// The wrong-child bug and its cure on loopback: a test ENT picking children at
    /// random, a test Pronote, bonenfant between them, and scripted parent logins.
    Demo {
        /// Parent logins per run.
        #[arg(long, default_value_t = 300)]
        logins: usize,
        /// Families in the generated directory.
        #[arg(long, default_value_t = 150)]
        families: usize,
        /// Parents logging in at the same time.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Where the trace log goes (default: a `bonenfant-demo` folder in the temp dir).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Keep everything running and print the URLs to open in a browser.
        #[arg(long)]
        serve: bool,
        /// Run on these directory files (AAF exports: folders or files; or one TOML/JSON
        /// directory) instead of a generated directory.
        #[arg(long, value_name = "PATH")]
        directory: Vec<PathBuf>,
    },
    /// Summarise trace logs: figures per run, establishment, day and hour of day.
    Report {
        /// Trace logs (JSON lines), e.g. one per instance or per rotated file; `-` for
        /// standard input. Each file's runs start at its `startup` events.
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        #[command(flatten)]
        output: Output,
        /// Only events from this day (`2026-03-09`, midnight on the `--tz` clock) or
        /// instant (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this day or instant.
        #[arg(long)]
        until: Option<String>,
        /// The clock of days and hours of day: `Europe/Paris`, `UTC` or an offset
        /// (`+04:00`).
        #[arg(long, default_value = "Europe/Paris")]
        tz: bonenfant::report::Zone,
        /// The directory, as `serve --directory` reads it (AAF exports: a folder or a
        /// file; or a TOML/JSON directory): names establishments besides their UAIs.
        #[arg(long, value_name = "PATH")]
        directory: Option<PathBuf>,
    },
    /// One family's timeline for the helpdesk: each login, its tickets counted, the
    /// verdicts, the re-logins, the chooser and what the parent saw, across days and
    /// instances. Run it on the DSI's machine only (docs/helpdesk.md).
    Lookup {
        /// The key the instances pseudonymise with (their --pseudonym-key-file).
        #[arg(long, value_name = "FILE")]
        pseudonym_key_file: PathBuf,
        /// The parent's ENT login, as the ENT asserts it (`cas:user`).
        #[arg(long)]
        login: String,
        /// Trace logs of every instance and day to search (read twice: files only).
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        #[command(flatten)]
        output: Output,
        /// The clock of the times shown.
        #[arg(long, default_value = "Europe/Paris")]
        tz: bonenfant::report::Zone,
        /// The directory, as `serve --directory` reads it: names the family's children
        /// and establishments.
        #[arg(long, value_name = "PATH")]
        directory: Option<PathBuf>,
    },
    /// Make the key files of a deployment, mode 0600, in DIR (created 0700 if absent):
    /// cookie.key (--cookie-key-file), pseudonym.key (--pseudonym-key-file) and
    /// store.key (--store-key-file). Refuses to overwrite any of them.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run the simulators.
    Sim {
        #[command(subcommand)]
        simulator: SimCommand,
    },
    /// The académie's directory exports.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Load AAF exports (folders or files) or a TOML/JSON directory as `serve --directory`
    /// would, and print the establishments, pupils and parent records found, how many
    /// parents have children in several establishments, and every problem by kind.
    /// Exits 0 when the set loaded, even with skipped entries; non-zero when nothing
    /// usable was found.
    Check {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// Where and how `report` and `lookup` write.
#[derive(clap::Args)]
struct Output {
    #[arg(long, value_enum, default_value = "text")]
    format: bonenfant::report::Format,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Output {
    /// The file `--out` names, created, or standard output.
    fn open(&self) -> anyhow::Result<Box<dyn std::io::Write>> {
        Ok(match &self.out {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            )),
            None => Box::new(std::io::stdout().lock()),
        })
    }
}

#[derive(Subcommand)]
enum SimCommand {
    /// A test ENT (OSE-like CAS facade) over an AAF-shaped directory.
    Ent {
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Directory (AAF exports, or one TOML/JSON file); a generated one if absent.
        #[arg(long)]
        directory: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "random")]
        pick: sim::Pick,
        #[arg(long, value_enum, default_value = "ose")]
        dialect: sim::Dialect,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A test Pronote, one instance per establishment of the directory.
    Pronote {
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// CAS base URL the browser and the back channel use (the ENT or bonenfant).
        #[arg(long)]
        cas: url::Url,
        #[arg(long)]
        directory: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "serviceValidate")]
        validation: sim::ValidationMode,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generate a directory and write it: TOML or JSON by the file's extension, else
    /// a folder of AAF XML exports (one set per establishment, ISO-8859-15).
    Directory {
        #[arg(long)]
        out: PathBuf,
        /// Families (default 200; 54,000 with --departement).
        #[arg(long)]
        families: Option<usize>,
        /// Establishments (default 6; 113 with --departement).
        #[arg(long)]
        establishments: Option<usize>,
        /// A Gironde-sized département: ≈ 65,000 pupils, ≈ 120,000 parent records.
        #[arg(long)]
        departement: bool,
        /// AAF records without ENTPersonLogin (each record stands alone).
        #[arg(long)]
        no_logins: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bonenfant: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { file, flags } => {
            let config = Config::load(flags, Some(&file))?;
            let toml = config
                .effective_toml()
                .context("printing the resolved configuration")?;
            print!("{toml}");
            for warning in bonenfant::proxy::announce::startup_warnings(&config) {
                eprintln!("bonenfant: warning: {warning}");
            }
            Ok(())
        }
        Command::Serve { config, flags } => {
            let config = Config::load(flags, config.as_deref())?;
            let (trace, _guard) = install_tracing(
                config.trace_log.as_deref(),
                &config.secrets.pseudonym_key,
                true,
            )?;
            if !config.secrets.from_files {
                tracing::warn!(
                    "no key files configured: pseudonyms and session cookies use random keys for this run only \
                     (make them once with `bonenfant keygen --out DIR`, then give --pseudonym-key-file and --cookie-key-file)"
                );
                if config.store != "memory" {
                    tracing::warn!(
                        "instances sharing a Redis store must share --store-key-file, --cookie-key-file and --pseudonym-key-file"
                    );
                }
            }
            if let Some(report) = &config.directory_report {
                log_directory("directory loaded", report);
            }
            raise_open_file_limit(config.limits.max_connections);
            runtime()?.block_on(async move {
                let workers =
                    std::thread::available_parallelism().unwrap_or(std::num::NonZeroUsize::MIN);
                if let Some(paths) = config.raw.directory.clone() {
                    reload_on_hangup(config.directory_index.clone(), paths)?;
                }
                bonenfant::proxy::exchange::serve(Arc::new(config), trace, workers, ctrl_c())
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            Ok(())
        }
        Command::Directory {
            command: DirectoryCommand::Check { paths },
        } => directory_check(&paths),
        Command::Demo {
            logins,
            families,
            concurrency,
            seed,
            out_dir,
            serve,
            directory,
        } => {
            let options = bonenfant::demo::DemoOptions {
                logins,
                families,
                concurrency: usize::from(concurrency),
                seed,
                directory: (!directory.is_empty()).then_some(directory),
                out_dir: out_dir.unwrap_or_else(|| bonenfant::demo::DemoOptions::default().out_dir),
                ..bonenfant::demo::DemoOptions::default()
            };
            std::fs::create_dir_all(&options.out_dir)
                .with_context(|| format!("creating {}", options.out_dir.display()))?;
            let trace_path = options.out_dir.join("trace.jsonl");
            let _ = std::fs::remove_file(&trace_path);
            let (trace, guard) =
                install_tracing(Some(&trace_path), &rand::random::<[u8; 32]>(), false)?;
            let mut stdout = std::io::stdout();
            if serve {
                runtime()?.block_on(bonenfant::demo::serve(
                    &options,
                    trace,
                    &mut stdout,
                    ctrl_c(),
                ))?;
                return Ok(());
            }
            let report = runtime()?.block_on(bonenfant::demo::run(&options, trace, &mut stdout))?;
            drop(guard);
            let html = options.out_dir.join("report.html");
            let input = std::io::BufReader::new(std::fs::File::open(&trace_path)?);
            let names = bonenfant::report::Options {
                names: report.establishments.clone(),
                ..Default::default()
            };
            let mut summary = bonenfant::report::Summary::new(&names);
            summary.read(&trace_path.display().to_string(), input)?;
            let output = std::io::BufWriter::new(std::fs::File::create(&html)?);
            bonenfant::report::write(&summary.finish(), bonenfant::report::Format::Html, output)?;
            println!("HTML report: {}", html.display());
            if report.pinning.wrong > 0 || report.unverified_landings > 0 {
                anyhow::bail!(
                    "pinning left {} wrong-child landings and {} landings the ENT did not assert",
                    report.pinning.wrong,
                    report.unverified_landings
                );
            }
            Ok(())
        }
        Command::Report {
            traces,
            output,
            since,
            until,
            tz,
            directory,
        } => {
            let bound = |text: Option<String>, flag: &str| {
                text.map(|text| tz.parse_bound(&text))
                    .transpose()
                    .with_context(|| format!("--{flag}"))
            };
            let options = bonenfant::report::Options {
                since: bound(since, "since")?,
                until: bound(until, "until")?,
                zone: tz,
                names: match &directory {
                    Some(path) => establishment_names(path)?,
                    None => Default::default(),
                },
            };
            let mut summary = bonenfant::report::Summary::new(&options);
            for trace in &traces {
                let name = trace.display().to_string();
                if trace.as_os_str() == "-" {
                    summary.read(&name, std::io::stdin().lock())?;
                } else {
                    let file = std::fs::File::open(trace)
                        .with_context(|| format!("opening {}", trace.display()))?;
                    summary.read(&name, std::io::BufReader::new(file))?;
                }
            }
            let report = summary.finish();
            bonenfant::report::write(&report, output.format, output.open()?)?;
            if report.bad_lines.count > 0 {
                eprintln!(
                    "bonenfant report: {} line(s) ignored (see the report's last section)",
                    report.bad_lines.count
                );
            }
            Ok(())
        }
        Command::Lookup {
            pseudonym_key_file,
            login,
            traces,
            output,
            tz,
            directory,
        } => {
            use bonenfant::report::lookup;
            let key = std::fs::read(&pseudonym_key_file)
                .with_context(|| format!("reading {}", pseudonym_key_file.display()))?;
            let pseudonyms =
                events::Pseudonymizer::new(key.trim_ascii()).context("pseudonym-key-file")?;
            let mut family = lookup::Family {
                principal: pseudonyms.principal(&login).as_str().to_owned(),
                login,
                ..Default::default()
            };
            if let Some(path) = &directory {
                family.names = establishment_names(path)?;
                family.children = children_labels(path, &family.login, &pseudonyms)?;
            }
            let open = |trace: &PathBuf| {
                std::fs::File::open(trace)
                    .map(std::io::BufReader::new)
                    .with_context(|| format!("opening {}", trace.display()))
            };
            let mut search = lookup::Lookup::new(&family, tz);
            for trace in &traces {
                search.scan(open(trace)?)?;
            }
            for trace in &traces {
                search.collect(&trace.display().to_string(), open(trace)?)?;
            }
            lookup::write(&search.finish(), output.format, output.open()?)?;
            Ok(())
        }
        Command::Keygen { out } => {
            for (path, flag) in keygen(&out)? {
                println!("wrote {} (for {flag})", path.display());
            }
            println!(
                "Give every instance the same files; keep a copy apart from the trace logs: \
                 with the pseudonym key, a trace names families again (docs/helpdesk.md)."
            );
            Ok(())
        }
        Command::Sim { simulator } => runtime()?.block_on(run_sim(simulator)),
    }
}

/// One subscriber for the process: the trace log (JSON lines for the DSI) when asked,
/// the operational log on standard error (`RUST_LOG`, default `info`), which never
/// carries trace events, and for `serve` the watch that warns when the establishment
/// pattern recognises no service.
fn install_tracing(
    trace_log: Option<&std::path::Path>,
    pseudonym_key: &[u8],
    watch_establishments: bool,
) -> anyhow::Result<(TraceLog, Option<bonenfant::events::TraceGuard>)> {
    use tracing_subscriber::filter::{filter_fn, EnvFilter};
    use tracing_subscriber::prelude::*;
    let pseudonyms = events::Pseudonymizer::new(pseudonym_key).context("pseudonym-key-file")?;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter_fn(|m| !events::is_trace_event(m)))
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    let (trace_layer, losses, guard) = match trace_log {
        Some(path) => {
            let (writer, guard) = events::open_trace_file(path)?;
            let losses = writer.losses();
            (Some(events::layer(writer)), losses, Some(guard))
        }
        None => (None, events::LossCounter::default(), None),
    };
    let watch = watch_establishments.then(|| {
        std::sync::Arc::new(bonenfant::proxy::announce::EstablishmentWatch::default()).layer()
    });
    tracing_subscriber::registry()
        .with(trace_layer)
        .with(watch)
        .with(stderr)
        .try_init()
        .context("installing the log subscriber")?;
    Ok((TraceLog::new(pseudonyms, losses), guard))
}

/// The directory for `report` and `lookup`, read as `serve --directory` reads it (AAF
/// exports, a folder of them, or a TOML/JSON directory); `serve` reads it through
/// `Config`.
fn read_directory(path: &std::path::Path) -> anyhow::Result<Directory> {
    let (directory, _) = directory::load_directory(&[path.to_path_buf()])
        .with_context(|| format!("reading the directory {}", path.display()))?;
    Ok(directory)
}

/// UAI → establishment name, from a directory export.
fn establishment_names(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    Ok(read_directory(path)?
        .establishments()
        .iter()
        .map(|e| (e.uai.to_ascii_uppercase(), e.name.clone()))
        .collect())
}

/// Writes fresh random keys to `dir`: each file created new (never overwritten) with
/// mode 0600, in the format its flag reads. Checks every name first, so a refusal
/// leaves nothing half-written.
fn keygen(dir: &std::path::Path) -> anyhow::Result<Vec<(PathBuf, &'static str)>> {
    use std::io::Write as _;
    // 64 random bytes in hex: what the cookie key file requires, and at least the 32
    // bytes the store key needs.
    let hex_key =
        || hex::encode(rand::random::<[u8; 32]>()) + &hex::encode(rand::random::<[u8; 32]>());
    let files = [
        (
            "cookie.key",
            "--cookie-key-file",
            format!(
                "# bonenfant session-cookie keys: the first line seals, the lines below it still open.\n{}\n",
                hex_key()
            ),
        ),
        // The whole file is the key (trimmed): no comment line.
        (
            "pseudonym.key",
            "--pseudonym-key-file",
            format!("{}\n", hex::encode(rand::random::<[u8; 32]>())),
        ),
        (
            "store.key",
            "--store-key-file",
            format!(
                "# bonenfant store keys (Redis): the first line seals, the lines below it still open.\n{}\n",
                hex_key()
            ),
        ),
    ];
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    for (name, _, _) in &files {
        let path = dir.join(name);
        if path.exists() {
            anyhow::bail!(
                "{} exists: keygen never overwrites a key (running instances and old traces need it); \
                 choose another --out or move it away first",
                path.display()
            );
        }
    }
    let mut written = Vec::new();
    for (name, flag, text) in files {
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        written.push((path, flag));
    }
    Ok(written)
}

/// Pupil pseudonym → "first name (class, UAI)" for `login`'s children in a directory
/// export: the helpdesk talks of Léa, not of a pseudonym.
fn children_labels(
    path: &std::path::Path,
    login: &str,
    pseudonyms: &events::Pseudonymizer,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let directory = read_directory(path)?;
    let Some(parent) = directory.parent(login) else {
        return Ok(Default::default());
    };
    Ok(directory
        .children_of(parent)
        .filter_map(|pupil| {
            let key = bonenfant::pupil::PupilKey {
                uai: bonenfant::pupil::Uai::parse(&pupil.uai)?,
                eleve_id: pupil.eleve_id.clone(),
            };
            let label = format!("{} ({}, {})", pupil.first_name, pupil.class, pupil.uai);
            Some((pseudonyms.pupil(&key).as_str().to_owned(), label))
        })
        .collect())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn directory(paths: &[PathBuf], seed: u64) -> anyhow::Result<Arc<Directory>> {
    Ok(Arc::new(if paths.is_empty() {
        Directory::generate(&sim::DirectoryParams::default(), seed)
    } else {
        let (directory, report) = directory::load_directory(paths)?;
        eprintln!("directory: {}", report.summary());
        directory
    }))
}

/// The load's figures in the operational log, and each kind of problem once.
fn log_directory(what: &str, report: &LoadReport) {
    tracing::info!(
        establishments = report.establishments,
        pupils = report.pupils,
        parent_records = report.parent_records,
        problems = report.problem_count(),
        "{what}: {}",
        report.summary()
    );
    for (problem, found) in &report.problems {
        let first: Vec<String> = found.examples.iter().map(ToString::to_string).collect();
        tracing::warn!(
            kind = problem.as_str(),
            count = found.count,
            first = first.join("; "),
            "directory: {}",
            problem.describe()
        );
    }
}

/// The nightly exports arrive, the operator (or a timer) sends SIGHUP: the directory is
/// loaded again off the workers' threads and swapped in whole; requests in flight keep
/// the index they started with. A failed reload keeps the previous index and says why.
fn reload_on_hangup(
    index: bonenfant::pupil::SharedIndex,
    paths: Vec<PathBuf>,
) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let (index, paths) = (index.clone(), paths.clone());
                let started = std::time::Instant::now();
                let outcome =
                    tokio::task::spawn_blocking(move || directory::reload(&index, &paths)).await;
                match outcome {
                    Ok(Ok(report)) => log_directory(
                        &format!(
                            "directory reloaded in {:.1} s",
                            started.elapsed().as_secs_f64()
                        ),
                        &report,
                    ),
                    Ok(Err(error)) => {
                        tracing::error!(
                            code = error.code(),
                            "directory reload failed, the previous index stays: {error}"
                        );
                        if let DirectoryError::NothingUsable(report) = &error {
                            log_directory("directory reload found", report);
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "directory reload failed, the previous index stays")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (index, paths);
    Ok(())
}

/// `bonenfant directory check`: 0 when the set loaded (even with problems), non-zero
/// when nothing usable was found.
fn directory_check(paths: &[PathBuf]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    match directory::load_index(paths) {
        Ok((index, report)) => {
            print!("{report}");
            println!(
                "index: {} pupils, {} principals, about {:.1} MiB; loaded in {:.1} s",
                index.pupil_count(),
                index.principal_count(),
                index.heap_bytes() as f64 / (1024.0 * 1024.0),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(DirectoryError::NothingUsable(report)) => {
            print!("{report}");
            anyhow::bail!("nothing usable in {}", display_paths(paths))
        }
        Err(error) => Err(error).with_context(|| format!("loading {}", display_paths(paths))),
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

async fn run_sim(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Ent {
            listen,
            directory: file,
            pick,
            dialect,
            seed,
        } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let options = sim::EntOptions {
                pick,
                dialect,
                seed,
                ..sim::EntOptions::default()
            };
            eprintln!(
                "sim ENT: http://{}/cas/login (pick {pick:?}, dialect {dialect:?})",
                listener.local_addr()?
            );
            sim::serve_ent(listener, directory(&file, seed)?, options, ctrl_c()).await?;
            Ok(())
        }
        SimCommand::Pronote {
            listen,
            cas,
            directory: file,
            validation,
            seed,
        } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let options = sim::PronoteOptions {
                cas_base: cas,
                validation,
            };
            eprintln!(
                "sim Pronote: http://{}/<uai>/pronote/parent.html",
                listener.local_addr()?
            );
            sim::serve_pronote(listener, directory(&file, seed)?, options, ctrl_c()).await?;
            Ok(())
        }
        SimCommand::Directory {
            out,
            families,
            establishments,
            departement,
            no_logins,
            seed,
        } => {
            let base = if departement {
                sim::DirectoryParams::departement()
            } else {
                sim::DirectoryParams::default()
            };
            let params = sim::DirectoryParams {
                families: families.unwrap_or(base.families),
                establishments: establishments.unwrap_or(base.establishments),
                ..base
            };
            let generated = Directory::generate(&params, seed);
            match out.extension().and_then(|e| e.to_str()) {
                Some("toml" | "json") => generated.save(&out)?,
                _ => {
                    let options = sim::AafOptions {
                        logins: !no_logins,
                        ..sim::AafOptions::default()
                    };
                    let files = sim::write_aaf(&generated, &out, &options)
                        .with_context(|| format!("writing {}", out.display()))?;
                    eprintln!("{} AAF files", files.len());
                }
            }
            eprintln!(
                "wrote {}: {} establishments, {} pupils, {} parents",
                out.display(),
                generated.establishments().len(),
                generated.pupils().len(),
                generated.parents().len()
            );
            Ok(())
        }
    }
}

/// Raises the soft open-file limit to the hard one, as nginx's `worker_rlimit_nofile`
/// would: each proxied request holds two descriptors (browser and ENT sides), and the
/// usual soft limit of 1,024 would refuse parents long before `max-connections`.
fn raise_open_file_limit(max_connections: usize) {
    // A descriptor on the browser side and one on the ENT side per connection (the
    // listeners, the trace file, Redis and the admin server fit in what idle pools leave).
    let needed = (max_connections as u64).saturating_mul(2);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            needed,
            "the open-file limit is too low for max-connections: raise it (systemd LimitNOFILE) or lower max-connections"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn ctrl_c() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
