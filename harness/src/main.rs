//! `scimlab`: the command line of scimlab.

mod ci;
mod conformance_cmd;
mod load_cmd;
mod scenario_cmd;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Said by `--help` of scimlab and of each command that judges a server.
const EXIT_CODES: &str = "Exit codes: 0 pass; 1 findings (a failed check, scenario or load goal); \
    2 could not run or test (bad usage, a server that cannot be reached, a TLS or credential \
    refusal, or a run too incomplete to judge).";

#[derive(Debug, Parser)]
#[command(
    name = "scimlab",
    version,
    about = "Tests identity provisioning the way it really runs",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the servers on loopback and print their URLs and tokens.
    Up(serve::UpArgs),
    /// RFC 7643/7644 conformance suite against any SCIM base URL.
    #[command(after_help = EXIT_CODES)]
    Conformance(conformance_cmd::ConformanceArgs),
    /// Run joiner / mover / leaver scenario files.
    #[command(after_help = EXIT_CODES)]
    Scenario(scenario_cmd::ScenarioArgs),
    /// Sync latency and throughput under load, with fault phases (--shard i/n).
    #[command(after_help = EXIT_CODES)]
    Load(Box<load_cmd::LoadArgs>),
    /// Render or merge load reports.
    Report(load_cmd::ReportArgs),
    /// The main job: everything that exists, on the embedded default, one exit code.
    Ci(ci::CiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SCIMLAB_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scimlab: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up(args) => runtime.block_on(serve::up(args)),
        Command::Ci(args) => runtime.block_on(ci::run(args)),
        Command::Conformance(args) => runtime.block_on(conformance_cmd::run(args)),
        Command::Scenario(args) => runtime.block_on(scenario_cmd::run(args)),
        Command::Load(args) => runtime.block_on(load_cmd::run(*args)),
        Command::Report(args) => load_cmd::report(args),
    };
    match result {
        Ok(code) => code,
        // Exit codes: 0 pass, 1 findings, 2 could not run (usage, set-up, an unreachable server).
        Err(e) => {
            eprintln!("scimlab: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Where servers keep their data unless told otherwise.
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// Where a command writes its report unless told otherwise: `reports/<command>-<UTC time>`.
fn default_report_dir(command: &str) -> PathBuf {
    PathBuf::from("reports").join(format!(
        "{command}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ))
}
