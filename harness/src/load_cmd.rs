//! `scimlab load` and `scimlab report`: the load run (on fresh embedded servers, or on servers
//! already running), and rendering or merging load reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use harness::load::{self, plan, report::LoadReport, LoadOptions, Phase};
use harness::scenario::model::{Dialect, TargetName};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Lifecycle events per second, all shards together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds over which the rate climbs from 0.
    #[arg(long, default_value_t = 0.0)]
    pub ramp: f64,
    /// People employed before the first event (hired and provisioned during set-up).
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// At most this many events.
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Relative weights of the event kinds.
    #[arg(long, default_value = "joiner=40,mover=40,leaver=20")]
    pub mix: plan::Mix,
    /// Faults on both targets for the whole run: 5xx=5%,429=2%,latency=20ms,drop=1%,kill=teamcity:2s.
    #[arg(long)]
    pub faults: Option<load::FaultSpec>,
    /// A fault phase from a time on (repeatable): 20s:5xx=5%,429=2% or 40s:none.
    #[arg(long = "phase")]
    pub phases: Vec<Phase>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run only this part of the user space: i/n.
    #[arg(long, default_value = "0/1")]
    pub shard: plan::Shard,
    #[arg(long, value_enum, default_value = "okta")]
    pub dialect: Dialect,
    /// Where space-idp.toml and teamcity-idp.toml are.
    #[arg(long, default_value = "scenarios/policies")]
    pub policies: PathBuf,
    /// Seconds to wait for the last events to be applied.
    #[arg(long, default_value_t = 60.0)]
    pub settle: f64,
    /// Fail the run when the p99 latency is over this many ms.
    #[arg(long)]
    pub max_p99_ms: Option<f64>,
    /// The servers flush to disk before they answer (default: sled's background flush).
    #[arg(long)]
    pub durable: bool,
    /// Switch a target's quirk on for the run (repeatable): space:membership-delete-ignored.
    #[arg(long = "quirk", value_parser = parse_quirk)]
    pub quirks: Vec<(TargetName, String)>,
    /// Servers already running, as for `scimlab scenario --targets` (its dialect replaces
    /// --dialect); nothing is started, and `kill` faults and quirks are refused.
    #[arg(long)]
    pub targets: Option<PathBuf>,
    /// Marks this run's people (`load-TAG-0000001@...`) so that runs on the same servers do
    /// not meet; shards of one run must share it [default with --targets: the start time].
    #[arg(long)]
    pub tag: Option<String>,
    /// Read each person with an open event from the targets' SCIM connectors every this many
    /// ms, instead of following the targets' audit streams (latency then has this resolution).
    #[arg(long)]
    pub poll_ms: Option<u64>,
    /// No progress line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Where the reports go (default: reports/load-<UTC timestamp>).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// How --targets are reached over HTTPS.
    #[command(flatten)]
    pub tls: harness::client::TlsFlags,
    /// Push the load to this SCIM endpoint ([NAME=]URL) instead of scimlab's mocks: mock-idp
    /// runs here and pushes in --dialect through a metering proxy; a read-only preflight
    /// comes first, everything the run makes carries its tag and is deleted at the end.
    /// Repeatable: every endpoint gets the same plan at the same time, each from an IdP of its
    /// own, with the same credentials, and a report of its own in REPORT/NAME.
    #[arg(long = "scim", conflicts_with_all = ["targets", "quirks", "phases", "faults", "durable"])]
    pub scim: Vec<harness::scim_target::ScimSpec>,
    /// With --scim: leave what the run made on the endpoint.
    #[arg(long, requires = "scim")]
    pub keep: bool,
    /// With --scim: at most this many requests reach the endpoint; then the run stops.
    #[arg(long, requires = "scim")]
    pub max_requests: Option<u64>,
    /// With --scim: at most this many requests per second reach the endpoint.
    #[arg(long, requires = "scim")]
    pub max_rate: Option<f64>,
    /// With --scim: climb from --rate, times 1.5 a step (each step a whole run of --duration),
    /// until a run fails (its oracle, saturation, --max-p99-ms) or its error rate passes
    /// --max-error-rate; report the highest rate that held.
    #[arg(long, requires = "scim")]
    pub find_max: bool,
    /// With --scim: this many more groups, each holding the first --group-size people of the
    /// starting population, pushed before the clock starts (a first sync with large groups).
    #[arg(long, default_value_t = 0, requires = "scim")]
    pub groups: usize,
    /// With --groups: the members of each.
    #[arg(long, default_value_t = 0, requires = "groups")]
    pub group_size: u32,
    /// With --find-max: at most this many steps.
    #[arg(long, default_value_t = 6, requires = "find_max")]
    pub find_max_steps: usize,
    /// With --find-max: the share of requests answered 400 or more that still holds.
    #[arg(long, default_value_t = 0.01, requires = "find_max")]
    pub max_error_rate: f64,
    /// Credentials: for --scim, what the IdP pushes with; for --targets, the OAuth client
    /// --poll-ms reads the targets' SCIM connectors with (`up --oauth`).
    #[command(flatten)]
    pub auth: harness::client::AuthFlags,
}

impl LoadArgs {
    pub fn options(&self) -> anyhow::Result<LoadOptions> {
        if !(self.rate > 0.0 && self.rate <= 100_000.0) {
            anyhow::bail!("--rate must be in (0, 100000]");
        }
        let duration_ok = self.duration > 0.0 && self.duration <= 86_400.0;
        if !duration_ok || !(0.0..=self.duration).contains(&self.ramp) {
            anyhow::bail!("--duration must be in (0, 86400] s and --ramp within it");
        }
        if !(0.0..=3600.0).contains(&self.settle) {
            anyhow::bail!("--settle must be in [0, 3600] s");
        }
        let mut phases = self.phases.clone();
        if let Some(f) = &self.faults {
            if phases.iter().any(|p| p.at_s == 0.0) {
                anyhow::bail!("--faults and a --phase at 0s both say what happens at the start");
            }
            phases.push(Phase {
                at_s: 0.0,
                faults: f.clone(),
            });
        }
        phases.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        if let Some(p) = phases.iter().find(|p| p.at_s >= self.duration) {
            anyhow::bail!("phase {p} starts after the run ends ({} s)", self.duration);
        }
        if let Some(tag) = &self.tag {
            let fits = tag.len() <= 32
                && !tag.is_empty()
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !fits {
                anyhow::bail!("--tag must be 1 to 32 letters, digits or '-'");
            }
        }
        if self.poll_ms.is_some_and(|ms| !(1..=60_000).contains(&ms)) {
            anyhow::bail!("--poll-ms must be in [1, 60000]");
        }
        if self.targets.is_none()
            && self.scim.is_empty()
            && self.auth.oauth.oauth_token_url.is_some()
        {
            anyhow::bail!("--oauth-token-url is for --targets whose SCIM connectors take OAuth");
        }
        let remote = match &self.targets {
            None => None,
            Some(path) => {
                let mut remote =
                    harness::scenario::run::Remote::load(path)?.with_tls(self.tls.client_tls()?);
                if let Some(credentials) = self.auth.oauth.credentials()? {
                    let http = remote.http().map_err(anyhow::Error::msg)?;
                    remote.scim_oauth = Some(scim::oauth::TokenSource::new(credentials, http));
                }
                Some(remote)
            }
        };
        let tag = self.tag.clone().or_else(|| {
            remote
                .as_ref()
                .map(|_| chrono::Utc::now().format("%Y%m%d%H%M%S").to_string())
        });
        Ok(LoadOptions {
            plan: plan::PlanOptions {
                rate: self.rate,
                duration_s: self.duration,
                ramp_s: self.ramp,
                users: self.users,
                max_events: self.max_events,
                mix: self.mix,
                seed: self.seed,
            },
            shard: self.shard,
            phases,
            dialect: remote.as_ref().map_or(self.dialect, |r| r.dialect),
            policies: self.policies.clone(),
            settle: Duration::from_secs_f64(self.settle),
            max_p99_ms: self.max_p99_ms,
            progress: !self.quiet,
            durable: self.durable,
            quirks: self.quirks.clone(),
            remote,
            tag,
            poll: self.poll_ms.map(Duration::from_millis),
        })
    }
}

fn parse_quirk(s: &str) -> Result<(TargetName, String), String> {
    let (target, quirk) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: a quirk is TARGET:NAME, e.g. space:NAME"))?;
    Ok((target.parse()?, quirk.to_owned()))
}

/// Writes every format and prints the summary; the exit code follows the verdict.
fn finish(report: &LoadReport, dir: &Path) -> anyhow::Result<ExitCode> {
    load::write(report, dir)
        .with_context(|| format!("cannot write the report to {}", dir.display()))?;
    print!("{}", report.to_markdown());
    println!("report: {}", dir.display());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    if !args.scim.is_empty() {
        return load_scim(&args, &options).await;
    }
    if options.remote.as_ref().is_some_and(|r| r.tls.insecure) {
        eprintln!("warning: {}", harness::client::INSECURE_NOTICE);
    }
    let report = load::run(&options).await?;
    let dir = args
        .report
        .clone()
        .unwrap_or_else(|| crate::default_report_dir("load"));
    finish(&report, &dir)
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Combine the report.json files of the shards of one load run into one report.
    Merge {
        /// The shards' report.json files.
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
        /// Where the merged reports go (default: reports/merged-<UTC timestamp>).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Render a load report.json again as Markdown, JUnit, HTML and SVG.
    Render {
        file: PathBuf,
        #[arg(long)]
        report: PathBuf,
    },
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReportCommand::Merge { files, report } => {
            let parts = files
                .iter()
                .map(|f| load::read(f))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let merged = LoadReport::merge(&parts)?;
            finish(
                &merged,
                &report.unwrap_or_else(|| crate::default_report_dir("merged")),
            )
        }
        ReportCommand::Render { file, report } => {
            let loaded = load::read(&file).map_err(anyhow::Error::msg)?;
            finish(&loaded, &report)
        }
    }
}

/// `load --scim`: one run (or `--find-max` climb) per endpoint, all at once; with several, each
/// reports into a folder of its own and a summary beside them says which held. Exit 0 when
/// every endpoint passed, 1 when one failed, 2 when one could not be tested.
async fn load_scim(args: &LoadArgs, options: &LoadOptions) -> anyhow::Result<ExitCode> {
    if args.max_rate.is_some_and(|r| !(r > 0.0 && r <= 100_000.0)) {
        anyhow::bail!("--max-rate must be in (0, 100000]");
    }
    if (args.groups > 0) != (args.group_size > 0) || args.group_size > args.users {
        anyhow::bail!(
            "--groups and --group-size go together, and a group holds at most --users people"
        );
    }
    if args.find_max && !(0.0..=1.0).contains(&args.max_error_rate) {
        anyhow::bail!("--max-error-rate is a share, in [0, 1]");
    }
    let mut names: Vec<&str> = args.scim.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!(
            "two --scim endpoints are called '{}': name them (--scim NAME=URL)",
            twice[0]
        );
    }
    let tls = args.tls.client_tls()?;
    if tls.insecure {
        eprintln!("warning: {}", harness::client::INSECURE_NOTICE);
    }
    let dir = args
        .report
        .clone()
        .unwrap_or_else(|| crate::default_report_dir("load"));
    let several = args.scim.len() > 1;
    let mut runs = Vec::new();
    for spec in &args.scim {
        let target = load::endpoint::ScimLoad {
            spec: spec.clone(),
            auth: args.auth.endpoint_auth(&tls)?,
            tls: tls.clone(),
            caps: harness::wiretap::Caps {
                max_rate: args.max_rate,
                max_requests: args.max_requests,
            },
            keep: args.keep,
            large_groups: args.groups,
            group_size: args.group_size,
        };
        let dir = if several {
            dir.join(&spec.name)
        } else {
            dir.clone()
        };
        runs.push(async move {
            let outcome = one_endpoint(args, options, &target, &dir).await;
            (target.spec, dir, outcome)
        });
    }
    let mut done = futures::future::join_all(runs).await;
    if !several {
        if let Some((_, _, outcome)) = done.pop() {
            let (passed, _) = outcome?;
            return Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    let mut summary = String::from(
        "# Load on several SCIM endpoints\n\n| endpoint | URL | verdict | report |\n|---|---|---|---|\n",
    );
    let (mut failed, mut untested) = (false, false);
    for (spec, at, outcome) in done {
        let verdict = match outcome {
            Ok((passed, line)) => {
                failed |= !passed;
                line
            }
            Err(e) => {
                untested = true;
                eprintln!("{}: {e:#}", spec.name);
                format!("NOT TESTED: {e:#}")
            }
        };
        summary.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            spec.name,
            spec.url,
            verdict.replace('|', "\\|"),
            at.display()
        ));
    }
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("summary.md"), &summary))
        .with_context(|| format!("cannot write the summary to {}", dir.display()))?;
    print!("{summary}");
    println!("report: {}", dir.display());
    Ok(match (untested, failed) {
        (true, _) => ExitCode::from(2),
        (false, true) => ExitCode::FAILURE,
        (false, false) => ExitCode::SUCCESS,
    })
}

/// One endpoint's run or climb, written into `dir` and printed: whether it passed (a climb:
/// whether any rate held), and its verdict line.
async fn one_endpoint(
    args: &LoadArgs,
    options: &LoadOptions,
    target: &load::endpoint::ScimLoad,
    dir: &Path,
) -> anyhow::Result<(bool, String)> {
    let written =
        |e| anyhow::Error::new(e).context(format!("cannot write the report to {}", dir.display()));
    if args.find_max {
        let (climb, last) = load::endpoint::find_max(
            options,
            target,
            args.find_max_steps,
            1.5,
            args.max_error_rate,
        )
        .await?;
        climb
            .write(dir)
            .and_then(|()| last.write(dir))
            .map_err(written)?;
        print!("{}", climb.to_markdown());
        println!("report: {}", dir.display());
        return Ok((climb.highest_held.is_some(), climb.verdict_line));
    }
    let report = load::endpoint::run(options, target).await?;
    report.write(dir).map_err(written)?;
    print!("{}", report.to_markdown());
    println!("report: {}", dir.display());
    Ok((report.passed(), report.verdict_line))
}
