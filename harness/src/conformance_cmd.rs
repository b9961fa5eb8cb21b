//! `scimlab conformance`: runs the suite against a base URL and writes the reports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use harness::conformance::{self, report, Auth, Options, Profile, Target};

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// SCIM base URL, e.g. http://127.0.0.1:8080 or https://scim.example.com/scim/v2
    pub url: String,
    #[command(flatten)]
    pub auth: harness::client::AuthFlags,
    /// A header sent with every request, as `Name: value` (repeatable), for an API key say;
    /// its value is masked in every report.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// A token that authenticates but may not read /Users, to check for 403 (P-AUTH-04).
    #[arg(long)]
    pub limited_token: Option<String>,
    /// Add an IdP's interoperability checks to the RFC's (okta, entra; comma-separated or
    /// repeated). Without it only the RFC is tested.
    #[arg(long = "profile", value_enum, value_delimiter = ',')]
    pub profiles: Vec<Profile>,
    /// Run only the checks that write nothing.
    #[arg(long)]
    pub read_only: bool,
    /// Run only checks whose id, section or title contains this text (repeatable).
    #[arg(long = "select", value_delimiter = ',')]
    pub select: Vec<String>,
    /// File of waivers, one per line: `CHECK-ID: reason` (`#` starts a comment).
    #[arg(long)]
    pub waivers: Option<PathBuf>,
    /// Longest the run may take, in seconds, the preflight and discovery included; checks still
    /// running then are blocked. The clean-up after it has a budget of its own (15 s).
    #[arg(long, default_value_t = conformance::DEFAULT_DEADLINE.as_secs())]
    pub time_limit: u64,
    /// Largest response body read; a larger one fails the check that asked for it.
    #[arg(long, default_value_t = conformance::DEFAULT_MAX_BODY)]
    pub max_body_bytes: usize,
    /// Members of the large group P-GROUP-03/04 build (each a user the run creates and
    /// deletes); 0 skips those checks.
    #[arg(long, default_value_t = conformance::DEFAULT_LARGE_GROUP)]
    pub large_group: usize,
    /// Most requests I-IPSIE-06 (`--profile ipsie`) sends, 8 at a time, to meet the server's
    /// rate limit; set it above your limit. 0 skips the check.
    #[arg(long, default_value_t = conformance::DEFAULT_RATE_LIMIT_BURST)]
    pub rate_limit_burst: usize,
    /// Fail on SHOULD findings too.
    #[arg(long)]
    pub strict: bool,
    /// Where to write report.json, junit.xml and summary.md (default: reports/conformance-<UTC timestamp>).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub tls: harness::client::TlsFlags,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not `Name: value`"))?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(format!("'{name}' is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn read_waivers(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the waivers file {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((id, reason)) = line.split_once(':') else {
            anyhow::bail!(
                "{}:{}: expected `CHECK-ID: reason`, got {line:?}",
                path.display(),
                n + 1
            );
        };
        if reason.trim().is_empty() {
            anyhow::bail!(
                "{}:{}: waiver of {} gives no reason",
                path.display(),
                n + 1,
                id.trim()
            );
        }
        out.push((id.trim().to_owned(), reason.trim().to_owned()));
    }
    Ok(out)
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let tls = args.tls.client_tls()?;
    let auth = args.auth.auth(&tls)?;
    if args.url.starts_with("http://") && !conformance::is_loopback(&args.url) {
        eprintln!("warning: {} is not loopback and uses plain http: credentials cross the network unencrypted (RFC 7644 §7.1 requires TLS)", args.url);
    }
    let options = Options {
        profiles: args.profiles.clone(),
        read_only: args.read_only,
        select: args.select.clone(),
        waivers: args
            .waivers
            .as_ref()
            .map(read_waivers)
            .transpose()?
            .unwrap_or_default(),
        limited_auth: args.limited_token.clone().map(Auth::Bearer),
        deadline: Some(std::time::Duration::from_secs(args.time_limit)),
        large_group: args.large_group,
        rate_limit_burst: args.rate_limit_burst,
    };
    if !conformance::definitions()
        .iter()
        .any(|d| options.selected(d))
    {
        eprintln!(
            "no check matches --select {} with profiles rfc{}: an I-OKTA or I-ENTRA check needs --profile okta or entra",
            args.select.join(","),
            args.profiles.iter().map(|p| format!(",{p:?}").to_lowercase()).collect::<String>()
        );
        return Ok(ExitCode::from(2));
    }
    if tls.insecure {
        eprintln!("warning: {}", harness::client::INSECURE_NOTICE);
    }
    let target = Target::with_tls(&args.url, auth, &tls)?
        .with_max_body(args.max_body_bytes)
        .with_headers(args.headers.clone());
    let limit = std::time::Duration::from_secs(args.time_limit);
    let started = std::time::Instant::now();
    match tokio::time::timeout(limit, conformance::preflight(&target)).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            eprintln!("conformance could not test {}: {why}", args.url);
            return Ok(ExitCode::from(2));
        }
        Err(_) => {
            eprintln!(
                "conformance could not test {}: the preflight did not finish within --time-limit {} s",
                args.url, args.time_limit
            );
            return Ok(ExitCode::from(2));
        }
    }
    let options = Options {
        deadline: Some(limit.saturating_sub(started.elapsed())),
        ..options
    };
    let run = conformance::run(target, options).await;
    let dir = args
        .report
        .clone()
        .unwrap_or_else(|| crate::default_report_dir("conformance"));
    report::write(&run, &dir, args.strict)
        .with_context(|| format!("cannot write the report to {}", dir.display()))?;
    print!("{}", report::to_terminal(&run, args.strict));
    println!("report: {}", dir.display());
    report::publish_to_github(&run, args.strict).context("cannot write $GITHUB_STEP_SUMMARY")?;
    Ok(match report::verdict(&run, args.strict) {
        "fail" => ExitCode::FAILURE,
        "incomplete" => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}
