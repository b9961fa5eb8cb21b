//! Reports of a conformance run: JSON (the source of truth), JUnit XML, Markdown, HTML
//! (`html.rs`), terminal.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::{json, Value};

use super::{Level, Outcome, Run};

fn is_passed(o: &Outcome) -> bool {
    matches!(o, Outcome::Passed)
}
fn is_failed(o: &Outcome) -> bool {
    matches!(o, Outcome::Failed(_))
}
fn is_skipped(o: &Outcome) -> bool {
    matches!(o, Outcome::Skipped(_))
}
fn is_blocked(o: &Outcome) -> bool {
    matches!(o, Outcome::Blocked(_))
}
fn is_waived(o: &Outcome) -> bool {
    matches!(o, Outcome::Waived(_))
}
fn is_noted(o: &Outcome) -> bool {
    matches!(o, Outcome::Noted(_))
}

/// An outcome's name and the test that recognises it.
type OutcomeKind = (&'static str, fn(&Outcome) -> bool);

pub(super) const OUTCOMES: [OutcomeKind; 6] = [
    ("passed", is_passed),
    ("failed", is_failed),
    ("skipped", is_skipped),
    ("blocked", is_blocked),
    ("waived", is_waived),
    ("noted", is_noted),
];
/// A level as reports spell it.
pub(super) fn level_name(level: Level) -> &'static str {
    LEVELS
        .iter()
        .find(|(_, l)| *l == level)
        .map_or("?", |(name, _)| *name)
}

pub(super) const LEVELS: [(&str, Level); 4] = [
    ("MUST", Level::Must),
    ("SHOULD", Level::Should),
    ("MAY", Level::May),
    ("INFO", Level::Info),
];

/// `summary.checks`: each outcome counted in all and by level.
fn counts(run: &Run) -> Value {
    let mut out = serde_json::Map::new();
    for (name, what) in OUTCOMES {
        let mut by_level = serde_json::Map::new();
        by_level.insert("total".into(), json!(run.count(None, what)));
        for (level_name, level) in LEVELS {
            by_level.insert(level_name.into(), json!(run.count(Some(level), what)));
        }
        out.insert(name.into(), Value::Object(by_level));
    }
    Value::Object(out)
}

/// `fail` when a finding fails the run, else `incomplete` when too little could run, else
/// `pass`.
pub fn verdict(run: &Run, strict: bool) -> &'static str {
    if run.fails(strict) {
        "fail"
    } else if run.incomplete() {
        "incomplete"
    } else {
        "pass"
    }
}

/// The JSON report (DESIGN.md's report contract).
pub fn to_json(run: &Run, strict: bool) -> Value {
    json!({
        "tool": "scimlab",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "conformance",
        "target": run.target,
        "started": run.started,
        "finished": run.finished,
        "verdict": verdict(run, strict),
        "notices": run.notices,
        "summary": {"checks": counts(run), "seconds": run.seconds, "strict": strict, "left_behind": run.left_behind},
        "results": run.results,
    })
}

fn reason(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Passed => None,
        Outcome::Failed(r)
        | Outcome::Skipped(r)
        | Outcome::Blocked(r)
        | Outcome::Waived(r)
        | Outcome::Noted(r) => Some(r),
    }
}

/// JUnit XML: one test suite per RFC section, one case per check.
pub fn to_junit(run: &Run) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("scimlab conformance");
    let mut sections: Vec<&str> = run.results.iter().map(|r| r.def.section).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        let mut suite = TestSuite::new(section);
        for notice in &run.notices {
            suite.add_property(quick_junit::Property::new("notice", notice.as_str()));
        }
        for r in run.results.iter().filter(|r| r.def.section == section) {
            let status = match &r.outcome {
                Outcome::Passed | Outcome::Waived(_) | Outcome::Noted(_) => {
                    TestCaseStatus::success()
                }
                Outcome::Failed(why) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(why.clone());
                    s.set_description(format!("{}\nRFC: {}", why, r.def.requirement));
                    s
                }
                Outcome::Skipped(why) | Outcome::Blocked(why) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(why.clone());
                    s
                }
            };
            let mut case = TestCase::new(
                format!("{} [{:?}] {}", r.def.id, r.def.level, r.def.title),
                status,
            );
            case.set_time(std::time::Duration::from_secs_f64(r.millis / 1000.0));
            if let Outcome::Noted(seen) = &r.outcome {
                case.set_system_out(seen.clone());
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// A Markdown summary for people: counts, then every finding with what was sent and received.
pub fn to_markdown(run: &Run, strict: bool) -> String {
    let mut md = format!(
        "# SCIM conformance of {}: {}\n\n",
        run.target,
        verdict(run, strict)
    );
    for notice in &run.notices {
        md.push_str(&format!("> **Note:** {notice}\n\n"));
    }
    md.push_str("| outcome | total | MUST | SHOULD | MAY | INFO |\n|---|---|---|---|---|---|\n");
    for (name, what) in OUTCOMES {
        md.push_str(&format!("| {name} | {} |", run.count(None, what)));
        for (_, level) in LEVELS {
            md.push_str(&format!(" {} |", run.count(Some(level), what)));
        }
        md.push('\n');
    }
    md.push_str(&format!("\nRun took {:.2} s.\n", run.seconds));
    for r in run.results.iter().filter(|r| !is_passed(&r.outcome)) {
        md.push_str(&format!(
            "\n## {} ({:?}, {}): {}\n\n",
            r.def.id, r.def.level, r.def.section, r.def.title
        ));
        md.push_str(&format!("- **Outcome**: {:?}\n", r.outcome));
        md.push_str(&format!("- **The RFC asks**: {}\n", r.def.requirement));
        if !r.def.quote.is_empty() {
            md.push_str(&format!(
                "- **{} says**: \"{}\"\n",
                r.def.section, r.def.quote
            ));
        }
        for e in &r.exchanges {
            md.push_str(&format!("\n```http\n{} {}\n", e.method, e.url));
            for (k, v) in &e.request_headers {
                md.push_str(&format!("{k}: {v}\n"));
            }
            if let Some(b) = &e.request_body {
                md.push_str(&format!("\n{b}\n"));
            }
            md.push_str(&format!("\n--> {}\n", e.status));
            for (k, v) in &e.response_headers {
                md.push_str(&format!("{k}: {v}\n"));
            }
            md.push_str(&format!("\n{}\n```\n", e.response_body));
        }
    }
    if !run.left_behind.is_empty() {
        md.push_str("\n## Resources that could not be removed\n\n");
        for (loc, why) in &run.left_behind {
            md.push_str(&format!("- {loc}: {why}\n"));
        }
    }
    md
}

/// The terminal summary: one line per check that did not pass, then the counts.
pub fn to_terminal(run: &Run, strict: bool) -> String {
    let mut out: String = run.notices.iter().map(|n| format!("note: {n}\n")).collect();
    for r in &run.results {
        let tag = match r.outcome {
            Outcome::Passed => continue,
            Outcome::Failed(_) => "FAIL",
            Outcome::Skipped(_) => "skip",
            Outcome::Blocked(_) => "blkd",
            Outcome::Waived(_) => "wavd",
            Outcome::Noted(_) => "note",
        };
        out.push_str(&format!(
            "{tag} {:<12} {:<6} {}: {}\n",
            r.def.id,
            format!("{:?}", r.def.level).to_uppercase(),
            r.def.title,
            reason(&r.outcome).unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "conformance {}: {} passed, {} failed, {} skipped, {} blocked, {} waived, {} noted in {:.2} s ({} MUST failed)\n",
        verdict(run, strict),
        run.count(None, is_passed),
        run.count(None, is_failed),
        run.count(None, is_skipped),
        run.count(None, is_blocked),
        run.count(None, is_waived),
        run.count(None, is_noted),
        run.seconds,
        run.count(Some(Level::Must), is_failed),
    ));
    out
}

/// GitHub Actions workflow commands: an `::error` for each failure that fails the run (a MUST,
/// or a SHOULD with `strict`), a `::warning` for each other failure.
pub fn to_github_annotations(run: &Run, strict: bool) -> String {
    let mut out = String::new();
    for r in &run.results {
        let Outcome::Failed(why) = &r.outcome else {
            continue;
        };
        let command = if r.fails_run(strict) {
            "error"
        } else {
            "warning"
        };
        let level = level_name(r.def.level);
        let title = format!("{} ({level}) {}", r.def.id, r.def.title);
        let message = format!("{why}\n{} ({})", r.def.requirement, r.def.section);
        out.push_str(&format!(
            "::{command} title={}::{}\n",
            escape_property(&title),
            escape_data(&message)
        ));
    }
    out
}

/// A workflow command's message: `%`, CR and LF escaped, as the Actions runner reads them.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: its message escapes, and `:` and `,` too.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Under GitHub Actions (`GITHUB_ACTIONS=true`): the annotations on stdout, and the Markdown
/// summary appended to `$GITHUB_STEP_SUMMARY` when that is set.
pub fn publish_to_github(run: &Run, strict: bool) -> std::io::Result<()> {
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        return Ok(());
    }
    print!("{}", to_github_annotations(run, strict));
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(to_markdown(run, strict).as_bytes())?;
    }
    Ok(())
}

/// Writes report.json, junit.xml, summary.md and report.html into `dir`.
pub fn write(run: &Run, dir: &Path, strict: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json =
        serde_json::to_string_pretty(&to_json(run, strict)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(
        dir.join("junit.xml"),
        to_junit(run).map_err(std::io::Error::other)?,
    )?;
    std::fs::write(dir.join("summary.md"), to_markdown(run, strict))?;
    std::fs::write(dir.join("report.html"), super::html::page(run, strict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{definitions, CheckResult, Exchange};

    fn result(id: &str, outcome: Outcome, exchanges: Vec<Exchange>) -> CheckResult {
        let def = *definitions()
            .iter()
            .find(|d| d.id == id)
            .expect("a known id");
        CheckResult {
            def,
            outcome,
            exchanges,
            millis: 2.0,
        }
    }

    fn sample_run() -> Run {
        let missing = Exchange::canned(
            "GET",
            "http://127.0.0.1:1/Users/x",
            404,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":404}"#,
        );
        Run {
            target: "http://127.0.0.1:1".into(),
            started: "2026-11-23T10:00:00.000Z".into(),
            finished: "2026-11-23T10:00:01.000Z".into(),
            seconds: 1.0,
            results: vec![
                result("P-DISC-01", Outcome::Passed, Vec::new()),
                result(
                    "P-READ-02",
                    Outcome::Failed("expected status \"404\" (a string), got 404".into()),
                    vec![missing],
                ),
                result(
                    "P-ME-01",
                    Outcome::Skipped("/Me is not supported (501)".into()),
                    Vec::new(),
                ),
                result(
                    "X-INFO-06",
                    Outcome::Noted("hard delete".into()),
                    Vec::new(),
                ),
            ],
            left_behind: Vec::new(),
            notices: Vec::new(),
        }
    }

    #[test]
    fn reports_keep_their_shape() {
        let run = sample_run();
        insta::assert_snapshot!("terminal", to_terminal(&run, false));
        insta::assert_snapshot!("markdown", to_markdown(&run, false));
        insta::assert_snapshot!("junit", to_junit(&run).expect("serialises"));
        insta::assert_json_snapshot!("json", to_json(&run, false), {".version" => "[version]"});
    }

    #[test]
    fn github_annotations_escape_what_the_runner_reads_and_follow_strict() {
        let mut run = sample_run();
        run.results.push(result(
            "P-MEDIA-04",
            Outcome::Failed("got text/html, 100%\nnot JSON".into()),
            Vec::new(),
        ));
        insta::assert_snapshot!("github", to_github_annotations(&run, false));
        let strict = to_github_annotations(&run, true);
        assert_eq!(strict.matches("::error ").count(), 2, "{strict}");
    }
}
