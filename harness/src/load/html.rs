//! The load report for people: an HTML page with its SVG plots inline (it opens from the file
//! system with no network), and the same plots as separate SVG files. The SVG is written by
//! hand: a few polylines and labels, no fonts to embed, and the same bytes for the same report.

use crate::escape_html as escape;
use std::fmt::Write;

use super::endpoint::{FindMax, ScimLoadReport};
use super::report::{Hist, Latency, LoadReport};

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
/// Room for the legend: a kind of change's name is up to about 30 characters.
const RIGHT: f64 = 215.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

#[derive(Debug, Clone, Copy)]
enum Scale {
    Linear {
        min: f64,
        max: f64,
    },
    /// log10, from 10^min to 10^max.
    Log {
        min: f64,
        max: f64,
    },
}

impl Scale {
    fn unit(self, v: f64) -> f64 {
        let (lo, hi, x) = match self {
            Scale::Linear { min, max } => (min, max, v),
            Scale::Log { min, max } => (min, max, v.max(1e-9).log10()),
        };
        if hi <= lo {
            0.0
        } else {
            ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
        }
    }

    fn ticks(self) -> Vec<f64> {
        match self {
            Scale::Linear { min, max } => {
                let span = (max - min).max(1e-9);
                let raw = span / 5.0;
                let mag = 10f64.powf(raw.log10().floor());
                let step = [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .map(|m| m * mag)
                    .find(|s| span / s <= 6.0)
                    .unwrap_or(mag * 10.0);
                let mut t = (min / step).ceil() * step;
                let mut out = Vec::new();
                while t <= max + 1e-9 {
                    out.push(t);
                    t += step;
                }
                out
            }
            Scale::Log { min, max } => (min.floor() as i32..=max.ceil() as i32)
                .map(|e| 10f64.powi(e))
                .collect(),
        }
    }

    /// A log scale over the values, whole decades.
    fn log_over(values: impl Iterator<Item = f64>) -> Scale {
        // Below 0.1 ms is clock noise (an apply stamped before the IdP's answer arrived).
        let (lo, hi) = values
            .map(|v| v.max(0.1))
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            return Scale::Log { min: 0.0, max: 1.0 };
        }
        let (min, max) = (lo.log10().floor(), hi.log10().ceil());
        Scale::Log {
            min,
            max: if max <= min { min + 1.0 } else { max },
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1.0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// A dot on each point: for few points, where a line alone hides them (one is no line).
    dots: bool,
}

struct Chart<'a> {
    id: &'a str,
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    x: Scale,
    y: Scale,
    /// Custom x tick labels (value, text); the scale's own ticks when empty.
    x_ticks: Vec<(f64, String)>,
    /// Shaded spans of x with a label: the fault phases.
    bands: Vec<(f64, f64, String)>,
    series: Vec<Series>,
}

impl Chart<'_> {
    fn svg(&self) -> String {
        let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let px = |x: f64| LEFT + self.x.unit(x) * w;
        let py = |y: f64| TOP + (1.0 - self.y.unit(y)) * h;
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" id="{}" class="plot" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"##,
            self.id
        );
        let _ = write!(
            s,
            r##"<title>{}</title><rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"##,
            escape(self.title),
            escape(self.title)
        );
        for (i, (from, to, label)) in self.bands.iter().enumerate() {
            let shade = if i % 2 == 0 { "#f3f3f3" } else { "#e6eef7" };
            let (x0, x1) = (px(*from), px(*to));
            let _ = write!(
                s,
                r##"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{h:.1}" fill="{shade}"/><text x="{:.1}" y="{:.1}" fill="#666">{}</text>"##,
                (x1 - x0).max(0.0),
                x0 + 3.0,
                TOP + 12.0,
                escape(label)
            );
        }
        for t in self.y.ticks() {
            let y = py(t);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + w,
                LEFT - 6.0,
                y + 4.0,
                fmt_num(t)
            );
        }
        let x_ticks: Vec<(f64, String)> = if self.x_ticks.is_empty() {
            self.x
                .ticks()
                .into_iter()
                .map(|t| (t, fmt_num(t)))
                .collect()
        } else {
            self.x_ticks.clone()
        };
        for (t, label) in x_ticks {
            let x = px(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + h,
                TOP + h + 16.0,
                escape(&label)
            );
        }
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#333"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
            LEFT + w / 2.0,
            HEIGHT - 8.0,
            escape(self.x_label),
            TOP + h / 2.0,
            escape(self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<String> = series
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            if !points.is_empty() {
                let _ = write!(
                    s,
                    r##"<polyline class="series" fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"##,
                    points.join(" ")
                );
            }
            if series.dots {
                for (x, y) in &series.points {
                    let _ = write!(
                        s,
                        r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                        px(*x),
                        py(*y)
                    );
                }
            }
            let ly = TOP + 14.0 + i as f64 * 16.0;
            let lx = LEFT + w + 10.0;
            let _ = write!(
                s,
                r##"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">{}</text>"##,
                lx + 16.0,
                ly - 4.0,
                ly - 4.0,
                lx + 20.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// The three plots, as (file name, SVG).
pub fn plots(report: &LoadReport) -> Vec<(&'static str, String)> {
    let r = &report.recorded;
    let last_second = r.seconds.len().max(1) as f64;
    let bands: Vec<(f64, f64, String)> = r
        .phases
        .iter()
        .map(|p| (p.from_s, p.to_s, p.name.clone()))
        .collect();
    let per_second = |q: f64| -> Vec<(f64, f64)> {
        r.seconds
            .iter()
            .filter(|s| s.latency.count() > 0)
            .map(|s| (s.second as f64 + 0.5, s.latency.quantile_ms(q)))
            .collect()
    };
    let over_time: Vec<Series> = [("p50", 0.5), ("p99", 0.99), ("max", 1.0)]
        .into_iter()
        .map(|(name, q)| Series {
            name: name.into(),
            points: per_second(q),
            dots: false,
        })
        .collect();
    let timeline = Chart {
        id: "latency-over-time",
        title: "Latency over time (by second the event was due)",
        x_label: "seconds since the first event",
        y_label: "ms, log scale",
        x: Scale::Linear {
            min: 0.0,
            max: last_second,
        },
        y: Scale::log_over(over_time.iter().flat_map(|s| s.points.iter().map(|p| p.1))),
        x_ticks: Vec::new(),
        bands: bands.clone(),
        series: over_time,
    };

    // The percentile spectrum: x is log10(1 / (1 - q)), so 90%, 99%, 99.9% are evenly spaced.
    let spectrum = |h: &Hist| -> Vec<(f64, f64)> {
        if h.count() == 0 {
            return Vec::new();
        }
        (0..=400)
            .map(|i| {
                let x = i as f64 / 100.0;
                let q = (1.0 - 10f64.powf(-x)).min(1.0);
                (x, h.quantile_ms(q))
            })
            .collect()
    };
    let mut distribution_series = vec![Series {
        name: "every target".into(),
        points: spectrum(&r.overall),
        dots: false,
    }];
    distribution_series.extend(r.per_target.iter().map(|(t, h)| Series {
        name: t.clone(),
        points: spectrum(h),
        dots: false,
    }));
    let distribution = Chart {
        id: "latency-distribution",
        title: "Latency by percentile",
        x_label: "percentile",
        y_label: "ms, log scale",
        x: Scale::Linear { min: 0.0, max: 4.0 },
        y: Scale::log_over(
            distribution_series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
        ),
        x_ticks: [
            (0.0, "0%"),
            (1.0, "90%"),
            (2.0, "99%"),
            (3.0, "99.9%"),
            (4.0, "99.99%"),
        ]
        .into_iter()
        .map(|(x, l)| (x, l.to_owned()))
        .collect(),
        bands: Vec::new(),
        series: distribution_series,
    };

    let counts = |f: fn(&super::report::Second) -> u64| -> Vec<(f64, f64)> {
        r.seconds
            .iter()
            .map(|s| (s.second as f64 + 0.5, f(s) as f64))
            .collect()
    };
    let peak = r
        .seconds
        .iter()
        .map(|s| s.sent.max(s.applied))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let throughput = Chart {
        id: "throughput",
        title: "Throughput",
        x_label: "seconds since the first event",
        y_label: "events per second",
        x: Scale::Linear {
            min: 0.0,
            max: last_second,
        },
        y: Scale::Linear {
            min: 0.0,
            max: peak * 1.1,
        },
        x_ticks: Vec::new(),
        bands,
        series: vec![
            Series {
                name: "sent".into(),
                points: counts(|s| s.sent),
                dots: false,
            },
            Series {
                name: "applied".into(),
                points: counts(|s| s.applied),
                dots: false,
            },
        ],
    };
    vec![
        ("latency-over-time.svg", timeline.svg()),
        ("latency-distribution.svg", distribution.svg()),
        ("throughput.svg", throughput.svg()),
    ]
}

/// `load --scim`'s plots, as (file name, SVG): what was sent and delivered each second, the
/// IdP's backlog, and the delivery latency of each kind of change by percentile.
pub fn scim_plots(report: &ScimLoadReport) -> Vec<(&'static str, String)> {
    let last_second = report.seconds.len().max(1) as f64;
    let per_second = |f: fn(&super::endpoint::Second) -> u64| -> Vec<(f64, f64)> {
        report
            .seconds
            .iter()
            .map(|s| (s.second as f64 + 0.5, f(s) as f64))
            .collect()
    };
    let linear_to = |peak: u64| Scale::Linear {
        min: 0.0,
        max: peak.max(1) as f64 * 1.1,
    };
    let over_time = Scale::Linear {
        min: 0.0,
        max: last_second,
    };
    let peak = report
        .seconds
        .iter()
        .map(|s| s.sent.max(s.delivered))
        .max()
        .unwrap_or(1);
    let throughput = Chart {
        id: "throughput",
        title: "Sent to the IdP and delivered to the endpoint",
        x_label: "seconds since the first event",
        y_label: "per second",
        x: over_time,
        y: linear_to(peak),
        x_ticks: Vec::new(),
        bands: Vec::new(),
        series: vec![
            Series {
                name: "events sent".into(),
                points: per_second(|s| s.sent),
                dots: false,
            },
            Series {
                name: "changes delivered".into(),
                points: per_second(|s| s.delivered),
                dots: false,
            },
        ],
    };
    let backlog = Chart {
        id: "backlog",
        title: "The IdP's outbox (grows when the endpoint falls behind)",
        x_label: "seconds since the first event",
        y_label: "changes waiting",
        x: over_time,
        y: linear_to(report.seconds.iter().map(|s| s.backlog).max().unwrap_or(1)),
        x_ticks: Vec::new(),
        bands: Vec::new(),
        series: vec![Series {
            name: "outbox".into(),
            points: per_second(|s| s.backlog),
            dots: false,
        }],
    };
    let spectrum = |l: &Latency| -> Vec<(f64, f64)> {
        [l.p50, l.p90, l.p99, l.p999, l.max]
            .into_iter()
            .enumerate()
            .map(|(i, ms)| (i as f64, ms))
            .collect()
    };
    let kinds: Vec<Series> = report
        .delivery
        .iter()
        .filter(|d| d.latency.count > 0)
        .map(|d| Series {
            name: d.kind.clone(),
            points: spectrum(&d.latency),
            dots: true,
        })
        .collect();
    let delivery = Chart {
        id: "delivery-latency",
        title: "Delivery latency by kind of change (IdP accepted -> endpoint answered)",
        x_label: "percentile",
        y_label: "ms, log scale",
        x: Scale::Linear { min: 0.0, max: 4.0 },
        y: Scale::log_over(kinds.iter().flat_map(|s| s.points.iter().map(|p| p.1))),
        x_ticks: ["p50", "p90", "p99", "p99.9", "max"]
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as f64, l.to_owned()))
            .collect(),
        bands: Vec::new(),
        series: kinds,
    };
    vec![
        ("throughput.svg", throughput.svg()),
        ("backlog.svg", backlog.svg()),
        ("delivery-latency.svg", delivery.svg()),
    ]
}

/// `--find-max`'s climb: the slowest kind's p99 at each rate tried, against the limit.
pub fn find_max_plot(climb: &FindMax) -> (&'static str, String) {
    let top = climb.steps.iter().map(|s| s.rate).fold(1.0, f64::max);
    let bottom = climb.steps.iter().map(|s| s.rate).fold(top, f64::min);
    let (from, to) = (bottom * 0.8, top * 1.1);
    let mut series = vec![Series {
        name: "worst p99".into(),
        points: climb
            .steps
            .iter()
            .map(|s| (s.rate, s.worst_p99_ms))
            .collect(),
        dots: true,
    }];
    if let Some(limit) = climb.max_p99_ms {
        series.push(Series {
            name: format!("limit {} ms", fmt_num(limit)),
            points: vec![(from, limit), (to, limit)],
            dots: false,
        });
    }
    let chart = Chart {
        id: "find-max",
        title: "p99 as the rate climbs",
        x_label: "events per second",
        y_label: "ms, log scale",
        x: Scale::Linear { min: from, max: to },
        y: Scale::log_over(series.iter().flat_map(|s| s.points.iter().map(|p| p.1))),
        // One tick per rate tried, marked when it did not hold.
        x_ticks: climb
            .steps
            .iter()
            .map(|s| {
                let mark = if s.held { "" } else { " ✗" };
                (s.rate, format!("{}{mark}", fmt_num(s.rate.round())))
            })
            .collect(),
        bands: Vec::new(),
        series,
    };
    ("find-max.svg", chart.svg())
}

/// A line of Markdown text as HTML: escaped, with `**strong**` and `` `code` `` spans.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut open = (false, false);
    let mut rest = text;
    while let Some(at) = rest.find(['*', '`']) {
        out.push_str(&escape(&rest[..at]));
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("**") {
            out.push_str(if open.0 { "</strong>" } else { "<strong>" });
            open.0 = !open.0;
            rest = after;
        } else if let Some(after) = tail.strip_prefix('`') {
            out.push_str(if open.1 { "</code>" } else { "<code>" });
            open.1 = !open.1;
            rest = after;
        } else {
            out.push('*');
            rest = &tail[1..];
        }
    }
    out.push_str(&escape(rest));
    if open.1 {
        out.push_str("</code>");
    }
    if open.0 {
        out.push_str("</strong>");
    }
    out
}

/// Markdown tables and lists, enough of them for the summary, as HTML.
fn markdown_to_html(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    let mut in_list = false;
    for line in md.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if line.starts_with('|') {
            if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                continue;
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<{tag}>{}</{tag}>", inline(c));
            }
            out.push_str("</tr>");
            continue;
        }
        if in_table {
            out.push_str("</table>");
            in_table = false;
        }
        if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                out.push_str("<ul>");
                in_list = true;
            }
            let _ = write!(out, "<li>{}</li>", inline(item));
            continue;
        }
        if in_list {
            out.push_str("</ul>");
            in_list = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            let _ = write!(out, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = write!(out, "<h1>{}</h1>", escape(h));
        } else if !line.trim().is_empty() {
            let _ = write!(out, "<p>{}</p>", inline(line));
        }
    }
    if in_table {
        out.push_str("</table>");
    }
    if in_list {
        out.push_str("</ul>");
    }
    out
}

/// The page of a load report on the mocks.
pub fn page(report: &LoadReport) -> String {
    page_of(&report.verdict, &report.to_markdown(), &plots(report))
}

/// The page of a `load --scim` report.
pub fn scim_page(report: &ScimLoadReport) -> String {
    page_of(report.verdict, &report.to_markdown(), &scim_plots(report))
}

/// The page of a `--find-max` climb.
pub fn find_max_page(climb: &FindMax) -> String {
    let verdict = if climb.highest_held.is_some() {
        "pass"
    } else {
        "fail"
    };
    page_of(verdict, &climb.to_markdown(), &[find_max_plot(climb)])
}

/// A report's summary (Markdown) and plots as one page. Its script only checks that the plots
/// were laid out (`data-rendered` against `data-expected`, for the browser test) and needs
/// nothing from the network.
fn page_of(verdict: &str, markdown: &str, drawn: &[(&str, String)]) -> String {
    let body = markdown_to_html(markdown);
    let expected = drawn.len();
    let plots: String = drawn.iter().map(|(_, svg)| svg.as_str()).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>scimlab load: {verdict}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}}
th{{background:#f5f5f5}}svg.plot{{display:block;margin:1.5rem 0;max-width:100%;height:auto}}</style></head>
<body data-verdict="{verdict}" data-expected="{expected}">{body}<h2>Plots</h2>{plots}
<script>
(function () {{
  var ok = 0, plots = document.querySelectorAll("svg.plot");
  plots.forEach(function (svg) {{
    var box = svg.getBBox();
    if (box.width > 0 && box.height > 0 && svg.querySelectorAll("polyline.series").length > 0) ok++;
  }});
  document.body.setAttribute("data-rendered", ok + "/" + plots.length);
}})();
</script></body></html>
"#,
        verdict = escape(verdict),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::endpoint::Step;

    #[test]
    fn summary_lines_keep_their_emphasis_and_nothing_else_passes_through() {
        assert_eq!(
            inline("**PASS: a < b** tag `x&y` 5*3"),
            "<strong>PASS: a &lt; b</strong> tag <code>x&amp;y</code> 5*3"
        );
        assert_eq!(inline("**open"), "<strong>open</strong>");
    }

    #[test]
    fn the_climb_marks_each_rate_tried_and_the_one_that_failed() {
        let step = |rate: f64, held: bool, p99: f64| Step {
            rate,
            held,
            verdict_line: String::new(),
            worst_p99_ms: p99,
            error_rate: 0.0,
        };
        let climb = FindMax {
            tool: "scimlab",
            command: "load --find-max",
            target: "scim".into(),
            url: "http://127.0.0.1:1".into(),
            max_p99_ms: Some(100.0),
            max_error_rate: 0.01,
            steps: vec![step(10.0, true, 12.0), step(15.0, false, 480.0)],
            highest_held: Some(10.0),
            verdict_line: "held 10 events/s".into(),
        };
        let (_, svg) = find_max_plot(&climb);
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        assert!(
            svg.contains(">15 ✗</text>") && svg.contains(">10</text>"),
            "{svg}"
        );
        assert!(svg.contains("limit 100 ms"), "{svg}");
        let page = find_max_page(&climb);
        assert!(
            page.contains(r#"data-verdict="pass" data-expected="1""#),
            "{page}"
        );
        // One rate tried is still a point on the plot.
        let one = FindMax {
            steps: vec![step(10.0, false, 480.0)],
            highest_held: None,
            ..climb
        };
        assert!(find_max_plot(&one).1.contains("<circle"));
        assert!(find_max_page(&one).contains(r#"data-verdict="fail""#));
    }
}
