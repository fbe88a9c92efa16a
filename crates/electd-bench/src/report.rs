//! The report: every section's results, as JSON and as the table printed.

use serde::Serialize;

use crate::cost::{Http, Memory};
use crate::crash::{Crash, HostAlive};
use crate::fleet::Fleet;
use crate::shards::Shards;
use crate::stats::Summary;
use crate::steer::Steered;
use crate::writes::CostSummary;
use crate::{etcdctl, load};

#[derive(Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub date: String,
    pub quick: bool,
    pub apis: Vec<ApiReport>,
    pub etcdctl: Option<etcdctl::Report>,
}

#[derive(Default, Serialize)]
pub struct ApiReport {
    pub api: String,
    /// SIGTERM of the leader → the next `acquired` (ms).
    pub sigterm_handover_ms: Option<Summary>,
    /// `POST /v1/resign` → the next `acquired` (ms).
    pub resign_handover_ms: Option<Summary>,
    /// Steered hand-overs by kind and number of candidates: `?to=` the
    /// last in line, drain, unhealthy and preemption (v3), drain (v2).
    pub steered: Vec<Steered>,
    pub crash: Vec<Crash>,
    /// kill -9 of the leader's electd alone, its guardian alive.
    pub host_alive: Vec<HostAlive>,
    /// SIGTERM hand-over by fleet size (v3).
    pub fleet: Vec<Fleet>,
    /// Start of three nodes → the first `acquired` (ms).
    pub cold_start_ms: Option<Summary>,
    pub load: Vec<load::Load>,
    pub memory: Option<Memory>,
    pub http: Vec<Http>,
    /// A leader per shard (v3).
    pub shards: Option<Shards>,
}

fn row(name: &str, s: &Option<Summary>) {
    match s {
        Some(s) => println!(
            "  {name:<44} n={:<4} median {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  min {:>9.3}  max {:>9.3}",
            s.n, s.median, s.p90, s.p99, s.min, s.max
        ),
        None => println!("  {name:<44} (no samples)"),
    }
}

/// etcd's account of a row's hand-overs, medians (and the range).
fn cost_row(name: &str, cost: &Option<CostSummary>) {
    let Some(cost) = cost else {
        return;
    };
    let range = |s: &Option<Summary>| {
        s.as_ref().map_or_else(
            || "-".to_owned(),
            |s| format!("{} ({}–{})", s.median, s.min, s.max),
        )
    };
    let fsync = cost
        .wal_fsync_ms
        .as_ref()
        .map_or_else(|| "-".to_owned(), |s| format!("{:.3} ms", s.median));
    println!(
        "  {name:<44} writes to the term {}; proposals {}; events sent {}; watches opened {}; WAL fsyncs {}, each {fsync}",
        range(&cost.writes_to_term),
        range(&cost.proposals),
        range(&cost.events_sent),
        range(&cost.watches_opened),
        range(&cost.wal_fsyncs),
    );
}

/// Prints the report as a table.
pub fn print_table(report: &Report) {
    println!("electd-bench, {} — {}", report.date, report.machine);
    for api in &report.apis {
        println!("\n--api {} (milliseconds)", api.api);
        // Sections left out (--only) have nothing to show.
        if api.sigterm_handover_ms.is_some() || api.resign_handover_ms.is_some() {
            row(
                "hand-over: SIGTERM → next acquired",
                &api.sigterm_handover_ms,
            );
            row(
                "hand-over: /v1/resign → next acquired",
                &api.resign_handover_ms,
            );
        }
        for steered in &api.steered {
            let name = format!("{}, {}", steered.kind, steered.candidates);
            row(
                &format!("{name}: request → acquired"),
                &steered.request_to_acquired_ms,
            );
            row(
                &format!("{name}: ended → acquired"),
                &steered.ended_to_acquired_ms,
            );
            cost_row(&format!("{name}: etcd's account"), &steered.cost);
        }
        for h in &api.host_alive {
            let exec = if h.exec { ", --exec" } else { "" };
            row(
                &format!("host alive TTL {} s{exec}: kill -9 electd → acq", h.ttl_s),
                &h.kill_to_acquired_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: guardian released", h.ttl_s),
                &h.guardian_released_in_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: kill → delete seen", h.ttl_s),
                &h.kill_to_delete_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: delete → acquired", h.ttl_s),
                &h.delete_to_acquired_ms,
            );
            cost_row(
                &format!("host alive TTL {} s{exec}: etcd's account", h.ttl_s),
                &h.cost,
            );
        }
        for f in &api.fleet {
            let n = f.candidates;
            row(
                &format!("fleet {n} candidates: SIGTERM → acquired"),
                &f.sigterm_handover_ms,
            );
            cost_row(&format!("fleet {n}: etcd's account"), &f.cost);
            row(
                &format!("fleet {n}: nodes woken, hand-over"),
                &f.woken_in_handover,
            );
            row(&format!("fleet {n}: nodes woken, idle"), &f.woken_when_idle);
            row(
                &format!("fleet {n}: their CPU, hand-over"),
                &f.cpu_in_handover_ms,
            );
        }
        for c in &api.crash {
            row(
                &format!("crash TTL {} s: kill -9 → next acquired", c.ttl_s),
                &c.kill_to_acquired_ms,
            );
            row(
                &format!("crash TTL {} s: lease end → etcd deletes key", c.ttl_s),
                &c.lease_end_to_delete_ms,
            );
            row(
                &format!("crash TTL {} s: etcd deletes key → acquired", c.ttl_s),
                &c.delete_to_acquired_ms,
            );
        }
        if api.cold_start_ms.is_some() {
            row("cold start of 3 nodes → first acquired", &api.cold_start_ms);
        }
        if !api.load.is_empty() {
            println!(
                "  etcd load (proposals = raft entries; requests = gRPC messages or HTTP requests):"
            );
        }
        for l in &api.load {
            println!(
                "    {:>5} candidates: steady {:>7.2} proposals/s {:>8.1} requests/s; per hand-over {:>6.1} proposals {:>7.1} requests; {:>6.1} kB RSS per candidate",
                l.candidates,
                l.steady_proposals_per_s,
                l.steady_requests_per_s,
                l.proposals_per_handover,
                l.requests_per_handover,
                l.rss_kb_per_candidate
            );
        }
        if let Some(m) = &api.memory {
            println!(
                "  memory (RSS of electd): idle leader {} kB (its guardian {} kB), idle follower {} kB; leader over {} s: {} → {} kB (max {})",
                m.idle_leader_rss_kb,
                m.idle_leader_guardian_rss_kb,
                m.idle_follower_rss_kb,
                m.watched_seconds,
                m.leader_rss_kb_start,
                m.leader_rss_kb_end,
                m.leader_rss_kb_max
            );
        }
        for h in &api.http {
            let gap = h
                .worst_renewal_gap_ms
                .map_or_else(|| "n/a (too short)".to_owned(), |g| format!("{g:.1} ms"));
            println!(
                "  HTTP GET {:<11} {:>9.0} req/s, p99 {:>7.3} ms; worst renewal gap {gap} (interval {:.0} ms)",
                h.path, h.requests_per_second, h.p99_ms, h.renewal_interval_ms
            );
        }
        if let Some(s) = &api.shards {
            shards_rows(s);
        }
    }
    if let Some(e) = &report.etcdctl {
        println!("\netcdctl elect (v3, session TTL 60 s; milliseconds)");
        let settled = &e.settled;
        println!(
            "  settled hand-over, {} rounds interleaved:",
            settled.rounds
        );
        row("floor: put → another client's watch", &settled.floor_ms);
        row("floor: put → its answer", &settled.floor_put_answered_ms);
        for (who, p) in [
            ("electd v3 SIGTERM", &settled.electd),
            ("etcdctl SIGINT", &settled.etcdctl),
        ] {
            if p.ended_ms.is_some() {
                row(&format!("{who}: → old leader's ended"), &p.ended_ms);
            }
            row(
                &format!("{who}: → released in etcd"),
                &p.released_in_etcd_ms,
            );
            row(
                &format!("{who}: → successor leads in etcd"),
                &p.leads_in_etcd_ms,
            );
            row(&format!("{who}: → successor says so"), &p.says_so_ms);
            cost_row(&format!("{who}: etcd's account"), &p.cost);
        }
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let r = &settled.ratios;
        println!(
            "  electd ÷ etcdctl (medians): says so {}, leads in etcd {}; electd ÷ the floor: says so {}, leads in etcd {}",
            ratio(r.says_so_vs_etcdctl),
            ratio(r.leads_in_etcd_vs_etcdctl),
            ratio(r.says_so_vs_floor),
            ratio(r.leads_in_etcd_vs_floor)
        );
        row(
            "etcdctl SIGINT, successor just spawned → printed",
            &e.fresh_successor_ms,
        );
        row("crash: kill -9 → next elected", &e.kill_to_elected_ms);
        row(
            "crash: etcd deletes key → next elected",
            &e.delete_to_elected_ms,
        );
    }
}

/// The shards section: start, idle, leaves and joins.
fn shards_rows(s: &Shards) {
    println!(
        "  shards: {} over {} nodes, TTL {} s; bounds {}..{} per node",
        s.shards, s.nodes, s.ttl_s, s.lower, s.upper
    );
    println!(
        "    start (from the last node's start): all led {:.0} ms, last move {:.0} ms, every node shows the settled map {:.0} ms; {}..{} per node",
        s.all_led_ms, s.last_move_ms, s.settled_seen_ms, s.min_per_node, s.max_per_node
    );
    println!(
        "    start: CPU of the {} electd {:.0} ms, of etcd {:.0} ms",
        s.nodes, s.start_cpu_ms, s.start_etcd_cpu_ms
    );
    println!(
        "    idle {:.1} s: {} raft proposals, {} leaderships begun or ended",
        s.idle_seconds, s.idle_proposals, s.idle_moves
    );
    row("idle RSS of electd per node (kB)", &s.idle_rss_kb);
    row("idle RSS of its guardian (kB)", &s.idle_guardian_rss_kb);
    for (name, leave) in [
        ("SIGTERM", &s.sigterm),
        ("kill -9 electd", &s.kill_electd),
        ("kill -9 node", &s.kill_node),
    ] {
        println!(
            "    {name}: its shards per round {:?}; it led the election too {:?}",
            leave.shards_per_round, leave.led_election
        );
        row(
            &format!("{name}: → all its shards led again"),
            &leave.all_led_again_ms,
        );
        row(
            &format!("{name}: → each shard's next acquired"),
            &leave.signal_to_acquired_ms,
        );
        row(&format!("{name}: each shard's gap"), &leave.gap_ms);
        row(&format!("{name}: raft proposals"), &leave.proposals);
        row(&format!("{name}: the others' CPU"), &leave.survivors_cpu_ms);
    }
    let j = &s.join;
    println!(
        "    join: joiner leads {:?}; moved {:?} (budget {:.0}), twice {:?}, not to the joiner {:?}",
        j.joiner_leads, j.moved, j.move_budget, j.moved_twice, j.moved_elsewhere
    );
    row(
        &format!("join: spawn → leads {}", j.target),
        &j.reach_target_ms,
    );
    row("join: spawn → its last acquired", &j.last_move_ms);
    row("join: each moved shard's gap", &j.gap_ms);
    row(
        "join: raft proposals per moved shard",
        &j.proposals_per_moved_shard,
    );
    row("join: every node's CPU", &j.cpu_ms);
    row("join: the joiner's CPU", &j.joiner_cpu_ms);
    if !s.violations.is_empty() {
        println!(
            "    journal checker: {} violations: {:?}",
            s.violations.len(),
            s.violations
        );
    }
}
