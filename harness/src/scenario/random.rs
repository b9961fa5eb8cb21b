//! Random lifecycles: abstract operations (drawn by a proptest strategy in the tests) turned
//! into a scenario the runner plays through the real servers. An operation that makes no sense
//! where it falls (a rehire of someone active, a move of someone in no group) is dropped, so
//! every shrunk sequence is still a valid scenario. Restarts are followed by an oracle
//! checkpoint; the final oracle check closes every scenario.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    Dialect, Expect, Hire, Membership, Move, Policies, Rename, Scenario, Server, Step, UserRef,
};
use crate::mock_target::TargetName;

/// The people a random lifecycle draws from.
pub const PEOPLE: [&str; 4] = ["ann", "ben", "cat", "dan"];
/// Groups the shipped `*-idp` policies grant through (and one they do not know).
pub const GROUPS: [&str; 5] = [
    "Engineering",
    "Platform",
    "Contractors",
    "TeamCity Admins",
    "Interns",
];

/// One thing HR or operations does; indexes wrap around `PEOPLE`, `GROUPS` and servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Hire { who: usize, group: Option<usize> },
    Join { who: usize, group: usize },
    Leave { who: usize, group: usize },
    Move { who: usize, to: usize },
    Rename { group: usize },
    Suspend(usize),
    Unsuspend(usize),
    Terminate(usize),
    Rehire(usize),
    Delete(usize),
    Restart(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    Suspended,
    Deprovisioned,
}

/// The IdP as far as the translation needs it, to keep only operations that apply.
#[derive(Default)]
struct Model {
    people: BTreeMap<usize, (Status, BTreeSet<usize>)>,
    deleted: BTreeSet<usize>,
    /// The current name of each group (renames toggle a suffix).
    renamed: BTreeSet<usize>,
}

impl Model {
    fn name(&self, group: usize) -> String {
        let base = GROUPS[group % GROUPS.len()];
        if self.renamed.contains(&(group % GROUPS.len())) {
            format!("{base} (renamed)")
        } else {
            base.to_owned()
        }
    }

    fn person(who: usize) -> String {
        PEOPLE[who % PEOPLE.len()].to_owned()
    }

    /// The `pick`-th (wrapping) of the people for whom `fits` holds.
    fn pick(&self, pick: usize, fits: impl Fn(&Status, &BTreeSet<usize>) -> bool) -> Option<usize> {
        let fitting: Vec<usize> = self
            .people
            .iter()
            .filter(|(_, (status, groups))| fits(status, groups))
            .map(|(who, _)| *who)
            .collect();
        (!fitting.is_empty()).then(|| fitting[pick % fitting.len()])
    }

    /// The step `op` stands for here, if it applies; the model follows it. Indexes choose
    /// among the people (and groups) the operation can apply to, so few operations are lost.
    fn apply(&mut self, op: &Op) -> Option<Step> {
        let any = |_: &Status, _: &BTreeSet<usize>| true;
        match *op {
            Op::Hire { who, group } => {
                let unhired: Vec<usize> = (0..PEOPLE.len())
                    .filter(|p| !self.people.contains_key(p) && !self.deleted.contains(p))
                    .collect();
                let who = *unhired.get(who % unhired.len().max(1))?;
                let groups: BTreeSet<usize> = group.map(|g| g % GROUPS.len()).into_iter().collect();
                let step = Step::Hire(Hire {
                    user: Self::person(who),
                    count: None,
                    groups: groups.iter().map(|g| self.name(*g)).collect(),
                    profile: Default::default(),
                    expires: None,
                });
                self.people.insert(who, (Status::Active, groups));
                Some(step)
            }
            Op::Join { who, group } => {
                let who = self.pick(who, |_, g| g.len() < GROUPS.len())?;
                let (_, groups) = self.people.get(&who)?;
                let open: Vec<usize> = (0..GROUPS.len()).filter(|g| !groups.contains(g)).collect();
                let group = open[group % open.len()];
                let name = self.name(group);
                self.people.get_mut(&who)?.1.insert(group);
                Some(Step::Join(Membership {
                    user: Self::person(who),
                    group: name,
                }))
            }
            Op::Leave { who, group } => {
                let who = self.pick(who, |_, g| !g.is_empty())?;
                let (_, groups) = self.people.get(&who)?;
                let group = *groups.iter().nth(group % groups.len())?;
                let name = self.name(group);
                self.people.get_mut(&who)?.1.remove(&group);
                Some(Step::Leave(Membership {
                    user: Self::person(who),
                    group: name,
                }))
            }
            Op::Move { who, to } => {
                let who = self.pick(who, |_, g| !g.is_empty() && g.len() < GROUPS.len())?;
                let (_, groups) = self.people.get(&who)?;
                let from = *groups.iter().next()?;
                let open: Vec<usize> = (0..GROUPS.len()).filter(|g| !groups.contains(g)).collect();
                let to = open[to % open.len()];
                let (from_name, to_name) = (self.name(from), self.name(to));
                let (_, groups) = self.people.get_mut(&who)?;
                groups.remove(&from);
                groups.insert(to);
                Some(Step::Move(Move {
                    user: Self::person(who),
                    from: from_name,
                    to: to_name,
                }))
            }
            Op::Rename { group } => {
                let group = group % GROUPS.len();
                let from = self.name(group);
                if !self.renamed.insert(group) {
                    self.renamed.remove(&group);
                }
                Some(Step::Rename(Rename {
                    group: from,
                    to: self.name(group),
                }))
            }
            Op::Suspend(who) => {
                self.lifecycle(who, &[Status::Active], Status::Suspended, Step::Suspend)
            }
            Op::Unsuspend(who) => {
                self.lifecycle(who, &[Status::Suspended], Status::Active, Step::Unsuspend)
            }
            Op::Terminate(who) => self.lifecycle(
                who,
                &[Status::Active, Status::Suspended],
                Status::Deprovisioned,
                Step::Terminate,
            ),
            Op::Rehire(who) => {
                self.lifecycle(who, &[Status::Deprovisioned], Status::Active, Step::Rehire)
            }
            Op::Delete(who) => {
                let who = self.pick(who, any)?;
                self.people.remove(&who)?;
                self.deleted.insert(who);
                Some(Step::Delete(UserRef {
                    user: Self::person(who),
                }))
            }
            Op::Restart(server) => {
                let servers: Vec<Server> = std::iter::once(Server::Idp)
                    .chain(TargetName::all().map(TargetName::server))
                    .collect();
                Some(Step::Restart(servers[server % servers.len()]))
            }
        }
    }

    fn lifecycle(
        &mut self,
        pick: usize,
        from: &[Status],
        to: Status,
        step: fn(UserRef) -> Step,
    ) -> Option<Step> {
        let who = self.pick(pick, |status, _| from.contains(status))?;
        if let Some((status, _)) = self.people.get_mut(&who) {
            *status = to;
        }
        Some(step(UserRef {
            user: Self::person(who),
        }))
    }
}

/// The scenario a sequence of operations stands for, in one dialect.
pub fn scenario(ops: &[Op], dialect: Dialect, settle: &str) -> Scenario {
    let mut model = Model::default();
    let mut steps = Vec::new();
    for op in ops {
        if let Some(step) = model.apply(op) {
            let restart = matches!(step, Step::Restart(_));
            steps.push(step);
            if restart {
                // After a restart every target must still equal the oracle.
                steps.push(Step::Expect(Expect {
                    within: settle.to_owned(),
                    scim: Vec::new(),
                    on: Default::default(),
                }));
            }
        }
    }
    Scenario {
        name: format!("random lifecycle of {} steps", steps.len()),
        description: format!("generated from {ops:?}"),
        written_for: Default::default(),
        dialects: vec![dialect],
        policies: Policies::default(),
        groups: GROUPS.iter().map(|g| (*g).to_owned()).collect(),
        steps,
        settle: Some(settle.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn inapplicable_operations_are_dropped_and_the_rest_validates() {
        let ops = [
            Op::Rehire(0),
            Op::Hire {
                who: 0,
                group: Some(0),
            },
            Op::Move { who: 0, to: 0 },
            Op::Rename { group: 1 },
            Op::Join { who: 0, group: 0 },
            Op::Suspend(0),
            Op::Terminate(0),
            Op::Unsuspend(0),
            Op::Rehire(0),
            Op::Restart(2),
            Op::Delete(0),
            Op::Leave { who: 0, group: 1 },
            Op::Hire {
                who: 7,
                group: None,
            },
        ];
        let s = scenario(&ops, Dialect::Okta, "5s");
        let kinds: Vec<&str> = s.steps.iter().map(Step::kind).collect();
        assert_eq!(
            kinds,
            [
                "hire",
                "move",
                "rename",
                "join",
                "suspend",
                "terminate",
                "rehire",
                "restart",
                "expect",
                "delete",
                "hire"
            ],
            "a rehire before any hire, an unsuspend of a leaver and a leave after the delete \
             do not apply"
        );
        let Step::Move(m) = &s.steps[1] else {
            panic!("{:?}", s.steps[1])
        };
        assert_eq!(
            (m.from.as_str(), m.to.as_str()),
            ("Engineering", "Platform")
        );
        let Step::Hire(h) = &s.steps[10] else {
            panic!("{:?}", s.steps[10])
        };
        assert_eq!(
            h.user, "cat",
            "7 wraps to the second of ben, cat, dan: ann was deleted"
        );
        let text = s.to_yaml().unwrap();
        let back = Scenario::parse(Path::new("random.yaml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            back.to_yaml().unwrap(),
            text,
            "the saved file replays as itself"
        );
        assert!(text.contains("to: Platform (renamed)"), "{text}");
        assert!(text.contains("group: Engineering"), "{text}");
    }
}
