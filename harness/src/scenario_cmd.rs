//! `scimlab scenario`: loads scenario files (every one first, so a bad file fails before any
//! server starts), runs each in its dialects on fresh embedded servers (or on remote ones from
//! `--targets`), writes report.json.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use harness::scenario::{self, model::Dialect};

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenario files (default: every scenarios/*.yaml).
    pub files: Vec<PathBuf>,
    /// Where the policy files the scenarios name are.
    #[arg(long, default_value = "scenarios/policies")]
    pub policies: PathBuf,
    /// Only this dialect (default: the dialects each scenario lists).
    #[arg(long, value_enum)]
    pub dialect: Option<Dialect>,
    /// Where report.json, junit.xml and summary.md go (default: reports/scenario-<UTC timestamp>).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Run against servers already running (a TOML file: `dialect`, `[idp]`, `[space]`,
    /// `[teamcity]` with `url` and `token`) instead of fresh embedded ones.
    #[arg(long)]
    pub targets: Option<PathBuf>,
    /// How --targets are reached over HTTPS.
    #[command(flatten)]
    pub tls: harness::client::TlsFlags,
}

pub async fn run(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    let files = if args.files.is_empty() {
        scenario::files_in(std::path::Path::new("scenarios")).context("cannot list scenarios/")?
    } else {
        args.files.clone()
    };
    let loaded = scenario::load_all(&files)?;
    let remote = match &args.targets {
        Some(path) => Some(scenario::run::Remote::load(path)?.with_tls(args.tls.client_tls()?)),
        None => None,
    };
    if remote.as_ref().is_some_and(|r| r.tls.insecure) {
        eprintln!("warning: {}", harness::client::INSECURE_NOTICE);
    }
    let runs = scenario::run_all(&loaded, &args.policies, args.dialect, remote.as_ref()).await?;
    let dir = args
        .report
        .clone()
        .unwrap_or_else(|| crate::default_report_dir("scenario"));
    scenario::write(&runs, &dir)
        .with_context(|| format!("cannot write the report to {}", dir.display()))?;
    print!("{}", scenario::to_terminal(&runs));
    println!("report: {}", dir.display());
    Ok(if runs.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
