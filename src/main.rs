//! The `bonenfant` command line. Thin on purpose: it turns flags into the library's
//! types and calls the library; errors are reported here, with `anyhow`, and nowhere
//! else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use bonenfant::config::{Config, RawConfig};
use bonenfant::sim;

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
    /// Run the simulators.
    Sim {
        #[command(subcommand)]
        simulator: SimCommand,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// A test ENT (OSE-like CAS facade) over an AAF-shaped directory.
    Ent {
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Directory file (TOML or JSON); a generated one if absent.
        #[arg(long)]
        directory: Option<PathBuf>,
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
        directory: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "serviceValidate")]
        validation: sim::ValidationMode,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generate a directory and write it (TOML or JSON by extension).
    Directory {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 200)]
        families: usize,
        #[arg(long, default_value_t = 6)]
        establishments: usize,
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
            print!("{}", config.effective_toml());
            Ok(())
        }
        Command::Serve { config, flags } => {
            let _config = Config::load(flags, config.as_deref())?;
            anyhow::bail!("serve: the proxy is being wired (issue 3)")
        }
        Command::Sim { simulator } => runtime()?.block_on(run_sim(simulator)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn directory(path: Option<&std::path::Path>, seed: u64) -> anyhow::Result<Arc<sim::Directory>> {
    Ok(Arc::new(match path {
        Some(path) => sim::Directory::load(path)?,
        None => sim::Directory::generate(&sim::DirectoryParams::default(), seed),
    }))
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
            sim::serve_ent(
                listener,
                directory(file.as_deref(), seed)?,
                options,
                ctrl_c(),
            )
            .await?;
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
            sim::serve_pronote(
                listener,
                directory(file.as_deref(), seed)?,
                options,
                ctrl_c(),
            )
            .await?;
            Ok(())
        }
        SimCommand::Directory {
            out,
            families,
            establishments,
            seed,
        } => {
            let params = sim::DirectoryParams {
                families,
                establishments,
                ..sim::DirectoryParams::default()
            };
            sim::Directory::generate(&params, seed).save(&out)?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
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
