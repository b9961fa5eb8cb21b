//! The load plan: which lifecycle event happens to whom, and when. Arrivals follow a fixed rate
//! (after an optional linear ramp), whatever the servers do, so a slow server cannot thin out
//! its own load. The plan depends only on the seed and the options: every shard computes the
//! same plan and keeps the events of its own users, so the shards together send exactly what
//! one unsharded run would.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The groups people join and move between. The first three are mapped to permissions by
/// `scenarios/policies/*-idp.toml`; the last is a team with no permissions of its own.
pub const GROUPS: [&str; 4] = ["Engineering", "Platform", "Contractors", "Sales"];

/// A person is not picked again this soon after an event of theirs, so the events of one person
/// rarely overlap in flight (when they do, the later one supersedes the earlier).
const COOLDOWN_MICROS: u64 = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Hired: created active in a group (and so assigned to both apps).
    Joiner,
    /// Moved from one group to another: added to the new one, then removed from the old one.
    Mover,
    /// Left: deactivated.
    Leaver,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Joiner, Kind::Mover, Kind::Leaver];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Joiner => "joiner",
            Kind::Mover => "mover",
            Kind::Leaver => "leaver",
        }
    }
}

/// Relative weights of the event kinds: `joiner=40,mover=40,leaver=20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub joiner: u32,
    pub mover: u32,
    pub leaver: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            joiner: 40,
            mover: 40,
            leaver: 20,
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "joiner={},mover={},leaver={}",
            self.joiner, self.mover, self.leaver
        )
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            joiner: 0,
            mover: 0,
            leaver: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected kind=weight"))?;
            let weight: u32 = weight
                .trim()
                .trim_end_matches('%')
                .parse()
                .map_err(|_| format!("`{part}`: the weight is not a whole number"))?;
            match name.trim() {
                "joiner" => mix.joiner = weight,
                "mover" => mix.mover = weight,
                "leaver" => mix.leaver = weight,
                other => return Err(format!("`{other}`: the kinds are joiner, mover, leaver")),
            }
        }
        if mix.joiner + mix.mover + mix.leaver == 0 {
            return Err("the mix gives every kind weight 0".into());
        }
        Ok(mix)
    }
}

/// `i/n`: this process runs the users whose number modulo `n` is `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn owns(self, user: u32) -> bool {
        user % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: a shard is i/n, for example 0/4"))?;
        let (index, count): (u32, u32) = match (i.trim().parse(), n.trim().parse()) {
            (Ok(i), Ok(n)) => (i, n),
            _ => return Err(format!("`{s}`: i and n are whole numbers")),
        };
        if count == 0 || index >= count {
            return Err(format!("`{s}`: needs 0 <= i < n"));
        }
        Ok(Shard { index, count })
    }
}

/// What the plan is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Events per second once the ramp is over (all shards together).
    pub rate: f64,
    pub duration_s: f64,
    /// Seconds over which the rate climbs linearly from 0.
    pub ramp_s: f64,
    /// People employed (active, each in one group) before the first event.
    pub users: u32,
    /// At most this many events, whatever the duration allows.
    pub max_events: Option<u64>,
    pub mix: Mix,
    pub seed: u64,
}

/// One planned event: at `at_micros` after the start, `kind` happens to user number `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub seq: u64,
    pub at_micros: u64,
    pub kind: Kind,
    pub user: u32,
    /// The group the person is in before (movers, leavers) ...
    pub from: Option<u8>,
    /// ... and after (joiners, movers).
    pub to: Option<u8>,
}

/// The group a person of the starting population is in.
pub fn first_group(user: u32) -> u8 {
    (user % GROUPS.len() as u32) as u8
}

/// When the `k`-th event (from 0) is due: a fixed rate, reached linearly over the ramp.
fn arrival_micros(k: u64, rate: f64, ramp_s: f64) -> u64 {
    let k = k as f64;
    let ramp_events = rate * ramp_s / 2.0;
    let seconds = if ramp_s > 0.0 && k < ramp_events {
        (2.0 * ramp_s * k / rate).sqrt()
    } else {
        k / rate + ramp_s / 2.0
    };
    (seconds * 1e6) as u64
}

/// Takes a random person out of `ready` in O(1).
fn take_random(ready: &mut Vec<u32>, rng: &mut StdRng) -> Option<u32> {
    if ready.is_empty() {
        return None;
    }
    let i = rng.random_range(0..ready.len());
    Some(ready.swap_remove(i))
}

/// Every event of the run, in time order, for every shard (filter with `Shard::owns`).
pub fn plan(o: &PlanOptions) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut count = (o.rate * (o.duration_s - o.ramp_s / 2.0).max(0.0)).floor() as u64;
    if o.ramp_s > o.duration_s {
        // The ramp never finishes: count the events up to the duration on the ramp itself.
        count = (o.rate * o.duration_s * o.duration_s / (2.0 * o.ramp_s)).floor() as u64;
    }
    if let Some(max) = o.max_events {
        count = count.min(max);
    }
    let mut groups: Vec<Option<u8>> = (0..o.users).map(|u| Some(first_group(u))).collect();
    // Active people not cooling down.
    let mut ready: Vec<u32> = (0..o.users).collect();
    let mut cooling: VecDeque<(u64, u32)> = VecDeque::new();
    let total = u64::from(o.mix.joiner + o.mix.mover + o.mix.leaver).max(1);
    let mut out = Vec::with_capacity(count as usize);
    for seq in 0..count {
        let at = arrival_micros(seq, o.rate, o.ramp_s);
        while cooling.front().is_some_and(|(until, _)| *until <= at) {
            if let Some((_, user)) = cooling.pop_front() {
                if groups.get(user as usize).is_some_and(Option::is_some) {
                    ready.push(user);
                }
            }
        }
        let roll = rng.random_range(0..total);
        let wanted = if roll < u64::from(o.mix.joiner) {
            Kind::Joiner
        } else if roll < u64::from(o.mix.joiner + o.mix.mover) {
            Kind::Mover
        } else {
            Kind::Leaver
        };
        // Nobody free to move or let go: hire instead, so the rate holds.
        let picked = match wanted {
            Kind::Joiner => None,
            _ => take_random(&mut ready, &mut rng),
        };
        let event = match (wanted, picked) {
            (Kind::Mover, Some(user)) => {
                let from = groups[user as usize];
                let step = rng.random_range(1..GROUPS.len() as u8);
                let to = from.map(|f| (f + step) % GROUPS.len() as u8);
                groups[user as usize] = to;
                Planned {
                    seq,
                    at_micros: at,
                    kind: Kind::Mover,
                    user,
                    from,
                    to,
                }
            }
            (Kind::Leaver, Some(user)) => {
                let from = groups[user as usize].take();
                Planned {
                    seq,
                    at_micros: at,
                    kind: Kind::Leaver,
                    user,
                    from,
                    to: None,
                }
            }
            _ => {
                let user = groups.len() as u32;
                let to = rng.random_range(0..GROUPS.len() as u8);
                groups.push(Some(to));
                Planned {
                    seq,
                    at_micros: at,
                    kind: Kind::Joiner,
                    user,
                    from: None,
                    to: Some(to),
                }
            }
        };
        cooling.push_back((at + COOLDOWN_MICROS, event.user));
        out.push(event);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn options(rate: f64, duration_s: f64, ramp_s: f64, users: u32, seed: u64) -> PlanOptions {
        PlanOptions {
            rate,
            duration_s,
            ramp_s,
            users,
            max_events: None,
            mix: Mix::default(),
            seed,
        }
    }

    #[test]
    fn mix_and_shard_parse_and_refuse_nonsense() {
        assert_eq!(
            "joiner=1, leaver=2".parse::<Mix>(),
            Ok(Mix {
                joiner: 1,
                mover: 0,
                leaver: 2
            })
        );
        assert!("joiner=0".parse::<Mix>().is_err());
        assert!("hirer=3".parse::<Mix>().is_err());
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
    }

    #[test]
    fn a_fixed_rate_after_a_linear_ramp() {
        let p = plan(&options(100.0, 10.0, 2.0, 50, 1));
        // 100/s for 10 s, of which the 2 s ramp carries half its share.
        assert_eq!(p.len(), 900);
        let gaps: Vec<u64> = p
            .windows(2)
            .map(|w| w[1].at_micros - w[0].at_micros)
            .collect();
        assert!(gaps[..50].iter().all(|g| *g > 10_000), "slower on the ramp");
        assert!(gaps[200..].iter().all(|g| g.abs_diff(10_000) <= 1));
        assert!(p.last().is_some_and(|e| e.at_micros < 10_000_000));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Same seed, same plan; and each event fits the person's state at that moment.
        #[test]
        fn plans_are_deterministic_and_coherent(
            seed in any::<u64>(), users in 0u32..40, rate in 1.0f64..400.0, ramp in 0.0f64..3.0,
        ) {
            let o = options(rate, 4.0, ramp, users, seed);
            let p = plan(&o);
            prop_assert_eq!(&p, &plan(&o));
            let mut state: HashMap<u32, Option<u8>> =
                (0..users).map(|u| (u, Some(first_group(u)))).collect();
            let mut last_at: HashMap<u32, u64> = HashMap::new();
            for e in &p {
                let before = state.get(&e.user).copied();
                match e.kind {
                    Kind::Joiner => prop_assert_eq!(before, None),
                    Kind::Mover => {
                        prop_assert_eq!(before, Some(e.from));
                        prop_assert!(e.from.is_some() && e.to.is_some() && e.from != e.to);
                    }
                    Kind::Leaver => prop_assert!(before.flatten().is_some() && before == Some(e.from)),
                }
                if let Some(at) = last_at.insert(e.user, e.at_micros) {
                    prop_assert!(e.at_micros >= at + COOLDOWN_MICROS);
                }
                state.insert(e.user, e.to);
            }
        }

        /// The shards' events together are exactly the whole plan's.
        #[test]
        fn shards_partition_the_plan(seed in any::<u64>(), n in 1u32..5) {
            let p = plan(&options(200.0, 3.0, 0.0, 30, seed));
            let mut joined: Vec<Planned> = (0..n)
                .flat_map(|index| {
                    let shard = Shard { index, count: n };
                    p.iter().copied().filter(move |e| shard.owns(e.user))
                })
                .collect();
            joined.sort_by_key(|e| e.seq);
            prop_assert_eq!(joined, p);
        }
    }
}
