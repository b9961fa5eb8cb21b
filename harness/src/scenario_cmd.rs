//! `scimlab scenario`: loads scenario files (every one first, so a bad file fails before any
//! server starts), runs each in its dialects on fresh embedded servers (or on remote ones from
//! `--targets`; scenarios `for: scim` against the `--scim` endpoints), writes report.json.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use harness::scenario::{self, model::Dialect};
use std::ops::Not;

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
    /// Run the scenarios written `for: scim` against this SCIM endpoint (repeatable;
    /// NAME=URL names it in reports): mock-idp runs here and pushes to it in --dialect.
    /// Everything the run makes carries its tag and is deleted at the end.
    #[arg(long = "scim", conflicts_with = "targets")]
    pub scim: Vec<harness::scim_target::ScimSpec>,
    /// With --scim: leave what the run made on the endpoint.
    #[arg(long, requires = "scim")]
    pub keep: bool,
    /// With --scim: at most this many requests reach each endpoint; later pushes are refused
    /// before it, and the run fails.
    #[arg(long, requires = "scim")]
    pub max_requests: Option<u64>,
    /// With --scim: at most this many requests per second reach each endpoint.
    #[arg(long, requires = "scim")]
    pub max_rate: Option<f64>,
    /// How --scim endpoints are authenticated (the IdP pushes with these credentials).
    #[command(flatten)]
    pub auth: harness::client::AuthFlags,
    /// How --targets and --scim are reached over HTTPS.
    #[command(flatten)]
    pub tls: harness::client::TlsFlags,
}

pub async fn run(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    if args.max_rate.is_some_and(|r| !(r > 0.0 && r <= 100_000.0)) {
        anyhow::bail!("--max-rate must be in (0, 100000]");
    }
    let files = if args.files.is_empty() {
        scenario::files_in(std::path::Path::new("scenarios")).context("cannot list scenarios/")?
    } else {
        args.files.clone()
    };
    let mut loaded = scenario::load_all(&files)?;
    let scim = args
        .scim
        .is_empty()
        .not()
        .then_some(scenario::model::Written::Scim);
    if let Some(written) = scim {
        if let Some((file, _)) = loaded
            .iter()
            .find(|(_, s)| s.written_for != written && !args.files.is_empty())
        {
            anyhow::bail!(
                "{} is written for scimlab's mocks, not `for: scim`: it cannot run against --scim",
                file.display()
            );
        }
        loaded.retain(|(_, s)| s.written_for == written);
        if loaded.is_empty() {
            anyhow::bail!("no scenario is written `for: scim`");
        }
    }
    let remote = match &args.targets {
        Some(path) => Some(scenario::run::Remote::load(path)?.with_tls(args.tls.client_tls()?)),
        None => None,
    };
    if remote.as_ref().is_some_and(|r| r.tls.insecure) {
        eprintln!("warning: {}", harness::client::INSECURE_NOTICE);
    }
    let scim_targets = scenario::scim_run::ScimTargets {
        specs: args.scim.clone(),
        auth: match args.scim.is_empty() {
            true => None,
            false => Some(args.auth.endpoint_auth(&args.tls.client_tls()?)?),
        },
        tls: args.tls.client_tls()?,
        keep: args.keep,
        caps: harness::wiretap::Caps {
            max_rate: args.max_rate,
            max_requests: args.max_requests,
        },
    };
    let runs = scenario::run_all(
        &loaded,
        &args.policies,
        args.dialect,
        remote.as_ref(),
        &scim_targets,
    )
    .await?;
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
