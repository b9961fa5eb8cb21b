//! `report.html`: a conformance run as one page that opens from the file system with no
//! network. A "fix first" list, filters by level, section and outcome, and for each result what
//! the RFC asks, the finding and the exchanges behind it.

use std::fmt::Write;

use super::report::{level_name, verdict, LEVELS, OUTCOMES};
use super::{CheckResult, Outcome, Run};
use crate::escape_html as escape;

fn outcome_name(o: &Outcome) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(_, is)| is(o))
        .map_or("?", |(name, _)| *name)
}

fn reason(o: &Outcome) -> &str {
    match o {
        Outcome::Passed => "",
        Outcome::Failed(s)
        | Outcome::Skipped(s)
        | Outcome::Blocked(s)
        | Outcome::Waived(s)
        | Outcome::Noted(s) => s,
    }
}

/// Failures, each with the other results whose reason names it (blocked or failed because of
/// it), most first: fixing the first explains the most.
pub fn fix_first(run: &Run) -> Vec<(&CheckResult, Vec<&str>)> {
    let mut out: Vec<(&CheckResult, Vec<&str>)> = run
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .map(|f| {
            let explained = run
                .results
                .iter()
                .filter(|r| r.def.id != f.def.id && reason(&r.outcome).contains(f.def.id))
                .map(|r| r.def.id)
                .collect();
            (f, explained)
        })
        .collect();
    out.sort_by_key(|(f, explained)| (std::cmp::Reverse(explained.len()), f.def.level));
    out
}

fn exchanges(r: &CheckResult) -> String {
    let mut out = String::new();
    for e in &r.exchanges {
        let mut text = format!("{} {}\n", e.method, e.url);
        for (k, v) in &e.request_headers {
            let _ = writeln!(text, "{k}: {v}");
        }
        if let Some(b) = &e.request_body {
            let _ = write!(text, "\n{b}\n");
        }
        let _ = writeln!(text, "\n--> {} ({:.1} ms)", e.status, e.millis);
        for (k, v) in &e.response_headers {
            let _ = writeln!(text, "{k}: {v}");
        }
        let _ = write!(text, "\n{}", e.response_body);
        let _ = write!(out, "<pre>{}</pre>", escape(&text));
    }
    out
}

fn select(id: &str, label: &str, values: &[&str]) -> String {
    let options: String = values
        .iter()
        .map(|v| format!("<option>{}</option>", escape(v)))
        .collect();
    format!(
        r#"<label>{label} <select id="{id}"><option value="">all</option>{options}</select></label> "#
    )
}

/// The page.
pub fn page(run: &Run, strict: bool) -> String {
    let verdict = verdict(run, strict);
    let mut head = String::new();
    for notice in &run.notices {
        let _ = write!(
            head,
            "<p class=\"notice\"><b>Note:</b> {}</p>",
            escape(notice)
        );
    }
    head.push_str("<table><tr><th>outcome</th><th>total</th>");
    for (level, _) in LEVELS {
        let _ = write!(head, "<th>{level}</th>");
    }
    head.push_str("</tr>");
    for (name, is) in OUTCOMES {
        let _ = write!(head, "<tr><td>{name}</td><td>{}</td>", run.count(None, is));
        for (_, level) in LEVELS {
            let _ = write!(head, "<td>{}</td>", run.count(Some(level), is));
        }
        head.push_str("</tr>");
    }
    head.push_str("</table>");
    let mut fixes = String::new();
    for (f, explained) in fix_first(run) {
        let also = if explained.is_empty() {
            String::new()
        } else {
            format!(" (explains {}: {})", explained.len(), explained.join(", "))
        };
        let _ = write!(
            fixes,
            r##"<li><a href="#{id}">{id}</a> {level} {title}{also}</li>"##,
            id = f.def.id,
            level = level_name(f.def.level),
            title = escape(f.def.title),
        );
    }
    if fixes.is_empty() {
        fixes.push_str("<li>nothing failed</li>");
    }
    let mut sections: Vec<&str> = run.results.iter().map(|r| r.def.section).collect();
    sections.sort_unstable();
    sections.dedup();
    let filters = select("f-level", "level", &LEVELS.map(|(n, _)| n))
        + &select("f-section", "section", &sections)
        + &select("f-outcome", "outcome", &OUTCOMES.map(|(n, _)| n));
    let mut rows = String::new();
    for r in &run.results {
        let outcome = outcome_name(&r.outcome);
        let _ = write!(
            rows,
            r#"<tr class="result {outcome}" id="{id}" data-level="{level}" data-section="{section}" data-outcome="{outcome}"><td>{id}</td><td>{level}</td><td>{section}</td><td>{outcome}</td><td><b>{title}</b><div class="asks">{asks} <i>({binds:?} obligation)</i></div>{quote}{why}{exchanges}</td></tr>"#,
            id = r.def.id,
            level = level_name(r.def.level),
            section = escape(r.def.section),
            title = escape(r.def.title),
            asks = escape(r.def.requirement),
            binds = r.def.binds,
            quote = match r.def.quote {
                "" => String::new(),
                q => format!(
                    "<blockquote>{} <cite>{}</cite></blockquote>",
                    escape(q),
                    escape(r.def.section)
                ),
            },
            why = match reason(&r.outcome) {
                "" => String::new(),
                why => format!("<div class=\"why\">{}</div>", escape(why)),
            },
            exchanges = match r.exchanges.len() {
                0 => String::new(),
                n if matches!(r.outcome, Outcome::Failed(_) | Outcome::Waived(_)) => {
                    format!(
                        "<details open><summary>{n} exchanges</summary>{}</details>",
                        exchanges(r)
                    )
                }
                n => format!(
                    "<details><summary>{n} exchanges</summary>{}</details>",
                    exchanges(r)
                ),
            },
        );
    }
    let mut left = String::new();
    for (location, why) in &run.left_behind {
        let _ = write!(left, "<li>{}: {}</li>", escape(location), escape(why));
    }
    if !left.is_empty() {
        left = format!("<h2>Resources that could not be removed</h2><ul>{left}</ul>");
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SCIM conformance: {verdict}</title>
<style>body{{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}}
#results{{width:100%;table-layout:fixed}}#results th:nth-child(-n+4){{width:6.5rem}}#results td{{overflow-wrap:anywhere}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top;text-align:left}}
th{{background:#f5f5f5}}tr.failed td:nth-child(4){{color:#b00;font-weight:bold}}tr.passed td:nth-child(4){{color:#070}}
tr.blocked td:nth-child(4){{color:#a60}}.asks{{color:#555;margin:.2rem 0}}blockquote{{margin:.2rem 0 .2rem 1rem;padding-left:.5rem;border-left:3px solid #ccd;color:#333;font-style:italic}}cite{{font-style:normal;color:#777}}.why{{margin:.2rem 0}}
pre{{background:#f7f7f7;padding:.5rem;white-space:pre-wrap;overflow-wrap:anywhere}}.notice{{background:#fff3cd;padding:.5rem}}</style></head>
<body data-verdict="{verdict}" data-expected="{expected}">
<h1>SCIM conformance of {target}: {verdict}</h1>
{head}<p>Run took {seconds:.2} s, {started} to {finished}.</p>
<h2>Fix first</h2><ol id="fix-first">{fixes}</ol>
<h2>Results</h2><p id="filters">{filters}<span id="shown"></span></p>
<table id="results"><tr><th>check</th><th>level</th><th>section</th><th>outcome</th><th>what the RFC asks, and what was found</th></tr>{rows}</table>
{left}
<script>
(function () {{
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.result"));
  var pick = ["level", "section", "outcome"].map(function (k) {{ return [k, document.getElementById("f-" + k)]; }});
  function apply() {{
    var shown = 0;
    rows.forEach(function (row) {{
      var keep = pick.every(function (p) {{ return !p[1].value || row.getAttribute("data-" + p[0]) === p[1].value; }});
      row.style.display = keep ? "" : "none";
      if (keep) shown++;
    }});
    document.getElementById("shown").textContent = shown + " of " + rows.length + " shown";
    return shown;
  }}
  pick.forEach(function (p) {{ p[1].addEventListener("change", apply); }});
  apply();
  var laidOut = rows.filter(function (row) {{ return row.getBoundingClientRect().height > 0; }}).length;
  document.body.setAttribute("data-rendered", laidOut + "/" + rows.length);
}})();
</script></body></html>
"#,
        expected = run.results.len(),
        target = escape(&run.target),
        seconds = run.seconds,
        started = escape(&run.started),
        finished = escape(&run.finished),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::definitions;

    fn result(id: &str, outcome: Outcome) -> CheckResult {
        let def = definitions()
            .iter()
            .find(|d| d.id == id)
            .copied()
            .unwrap_or_else(|| panic!("{id} is a check"));
        CheckResult {
            def,
            outcome,
            exchanges: Vec::new(),
            millis: 1.0,
        }
    }

    #[test]
    fn fix_first_puts_the_failure_that_explains_most_first_and_the_page_escapes() {
        let run = Run {
            target: "http://127.0.0.1:1/<scim>".into(),
            started: "s".into(),
            finished: "f".into(),
            seconds: 1.0,
            results: vec![
                result("P-MEDIA-04", Outcome::Failed("text/html".into())),
                result("P-CREATE-01", Outcome::Failed("200 for 201".into())),
                result(
                    "P-DELETE-02",
                    Outcome::Blocked("the DELETE was refused (P-DELETE-01)".into()),
                ),
                result("P-DELETE-01", Outcome::Failed("403".into())),
                result("P-READ-01", Outcome::Passed),
            ],
            left_behind: Vec::new(),
            notices: Vec::new(),
        };
        let order: Vec<(&str, usize)> = fix_first(&run)
            .iter()
            .map(|(f, explained)| (f.def.id, explained.len()))
            .collect();
        assert_eq!(
            order,
            [("P-DELETE-01", 1), ("P-CREATE-01", 0), ("P-MEDIA-04", 0)],
            "most explained first, then MUST before SHOULD"
        );
        let html = page(&run, false);
        assert!(html.contains("&lt;scim&gt;") && !html.contains("<scim>"));
        assert!(html.contains(r#"data-expected="5""#));
        assert_eq!(html.matches(r#"<tr class="result"#).count(), 5);
    }
}
