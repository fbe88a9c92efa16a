//! Running the checker, and saying what it found in words.

use std::collections::BTreeSet;
use std::fmt::{Debug, Write as _};
use std::hash::Hash;
use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model, Path};

use crate::config::{Config, Protocol};
use crate::etcd::{Etcd, LeaseId, Owner};
use crate::model::{Action, HOLDERS_RECORD, HOLDERS_WRITE, ONE_LEADER, TERMS_GROW};
use crate::protocol::Election;
use crate::state::{Guardian, Request, State};

impl Protocol {
    /// For an unsafe protocol: the configuration that catches it (without
    /// reductions, so that its trace keeps every name and revision) and
    /// the safety properties it breaks there.
    pub fn caught(self) -> Option<(Config, &'static [&'static str])> {
        let plain = |config: Config| Config {
            reduce: false,
            ..config
        };
        match self {
            Protocol::Today | Protocol::OneWrite => None,
            Protocol::GuardianHandsOnAnyRecord => Some((
                plain(Config::ci(self)),
                &[ONE_LEADER, HOLDERS_WRITE, HOLDERS_RECORD],
            )),
            Protocol::OneWriteWithoutAnchor => Some((plain(Config::old_rule(self)), &[ONE_LEADER])),
            Protocol::OneWriteCreateRevisionTerm => Some((plain(Config::ci(self)), &[TERMS_GROW])),
        }
    }
}

/// A path the checker found: the steps from the start, and the state each
/// one led to.
pub type Trace<M = Election> = Path<<M as Model>::State, <M as Model>::Action>;

/// A model the checker runs (the election's, the shards'): what it calls
/// its safety properties, and how a summary names what was checked.
pub trait Checked:
    Model<
        State: Hash + Debug + Clone + PartialEq + Send + Sync + 'static,
        Action: Debug + Clone + PartialEq + Send + Sync,
    > + Copy
    + Send
    + Sync
    + 'static
{
    /// The `always` properties.
    fn safety(&self) -> &'static [&'static str];
    /// What is checked, for a summary.
    fn label(&self) -> String;
}

impl Checked for Election {
    fn safety(&self) -> &'static [&'static str] {
        &crate::model::SAFETY
    }

    fn label(&self) -> String {
        format!("{:?}", self.config.protocol)
    }
}

/// What one run of the checker found.
pub struct Outcome<M: Checked = Election> {
    /// The model checked (its configuration).
    pub model: M,
    /// States generated (with repeats).
    pub states: usize,
    /// Distinct states.
    pub unique: usize,
    /// The longest path explored.
    pub depth: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Each property with a discovery: a counterexample of an `always`
    /// property, an example of a `sometimes` one.
    pub discoveries: Vec<(&'static str, Trace<M>)>,
    /// The `sometimes` properties with no example.
    pub never: Vec<&'static str>,
}

impl<M: Checked> Outcome<M> {
    /// The counterexample found for `property`, if any.
    pub fn counterexample(&self, property: &str) -> Option<&Trace<M>> {
        self.discoveries
            .iter()
            .find(|(name, _)| *name == property)
            .map(|(_, trace)| trace)
    }

    /// The `always` properties with a counterexample.
    pub fn violated(&self) -> Vec<&'static str> {
        let always: BTreeSet<&str> = self.model.safety().iter().copied().collect();
        self.discoveries
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| always.contains(name))
            .collect()
    }

    /// One line: what was checked, how much, how long.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} distinct states ({} generated, depth {}) in {:.2} s",
            self.model.label(),
            self.unique,
            self.states,
            self.depth,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Checks every state of `config` reachable within its bounds, breadth
/// first, on `threads`.
pub fn exhaust(config: Config, threads: usize) -> Outcome {
    exhaust_model(Election::new(config), threads)
}

/// Checks every state of `model` reachable within its bounds, breadth
/// first, on `threads`.
pub fn exhaust_model<M: Checked>(model: M, threads: usize) -> Outcome<M> {
    let started = Instant::now();
    let checker = model.checker().threads(threads).spawn_bfs().join();
    outcome(model, &checker, started.elapsed())
}

/// The deepest [`search`] looks.
pub const SEARCH_DEPTH: usize = 24;

/// Searches `config` for a shortest counterexample of each property in
/// `wanted`: breadth first, one depth more each round (stateright's
/// breadth-first search keeps the last discovery it makes before it
/// stops, not the first), up to [`SEARCH_DEPTH`] steps or until the bounds
/// are exhausted. The outcome counts the states of the last round.
pub fn search(config: Config, wanted: &[&'static str]) -> Outcome {
    search_model(Election::new(config), wanted)
}

/// As [`search`], for any model.
pub fn search_model<M: Checked>(model: M, wanted: &[&'static str]) -> Outcome<M> {
    deepen(model, wanted, true)
}

/// As [`search`], until any safety property has a counterexample.
pub fn search_any(config: Config) -> Outcome {
    deepen(Election::new(config), &crate::model::SAFETY, false)
}

fn deepen<M: Checked>(model: M, wanted: &[&'static str], all: bool) -> Outcome<M> {
    let started = Instant::now();
    let mut found: Vec<(&'static str, Trace<M>)> = Vec::new();
    let mut last = (0, 0, 0);
    for depth in 1..=SEARCH_DEPTH {
        let missing: BTreeSet<&'static str> = wanted
            .iter()
            .copied()
            .filter(|name| found.iter().all(|(f, _)| f != name))
            .collect();
        if missing.is_empty() || (!all && !found.is_empty()) {
            break;
        }
        // States at the target depth are not checked: one more.
        let checker = model
            .checker()
            .threads(1)
            .target_max_depth(depth + 1)
            .finish_when(HasDiscoveries::AnyOf(missing.clone()))
            .spawn_bfs()
            .join();
        found.extend(
            checker
                .discoveries()
                .into_iter()
                .filter(|(name, _)| missing.contains(name)),
        );
        let unique = checker.unique_state_count();
        if unique == last.1 {
            // Nothing deeper to see.
            break;
        }
        last = (checker.state_count(), unique, depth);
    }
    found.sort_by_key(|(name, _)| *name);
    Outcome {
        model,
        states: last.0,
        unique: last.1,
        depth: last.2,
        elapsed: started.elapsed(),
        discoveries: found,
        never: Vec::new(),
    }
}

fn outcome<M: Checked, C: Checker<M>>(model: M, checker: &C, elapsed: Duration) -> Outcome<M> {
    let found = checker.discoveries();
    let mut discoveries: Vec<(&'static str, Trace<M>)> = found.into_iter().collect();
    discoveries.sort_by_key(|(name, _)| *name);
    let never = model
        .properties()
        .iter()
        .filter(|p| p.expectation == stateright::Expectation::Sometimes)
        .map(|p| p.name)
        .filter(|name| !discoveries.iter().any(|(found, _)| found == name))
        .collect();
    Outcome {
        model,
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        depth: checker.max_depth(),
        elapsed,
        discoveries,
        never,
    }
}

/// A process's name: `n1` for node 1's first electd, `n1'` for its second.
fn name(owner: Owner) -> String {
    match owner {
        Owner::Process { node, inc } => format!("n{node}{}", "'".repeat(usize::from(inc))),
        Owner::OldRule => "etcdctl".to_owned(),
    }
}

/// A lease by its owner (`n1's lease`), with its id only when the owner
/// has more than one.
fn lease_name(etcd: &Etcd, id: LeaseId) -> String {
    match etcd.owner(id) {
        Some(owner) if etcd.live().filter(|(_, l)| l.owner == owner).count() > 1 => {
            format!("{}'s lease {id}", name(owner))
        }
        Some(owner) => format!("{}'s lease", name(owner)),
        None => "a lease gone".to_owned(),
    }
}

/// What a state holds, in a few lines.
pub fn describe(model: &Election, s: &State) -> String {
    let e = &s.etcd;
    let mut out = format!("  etcd rev {}", e.revision);
    if !e.up() {
        let _ = write!(out, " (down {} more ticks)", e.down_for);
    }
    if let Some(r) = e.record {
        let _ = write!(
            out,
            "; ~leader → {} (create {}, mod {}, term {})",
            lease_name(e, r.lease),
            r.create,
            r.modr,
            model.term(r)
        );
    }
    if let Some(a) = e.anchor {
        let _ = write!(out, "; ~anchor @{a}");
    }
    if let Some(t) = e.transfer {
        let _ = write!(
            out,
            "; ~transfer → {} (mod {})",
            lease_name(e, t.lease),
            t.modr
        );
    }
    if let Some(o) = e.old_rule {
        let _ = write!(out, "; old-rule key @{}", o.create);
    }
    for (id, lease) in e.live() {
        let _ = write!(
            out,
            "\n  lease {} expires in {}",
            lease_name(e, id),
            lease.expires_in
        );
        if let Some(c) = lease.candidate {
            let _ = write!(
                out,
                ", key ~c/{id} (create {}, mod {}{})",
                c.create,
                c.modr,
                if c.eligible { "" } else { ", ineligible" }
            );
        }
    }
    for (i, node) in s.nodes.iter().enumerate() {
        let who = name(s.owner(i));
        let _ = write!(out, "\n  {who}: ");
        match (&node.proc, node.guardian) {
            (Some(p), _) => {
                if let Some(c) = p.claim {
                    let _ = write!(
                        out,
                        "claim {} deadline in {}",
                        lease_name(e, c.lease),
                        c.deadline_in
                    );
                } else {
                    out.push_str("no claim");
                }
                if let Some(t) = p.tenure {
                    let belief = if p.believes() { "LEADS" } else { "lapsed" };
                    let _ = write!(out, ", {belief} term {t}");
                }
                let _ = write!(out, ", floor {}", p.floor);
                if p.regressed {
                    out.push_str(" (regressed)");
                }
                if let Some(r) = p.request {
                    let _ = write!(out, ", sent {}", request(e, r));
                }
            }
            (None, Guardian::Releasing(plan)) => {
                out.push_str("electd dead, guardian releasing");
                if let Some(plan) = plan {
                    let _ = write!(out, " (read: hand to {})", lease_name(e, plan.to));
                }
            }
            (None, _) => out.push_str("down"),
        }
        if let Some(r) = node.inflight {
            let _ = write!(out, ", in flight: {}", request(e, r));
        }
    }
    if s.old_rule_leads && e.old_rule.is_some() {
        out.push_str("\n  etcdctl: LEADS (oldest key)");
    }
    out
}

fn request(e: &Etcd, r: Request) -> String {
    match r {
        Request::TakeRecord { transfer, .. } => match transfer {
            Some(_) => "take record (consuming the transfer)".to_owned(),
            None => "take record".to_owned(),
        },
        Request::LayAnchor => "lay anchor".to_owned(),
        Request::Decline { .. } => "decline transfer".to_owned(),
        Request::Revoke { lease } => format!("revoke {}", lease_name(e, lease)),
        Request::HandOver { to, .. } => format!("hand record to {}", lease_name(e, to)),
        Request::PutTransfer { to, .. } => format!("transfer to {}", lease_name(e, to)),
    }
}

/// A trace, step by step: each action, then the state it led to.
pub fn render(model: &Election, trace: &Trace) -> String {
    let steps = trace.clone().into_vec();
    let mut out = String::new();
    let mut prior: Option<&State> = None;
    for (i, (state, _)) in steps.iter().enumerate() {
        match prior
            .and_then(|_| steps.get(i - 1))
            .and_then(|(_, a)| a.as_ref())
        {
            Some(action) => {
                let _ = writeln!(out, "{i:>2}. {}", act(prior, *action));
            }
            None => out.push_str(" 0. start\n"),
        }
        let _ = writeln!(out, "{}", describe(model, state));
        prior = Some(state);
    }
    out
}

/// An action in words, naming parties as the state before it does.
fn act(before: Option<&State>, action: Action) -> String {
    let who = |n: u8| before.map_or(format!("n{n}"), |s| name(s.owner(usize::from(n))));
    let lease = |id: LeaseId| before.map_or(format!("L{id}"), |s| lease_name(&s.etcd, id));
    match action {
        Action::Tick => "time passes".to_owned(),
        Action::Expire(id) => format!("etcd expires lease {}", lease(id)),
        Action::Campaign(n) => format!("{} campaigns (lease and key)", who(n)),
        Action::Renew(n) => format!("{} renews its lease", who(n)),
        Action::Observe(n) => format!("{} reads the election", who(n)),
        Action::Send(n) => format!("{}'s request lands", who(n)),
        Action::Land(n) => format!("dead {}'s request lands", who(n)),
        Action::Leave { node, to: None } => format!("{} steps down and releases", who(node)),
        Action::Leave { node, to: Some(to) } => {
            format!(
                "{} steps down, handing the record to {}",
                who(node),
                lease(to)
            )
        }
        Action::Transfer { node, to } => format!("{} transfers to {} (?to=)", who(node), lease(to)),
        Action::Withdraw(n) => format!("{} withdraws its transfer", who(n)),
        Action::Verdict(n) => format!("{}'s health verdict changes", who(n)),
        Action::Crash {
            node,
            guardian: true,
        } => format!("{}'s electd is killed", who(node)),
        Action::Crash {
            node,
            guardian: false,
        } => format!("{}'s electd and guardian are killed", who(node)),
        Action::GuardianRead { node, to } => format!(
            "{}'s guardian reads the election, to hand the record to {}",
            who(node),
            lease(to)
        ),
        Action::GuardianSend(n) => format!("{}'s guardian hands over and revokes", who(n)),
        Action::GuardianRelease(n) => format!("{}'s guardian revokes the dead leases", who(n)),
        Action::Restart(n) => format!("node {n} starts again"),
        Action::Wipe => "etcd's data is wiped".to_owned(),
        Action::Bump { to } => format!("someone writes elsewhere in etcd, up to revision {to}"),
        Action::HandDelete => "an operator deletes ~leader".to_owned(),
        Action::OldRuleJoin => "etcdctl elect queues its key".to_owned(),
        Action::OldRuleRenew => "etcdctl elect renews its lease".to_owned(),
        Action::OldRuleObserve => "etcdctl elect looks at the keys".to_owned(),
    }
}
