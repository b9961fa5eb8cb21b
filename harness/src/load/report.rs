//! The load report: one JSON document (the source of truth, with every histogram as exact
//! `[value, count]` pairs so shards merge exactly), rendered as Markdown and JUnit XML here and
//! as HTML with SVG plots in `html`.

use std::collections::BTreeMap;

use super::cpu::CpuShare;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::plan::{PlanOptions, Shard};

/// Latencies are kept in microseconds, 3 significant digits, up to an hour.
const HIGHEST_MICROS: u64 = 3_600_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("a histogram cannot hold {0}: {1}")]
    Histogram(u64, String),
    #[error("nothing to merge")]
    Empty,
    #[error("the shards differ in {0}: they are not parts of one run")]
    Mismatch(&'static str),
    #[error("shard {0} appears twice")]
    DuplicateShard(String),
}

/// A latency histogram that serialises as its recorded `[value, count]` pairs.
#[derive(Debug, Clone)]
pub struct Hist(pub Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist::new()
    }
}

impl Hist {
    pub fn new() -> Hist {
        // Bounds and precision are constants the crate accepts.
        #[allow(clippy::expect_used)]
        Hist(Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds"))
    }

    /// Records `micros`, clamped into the histogram's range.
    pub fn record(&mut self, micros: u64) {
        let v = micros.clamp(1, HIGHEST_MICROS);
        // In range by the clamp.
        let _ = self.0.record(v);
    }

    pub fn add(&mut self, other: &Hist) -> Result<(), ReportError> {
        for (v, c) in other.pairs() {
            self.0
                .record_n(v, c)
                .map_err(|e| ReportError::Histogram(v, e.to_string()))?;
        }
        Ok(())
    }

    pub fn pairs(&self) -> Vec<(u64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    pub fn from_pairs(pairs: &[(u64, u64)]) -> Result<Hist, ReportError> {
        let mut h = Hist::new();
        for &(v, c) in pairs {
            h.0.record_n(v, c)
                .map_err(|e| ReportError::Histogram(v, e.to_string()))?;
        }
        Ok(h)
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    fn ms(micros: u64) -> f64 {
        micros as f64 / 1000.0
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        Hist::ms(self.0.value_at_quantile(q))
    }

    pub fn summary(&self) -> Latency {
        if self.count() == 0 {
            return Latency::default();
        }
        Latency {
            count: self.count(),
            p50: self.quantile_ms(0.5),
            p90: self.quantile_ms(0.9),
            p99: self.quantile_ms(0.99),
            p999: self.quantile_ms(0.999),
            max: Hist::ms(self.0.max()),
        }
    }
}

impl Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.pairs().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hist, D::Error> {
        let pairs = Vec::<(u64, u64)>::deserialize(d)?;
        Hist::from_pairs(&pairs).map_err(serde::de::Error::custom)
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Events {
    /// Events the generator sent to the IdP.
    pub sent: u64,
    /// The IdP refused them or could not be reached: they never entered the system.
    pub refused: u64,
    /// Applied on every target.
    pub applied: u64,
    /// Of those, applied together with a later event of the same person.
    pub superseded: u64,
    /// Not applied yet, with work for them still in the IdP's outbox.
    pub pending: u64,
    /// Accepted by the IdP, not applied, and nothing left to deliver them (must be 0).
    pub lost: u64,
    /// Of the lost, how many the IdP gave up on (parked after its last attempt).
    pub parked: u64,
}

/// One fault phase of the run, and how the events sent during it fared.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    pub from_s: f64,
    pub to_s: f64,
    pub sent: u64,
    pub applied: u64,
    pub latency: Hist,
}

/// One second of the run, by when events were due.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Second {
    pub second: u64,
    pub sent: u64,
    /// Events applied everywhere during this second (by the targets' stamps).
    pub applied: u64,
    pub latency: Hist,
}

/// Seconds a backlog must grow in a row to call a run saturated.
const SATURATION_SECONDS: usize = 5;

/// "saturated at about X UNIT/s" when the backlog (`series`: at each second's end, and what
/// was done in that second) grew `SATURATION_SECONDS` seconds in a row and by more than one
/// second of the work done meanwhile: what came in outran what was done, and lateness grew.
/// A backlog that only follows a rising rate (in flight = rate x latency) grows by less.
pub fn saturation(series: &[(u64, u64)], unit: &str) -> Option<String> {
    let mut run = 0;
    for (i, pair) in series.windows(2).enumerate() {
        run = if pair[1].0 > pair[0].0 { run + 1 } else { 0 };
        if run < SATURATION_SECONDS {
            continue;
        }
        let window = &series[i + 1 - run..=i + 1];
        let (from, to) = (window[0].0, window[run].0);
        let done = window[1..].iter().map(|s| s.1).sum::<u64>() as f64 / run as f64;
        if (to - from) as f64 > done {
            return Some(format!(
                "saturated at about {done:.0} {unit}/s: the backlog grew from {from} to {to} over {run} s"
            ));
        }
    }
    None
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadConfig {
    /// What the event plan was made from (its fields sit at the top level of `config`).
    #[serde(flatten)]
    pub plan: PlanOptions,
    pub dialect: String,
    pub phases: Vec<String>,
    /// The p99 the run must stay under, if one was set.
    pub max_p99_ms: Option<f64>,
    /// Whether the servers flushed to disk before answering.
    pub durable: bool,
    /// What the run's people are marked with (`load-TAG-...`), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The servers ran elsewhere, on another clock: a target applied an event when the harness
    /// received its audit event, not at the target's own stamp.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stamped_on_receipt: bool,
    /// The targets' SCIM connectors were polled this often (ms) instead of following their
    /// audit streams: a target applied an event when a read first showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_ms: Option<u64>,
    /// Server certificates were not checked (`--insecure`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// Everything recorded; percentiles are derived from the histograms when rendering.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recorded {
    /// IdP acceptance -> applied on every target.
    pub overall: Hist,
    pub per_target: BTreeMap<String, Hist>,
    /// Due (by the plan) -> sent: how late the generator was.
    pub lag: Hist,
    /// Sent -> accepted by the IdP.
    pub accept: Hist,
    pub events: Events,
    pub phases: Vec<PhaseReport>,
    pub seconds: Vec<Second>,
    /// Users whose final state differs from the oracle's, and the first differences.
    pub oracle_mismatches: u64,
    pub oracle_checked: u64,
    pub findings: Vec<String>,
    /// Audit chains that failed to verify, each with its server and why.
    pub broken_chains: Vec<String>,
    /// Problems outside the events: the first few refusals, set-up trouble.
    pub problems: Vec<String>,
    /// Wall-clock seconds of the measured part (first event due -> last one settled).
    pub measured_s: f64,
    /// Wall-clock seconds from the first event due to the last one sent.
    pub sending_s: f64,
    pub setup_s: f64,
    /// scimlab's process while measuring: the generator, the IdP and, on the embedded stack,
    /// both targets, so a busy process means the machine, not one component, was the limit.
    #[serde(default)]
    pub cpu: Option<CpuShare>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub tool: String,
    pub version: String,
    pub command: String,
    pub started: String,
    pub finished: String,
    pub verdict: String,
    pub config: LoadConfig,
    pub shards: Vec<Shard>,
    pub summary: serde_json::Value,
    pub recorded: Recorded,
}

impl Recorded {
    /// Every guarantee of a load run, by name, with why it failed (`None`: it held).
    pub fn checks(&self, max_p99_ms: Option<f64>) -> Vec<(&'static str, Option<String>)> {
        let e = &self.events;
        let mut out = vec![
            (
                "no event lost",
                (e.lost > 0)
                    .then(|| format!("{} events lost ({} parked by the IdP)", e.lost, e.parked)),
            ),
            (
                "nothing pending at the end",
                (e.pending > 0).then(|| format!("{} events still pending at the end", e.pending)),
            ),
            (
                "the IdP took every event",
                (e.refused > 0).then(|| format!("the IdP refused {} events", e.refused)),
            ),
            (
                "final state equals the oracle",
                (self.oracle_mismatches > 0).then(|| {
                    format!(
                        "{} final states differ from the oracle",
                        self.oracle_mismatches
                    )
                }),
            ),
            (
                "audit chains verify",
                (!self.broken_chains.is_empty()).then(|| {
                    format!(
                        "audit chains do not verify: {}",
                        self.broken_chains.join("; ")
                    )
                }),
            ),
        ];
        out.push(("not saturated", self.saturated()));
        if let Some(max) = max_p99_ms {
            let p99 = self.overall.summary().p99;
            out.push((
                "p99 latency within budget",
                (p99 > max).then(|| format!("p99 {p99} ms is over the {max} ms allowed")),
            ));
        }
        out
    }

    /// The saturation signal, and whether the one process holding the whole stack was busy.
    fn saturated(&self) -> Option<String> {
        let limit = "the machine's CPU is the limit (the generator, the IdP and both targets \
                     share that process)";
        Some(CpuShare::qualify(self.backlog_grew()?, self.cpu, limit))
    }

    /// Saturation, judged on the fault-free stretches of the run only: a faulted phase's
    /// backlog is what its faults cause (an outage, the IdP's backoff), which its phase row
    /// shows, not a lack of capacity.
    fn backlog_grew(&self) -> Option<String> {
        let faulted = |second: u64| {
            let at = second as f64;
            self.phases
                .iter()
                .any(|p| p.name != "none" && at >= p.from_s && at < p.to_s)
        };
        // Each second's backlog (events sent and not yet applied everywhere, at its end) and
        // the events applied in it.
        let mut open = 0i64;
        let mut stretch = Vec::new();
        for s in &self.seconds {
            open += s.sent as i64 - s.applied as i64;
            if faulted(s.second) {
                if let Some(said) = saturation(&stretch, "events") {
                    return Some(said);
                }
                stretch.clear();
            } else {
                stretch.push((open.max(0) as u64, s.applied));
            }
        }
        saturation(&stretch, "events")
    }

    /// What must hold for the run to pass and did not.
    pub fn failures(&self, max_p99_ms: Option<f64>) -> Vec<String> {
        self.checks(max_p99_ms)
            .into_iter()
            .filter_map(|(_, failure)| failure)
            .collect()
    }

    /// The report contract's `summary`.
    pub fn summary(&self) -> serde_json::Value {
        let mut latency = serde_json::Map::new();
        latency.insert("overall".into(), serde_json::json!(self.overall.summary()));
        for (t, h) in &self.per_target {
            latency.insert(t.clone(), serde_json::json!(h.summary()));
        }
        let measured = self.measured_s.max(f64::EPSILON);
        let sending = self.sending_s.max(f64::EPSILON);
        serde_json::json!({
            "latency_ms": latency,
            "events": self.events,
            "throughput": {
                "sent_per_s": round(self.events.sent as f64 / sending),
                "applied_per_s": round(self.events.applied as f64 / measured),
                "measured_s": round(self.measured_s),
            },
            "oracle": {"mismatches": self.oracle_mismatches, "checked": self.oracle_checked},
            "generator": {"lag_ms": self.lag.summary(), "idp_accept_ms": self.accept.summary()},
            "phases": self.phases.iter().map(|p| serde_json::json!({
                "name": p.name, "from_s": p.from_s, "to_s": p.to_s, "sent": p.sent,
                "applied": p.applied, "latency_ms": p.latency.summary(),
            })).collect::<Vec<_>>(),
        })
    }

    /// Adds another shard's record to this one: counts add, histograms merge exactly.
    pub fn absorb(&mut self, other: &Recorded) -> Result<(), ReportError> {
        self.overall.add(&other.overall)?;
        for (t, h) in &other.per_target {
            self.per_target.entry(t.clone()).or_default().add(h)?;
        }
        self.lag.add(&other.lag)?;
        self.accept.add(&other.accept)?;
        let (a, b) = (&mut self.events, &other.events);
        a.sent += b.sent;
        a.refused += b.refused;
        a.applied += b.applied;
        a.superseded += b.superseded;
        a.pending += b.pending;
        a.lost += b.lost;
        a.parked += b.parked;
        if self.phases.len() != other.phases.len() {
            return Err(ReportError::Mismatch("fault phases"));
        }
        for (mine, theirs) in self.phases.iter_mut().zip(&other.phases) {
            mine.sent += theirs.sent;
            mine.applied += theirs.applied;
            mine.latency.add(&theirs.latency)?;
        }
        for s in &other.seconds {
            let i = s.second as usize;
            while self.seconds.len() <= i {
                let second = self.seconds.len() as u64;
                self.seconds.push(Second {
                    second,
                    ..Second::default()
                });
            }
            let mine = &mut self.seconds[i];
            mine.sent += s.sent;
            mine.applied += s.applied;
            mine.latency.add(&s.latency)?;
        }
        self.oracle_mismatches += other.oracle_mismatches;
        self.oracle_checked += other.oracle_checked;
        self.findings.extend(other.findings.iter().cloned());
        self.broken_chains
            .extend(other.broken_chains.iter().cloned());
        self.problems.extend(other.problems.iter().cloned());
        // Shards run side by side: the merged run lasted as long as the longest.
        self.measured_s = self.measured_s.max(other.measured_s);
        self.sending_s = self.sending_s.max(other.sending_s);
        self.setup_s = self.setup_s.max(other.setup_s);
        // Each shard is a process of its own: the busiest one says most.
        self.cpu = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => Some(if b.share > a.share { b } else { a }),
            (a, b) => a.or(b),
        };
        Ok(())
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl LoadReport {
    pub fn new(
        config: LoadConfig,
        shards: Vec<Shard>,
        recorded: Recorded,
        started: String,
        finished: String,
    ) -> LoadReport {
        let verdict = if recorded.failures(config.max_p99_ms).is_empty() {
            "pass"
        } else {
            "fail"
        };
        LoadReport {
            tool: "scimlab".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            command: "load".into(),
            started,
            finished,
            verdict: verdict.into(),
            summary: recorded.summary(),
            config,
            shards,
            recorded,
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// Combines the reports of the shards of one run; refuses reports of different runs.
    pub fn merge(parts: &[LoadReport]) -> Result<LoadReport, ReportError> {
        let (first, rest) = parts.split_first().ok_or(ReportError::Empty)?;
        let mut recorded = first.recorded.clone();
        let mut shards = first.shards.clone();
        for p in rest {
            let (a, b) = (&first.config, &p.config);
            if a.plan != b.plan {
                return Err(ReportError::Mismatch(
                    "the plan (rate, duration, users, mix, seed)",
                ));
            }
            if a.phases != b.phases {
                return Err(ReportError::Mismatch("fault phases"));
            }
            if (&a.tag, a.stamped_on_receipt, a.poll_ms)
                != (&b.tag, b.stamped_on_receipt, b.poll_ms)
            {
                return Err(ReportError::Mismatch(
                    "the tag, the servers (embedded or not) or how they were watched",
                ));
            }
            for s in &p.shards {
                if shards.contains(s) {
                    return Err(ReportError::DuplicateShard(s.to_string()));
                }
                shards.push(*s);
            }
            recorded.absorb(&p.recorded)?;
        }
        shards.sort_by_key(|s| (s.count, s.index));
        let started = parts.iter().map(|p| p.started.clone()).min();
        let finished = parts.iter().map(|p| p.finished.clone()).max();
        Ok(LoadReport::new(
            first.config.clone(),
            shards,
            recorded,
            started.unwrap_or_default(),
            finished.unwrap_or_default(),
        ))
    }

    fn latency_rows(&self) -> Vec<(String, Latency)> {
        let r = &self.recorded;
        let mut rows = vec![("every target".to_owned(), r.overall.summary())];
        rows.extend(r.per_target.iter().map(|(t, h)| (t.clone(), h.summary())));
        rows.extend(
            r.phases
                .iter()
                .map(|p| (format!("phase: {}", p.name), p.latency.summary())),
        );
        rows
    }

    pub fn to_markdown(&self) -> String {
        let r = &self.recorded;
        let c = &self.config;
        let e = &r.events;
        let shards: Vec<String> = self.shards.iter().map(Shard::to_string).collect();
        let mut md = format!(
            "# scimlab load: {}\n\n{} events/s for {} s (ramp {} s), {} people at the start, mix {}, seed {}, dialect {}, shards {}.\n\n",
            self.verdict.to_uppercase(),
            c.plan.rate,
            c.plan.duration_s,
            c.plan.ramp_s,
            c.plan.users,
            c.plan.mix,
            c.plan.seed,
            c.dialect,
            shards.join(" ")
        );
        if c.insecure {
            md.push_str(&format!(
                "> **Note:** {}\n\n",
                crate::client::INSECURE_NOTICE
            ));
        }
        md.push_str("| events | sent | applied | superseded | pending | lost | parked | refused |\n|---|---|---|---|---|---|---|---|\n");
        md.push_str(&format!(
            "| count | {} | {} | {} | {} | {} | {} | {} |\n\n",
            e.sent, e.applied, e.superseded, e.pending, e.lost, e.parked, e.refused
        ));
        md.push_str(&match (c.poll_ms, c.stamped_on_receipt) {
            (Some(ms), _) => format!("Latency from the IdP accepting an event to the first read of the target's SCIM connector that showed it (read every {ms} ms, so up to {ms} ms plus a read late) (ms):\n\n"),
            (None, true) => "Latency from the IdP accepting an event to the harness receiving the target's audit event for it (servers elsewhere, on another clock; the stream's delivery is included) (ms):\n\n".to_owned(),
            (None, false) => "Latency from the IdP accepting an event to the target applying it (ms):\n\n".to_owned(),
        });
        md.push_str("| | count | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n");
        for (name, l) in self.latency_rows() {
            md.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                l.count, l.p50, l.p90, l.p99, l.p999, l.max
            ));
        }
        let lag = r.lag.summary();
        let accept = r.accept.summary();
        md.push_str(&format!(
            "\nThroughput: {} sent/s over {} s of sending; {} applied/s until the last was applied, {} s (set-up {} s).\n\
             Generator: sent late by p99 {} ms (max {} ms); the IdP accepted in p99 {} ms.{}\n\
             Oracle: {} of {} people differ.\n",
            self.summary["throughput"]["sent_per_s"],
            round(r.sending_s),
            self.summary["throughput"]["applied_per_s"],
            round(r.measured_s),
            round(r.setup_s),
            lag.p99,
            lag.max,
            accept.p99,
            CpuShare::sentence(r.cpu),
            r.oracle_mismatches,
            r.oracle_checked
        ));
        let failures = r.failures(c.max_p99_ms);
        if !failures.is_empty() {
            md.push_str("\n## Failures\n\n");
            for f in &failures {
                md.push_str(&format!("- {f}\n"));
            }
        }
        let notes: Vec<&String> = r.findings.iter().chain(&r.problems).collect();
        if !notes.is_empty() {
            md.push_str("\n## Details\n\n");
            for n in notes.iter().take(50) {
                md.push_str(&format!("- {n}\n"));
            }
        }
        md
    }

    pub fn to_junit(&self) -> Result<String, quick_junit::SerializeError> {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let checks = self.recorded.checks(self.config.max_p99_ms);
        let mut suite = TestSuite::new("scimlab load");
        for (name, failure) in checks {
            let status = match failure {
                None => TestCaseStatus::success(),
                Some(why) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(why);
                    s
                }
            };
            suite.add_test_case(TestCase::new(name, status));
        }
        let mut report = Report::new("scimlab");
        report.add_test_suite(suite);
        report.to_string()
    }

    /// The histogram in HdrHistogram's percentile-distribution text form (`.hgrm`), in ms.
    pub fn to_hgrm(&self) -> String {
        let h = &self.recorded.overall.0;
        let mut out = format!(
            "{:>12} {:>14} {:>10} {:>14}\n\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        let mut total = 0u64;
        for v in h.iter_quantiles(1) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let inverse = if q < 1.0 {
                format!("{:>14.2}", 1.0 / (1.0 - q))
            } else {
                format!("{:>14}", "")
            };
            out.push_str(&format!(
                "{:>12.3} {:>14.12} {:>10} {inverse}\n",
                v.value_iterated_to() as f64 / 1000.0,
                q,
                total
            ));
        }
        let s = self.recorded.overall.summary();
        out.push_str(&format!(
            "#[Max = {:>12.3}, Total count = {:>12}]\n",
            s.max, s.count
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_is_judged_outside_faulted_phases_only() {
        let mut r = Recorded::default();
        for second in 0..12 {
            // 10 sent and 2 applied a second: the backlog grows by 8 every second.
            r.seconds.push(Second {
                second,
                sent: 10,
                applied: 2,
                latency: Hist::new(),
            });
        }
        let phase = |name: &str, from_s: f64, to_s: f64| PhaseReport {
            name: name.into(),
            from_s,
            to_s,
            ..PhaseReport::default()
        };
        r.phases = vec![phase("kill=teamcity:2s", 0.0, 12.0)];
        assert_eq!(r.saturated(), None, "an outage is not saturation");
        r.phases = vec![
            phase("kill=teamcity:2s", 0.0, 5.0),
            phase("none", 5.0, 12.0),
        ];
        let said = r.saturated().expect("saturated once the faults end");
        assert!(said.starts_with("saturated at about 2 events/s"), "{said}");
        assert!(!said.contains("CPU"), "{said}");

        // The same backlog while the one process used nearly both cores: the machine's limit.
        let cpu = |share: f64| CpuShare {
            process_cpu_s: share * 2.0 * 12.0,
            wall_s: 12.0,
            cores: 2,
            share,
        };
        r.cpu = Some(cpu(0.5));
        assert!(!r.saturated().unwrap_or_default().contains("CPU"));
        r.cpu = Some(cpu(0.95));
        let said = r.saturated().unwrap_or_default();
        assert!(said.contains("95% of the machine's 2 cores"), "{said}");
        let limit = "so the machine's CPU is the limit (the generator, the IdP and both targets share that process)";
        assert!(said.ends_with(limit), "{said}");
    }

    #[test]
    fn a_backlog_outgrowing_the_work_done_for_five_seconds_is_saturation() {
        let series = |backlogs: &[u64], done: u64| -> Vec<(u64, u64)> {
            backlogs.iter().map(|&b| (b, done)).collect()
        };
        assert_eq!(saturation(&series(&[0, 5, 0, 6, 0, 7], 4), "events"), None);
        assert_eq!(
            saturation(&series(&[0, 10, 20, 30, 40], 4), "events"),
            None,
            "four seconds"
        );
        // A ramp: in flight grows with the rate, by far less than a second of work.
        assert_eq!(
            saturation(&series(&[1, 2, 3, 4, 5, 6, 7], 100), "events"),
            None
        );
        let said =
            saturation(&series(&[0, 6, 12, 18, 24, 30], 4), "deliveries").expect("saturated");
        assert!(
            said.starts_with("saturated at about 4 deliveries/s") && said.contains("from 0 to 30"),
            "{said}"
        );
    }
    use proptest::prelude::*;

    fn sample() -> LoadReport {
        let mut r = Recorded::default();
        for (i, ms) in [3u64, 4, 5, 8, 250].iter().enumerate() {
            r.overall.record(ms * 1000);
            r.per_target
                .entry("space".into())
                .or_default()
                .record(ms * 900);
            r.per_target
                .entry("teamcity".into())
                .or_default()
                .record(ms * 1000);
            r.seconds.push(Second {
                second: i as u64,
                sent: 1,
                applied: 1,
                latency: Hist::new(),
            });
            r.seconds[i].latency.record(ms * 1000);
        }
        r.events = Events {
            sent: 6,
            applied: 5,
            lost: 1,
            ..Events::default()
        };
        r.phases.push(PhaseReport {
            name: "5xx=5%".into(),
            from_s: 0.0,
            to_s: 5.0,
            sent: 6,
            applied: 5,
            latency: r.overall.clone(),
        });
        r.sending_s = 5.0;
        r.measured_s = 6.0;
        let config = LoadConfig {
            plan: PlanOptions {
                rate: 1.2,
                duration_s: 5.0,
                ramp_s: 0.0,
                users: 10,
                max_events: None,
                mix: crate::load::plan::Mix::default(),
                seed: 1,
            },
            dialect: "okta".into(),
            phases: vec!["0s:5xx=5%".into()],
            max_p99_ms: Some(100.0),
            durable: false,
            tag: None,
            stamped_on_receipt: false,
            poll_ms: None,
            insecure: false,
        };
        LoadReport::new(config, vec![Shard::WHOLE], r, "t0".into(), "t1".into())
    }

    #[test]
    fn reports_render_stably() {
        let r = sample();
        assert!(!r.passed());
        insta::assert_snapshot!("load_markdown", r.to_markdown());
        insta::assert_snapshot!("load_junit", r.to_junit().unwrap());
        let svgs = crate::load::html::plots(&r);
        assert_eq!(svgs.len(), 3);
        insta::assert_snapshot!("load_throughput_svg", svgs[2].1.clone());
    }

    proptest! {
        /// Merging the histograms of two halves gives exactly the histogram of the whole.
        #[test]
        fn merged_histograms_equal_the_whole(
            a in proptest::collection::vec(1u64..10_000_000, 0..300),
            b in proptest::collection::vec(1u64..10_000_000, 0..300),
        ) {
            let (mut ha, mut hb, mut whole) = (Hist::new(), Hist::new(), Hist::new());
            for v in &a { ha.record(*v); whole.record(*v); }
            for v in &b { hb.record(*v); whole.record(*v); }
            let json = serde_json::to_string(&ha).unwrap();
            let mut merged: Hist = serde_json::from_str(&json).unwrap();
            merged.add(&hb).unwrap();
            prop_assert_eq!(merged.pairs(), whole.pairs());
            prop_assert_eq!(merged.summary(), whole.summary());
        }
    }
}
