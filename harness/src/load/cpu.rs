//! How much of the machine scimlab's own process used during a run. A load run measures the
//! target only while the generator and the IdP keep up; when the process that holds them used
//! nearly every core, a backlog may be scimlab's, and the report says so.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// From this share of every core on, the process may have been the limit.
const BUSY: f64 = 0.9;
/// Linux reports a process's CPU time in `USER_HZ` ticks, 100 a second on every architecture
/// it supports (`man 5 proc`).
const TICKS_PER_S: f64 = 100.0;

/// The process's CPU time over a stretch of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuShare {
    pub process_cpu_s: f64,
    pub wall_s: f64,
    pub cores: usize,
    /// Of every core together: 1.0 is all of them for the whole stretch.
    pub share: f64,
}

impl CpuShare {
    pub fn busy(&self) -> bool {
        self.share >= BUSY
    }

    /// A saturation verdict, with the process's share added when it was busy: `limit` says
    /// what that makes the likely limit.
    pub fn qualify(saturated: String, cpu: Option<CpuShare>, limit: &str) -> String {
        match cpu.filter(CpuShare::busy) {
            Some(cpu) => format!("{saturated}; {}, so {limit}", cpu.describe()),
            None => saturated,
        }
    }

    /// The share as a sentence for a report (with a leading space), or nothing.
    pub fn sentence(cpu: Option<CpuShare>) -> String {
        cpu.map(|c| format!(" While measuring, {}.", c.describe()))
            .unwrap_or_default()
    }

    pub fn describe(&self) -> String {
        format!(
            "scimlab's process used {:.0}% of the machine's {} cores ({:.1} s of CPU in {:.1} s)",
            self.share * 100.0,
            self.cores,
            self.process_cpu_s,
            self.wall_s
        )
    }
}

/// Started before the measured part of a run; read at its end.
#[derive(Debug)]
pub struct CpuClock {
    cpu_s: Option<f64>,
    at: Instant,
}

impl CpuClock {
    pub fn start() -> CpuClock {
        CpuClock {
            cpu_s: process_cpu_s(),
            at: Instant::now(),
        }
    }

    /// `None` where the process's CPU time cannot be read (not Linux).
    pub fn share(&self) -> Option<CpuShare> {
        let used = process_cpu_s()? - self.cpu_s?;
        let wall_s = self.at.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some(CpuShare {
            process_cpu_s: used,
            wall_s,
            cores,
            share: used / (wall_s * cores as f64).max(f64::EPSILON),
        })
    }
}

/// User and system CPU seconds of this process, all threads, from `/proc/self/stat`.
fn process_cpu_s() -> Option<f64> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Fields 14 and 15 (`utime`, `stime`), counted after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_past_an_awkward_name() {
        let stat = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(3.25));
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn this_process_uses_some_cpu_and_at_most_the_machine() {
        let clock = CpuClock::start();
        let mut x = 0u64;
        let until = Instant::now() + std::time::Duration::from_millis(120);
        while Instant::now() < until {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let Some(share) = clock.share() else {
            return; // not Linux: nothing to read
        };
        assert!(x > 0);
        assert!(share.share > 0.0 && share.share <= 1.05, "{share:?}");
        assert!(share.describe().contains("cores"));
    }
}
